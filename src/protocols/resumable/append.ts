import type { Upload } from '../../core/records.ts'
import { HttpError } from '../../errors.ts'
import type { UploadPrincipal } from '../principal.ts'
import { admitDeclaredLength } from '../tus/limits.ts'
import { atMost } from '../tus/patch.ts'
import { contentLength, inconsistentLength, integerField, mismatchingOffset, uploadLimit, type ResumableOptions } from './fields.ts'

export interface Append {
  request: Request
  principal: UploadPrincipal
  upload: Upload
  offset: number
  complete: boolean
}

/**
 * Appends a request's content at `offset` (draft, "Upload Append"; creation's content too), one
 * request at a time per upload. The length is recorded from `Upload-Length`, or from
 * `Upload-Complete: ?1` with a `Content-Length`; a drop link's limits are checked before the
 * bytes are taken. Bytes that reached the disk before an interruption count; the upload is
 * complete only when a request saying so was read to its end.
 */
export function append({ request, principal, upload, offset, complete }: Append, options: ResumableOptions): Promise<Upload> {
  const { engine, config } = options
  return engine.appendingAlone(upload.id, async () => {
    let current = (await engine.find(upload.id))!
    if (offset !== current.receivedBytes) throw mismatchingOffset(current.receivedBytes, offset)
    const declared = contentLength(request)
    let length = integerField(request, 'upload-length')
    if (complete && declared !== null) {
      if (length !== null && length !== offset + declared) throw inconsistentLength(`Upload-Length ${length} and the ${declared} bytes completing the upload at offset ${offset} disagree`)
      length = offset + declared
    }
    if (length !== null && !current.lengthDeferred && length !== current.totalBytes) throw inconsistentLength(`The upload's length is ${current.totalBytes}, not ${length}`)
    if (length !== null && current.lengthDeferred) {
      if (length < offset) throw inconsistentLength(`The length ${length} is less than the ${offset} bytes received`)
      await admitDeclaredLength(engine, principal, current, length)
      current = await engine.declareLength(current, length)
    } else if (current.lengthDeferred && principal.admit) {
      // A drop link accounts bytes before it takes them: it needs their number.
      if (declared === null) throw new HttpError(411, 'Send a Content-Length (or the Upload-Length) with each request of an upload of unknown length here')
      await admitDeclaredLength(engine, principal, current, offset + declared)
    }
    const room = (current.lengthDeferred ? config.maxFileBytes : current.totalBytes) - offset
    if (declared !== null && declared > room) {
      throw new HttpError(413, `${declared} bytes at offset ${offset} would pass the upload's length ${offset + room}`, uploadLimit(options))
    }
    current = await engine.write(current, offset, atMost(request.body ?? noBytes(), room, offset))
    if (current.state === 'failed') throw new HttpError(500, current.error ?? 'The upload could not be stored')
    if (!complete || current.state !== 'receiving') return current
    if (!current.lengthDeferred) throw inconsistentLength(`The upload is complete at ${current.totalBytes} bytes; ${current.receivedBytes} are here`)
    // Complete with a length only now known (a body without Content-Length): what arrived is all of it.
    current = await engine.declareLength(current, current.receivedBytes)
    return engine.write(current, current.receivedBytes, noBytes())
  })
}

async function* noBytes(): AsyncGenerator<Uint8Array> {}
