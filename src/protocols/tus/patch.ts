import { DomainError } from '../../core/errors.ts'
import { HttpError } from '../../errors.ts'
import { checksummed, expires, fileLocation, isOffsetStream, OFFSET_STREAM, respond, wholeNumberHeader, type TusOptions, type UploadContext } from './shared.ts'
import { admitDeclaredLength } from './limits.ts'

/**
 * PATCH (tus core, "PATCH"): bytes at the offset the upload stands at, one request at a time
 * per upload; may declare a deferred length (creation-defer-length) and carry a checksum. Bytes
 * past the upload's length are refused with 413, as the protocol's own suites expect.
 */
export async function patch({ request, upload, principal }: UploadContext, { engine, config }: TusOptions): Promise<Response> {
  if (!isOffsetStream(request)) throw new HttpError(415, `Content-Type must be ${OFFSET_STREAM}`)
  if (upload.concat === 'final') throw new HttpError(403, 'A final upload cannot be patched')
  const offset = wholeNumberHeader(request, 'Upload-Offset')
  if (offset === null) throw new HttpError(400, 'Upload-Offset is required')
  return engine.appendingAlone(upload.id, async () => {
    let current = (await engine.find(upload.id))!
    const length = wholeNumberHeader(request, 'Upload-Length')
    const declared = wholeNumberHeader(request, 'Content-Length')
    if (length !== null && current.lengthDeferred) {
      await admitDeclaredLength(engine, principal, current, length)
      current = await engine.declareLength(current, length)
    } else if (length !== null) current = await engine.declareLength(current, length)
    else if (current.lengthDeferred) await admitDeclaredLength(engine, principal, current, offset + (declared ?? lengthRequired(principal)))
    const room = (current.lengthDeferred ? config.maxFileBytes : current.totalBytes) - offset
    if (declared !== null && declared > room) {
      throw new HttpError(413, `${declared} bytes at offset ${offset} would pass the upload's length ${offset + room}`)
    }
    const { body, verify } = checksummed(request, atMost(request.body ?? emptyBody(), room, offset))
    current = await engine.write(current, offset, body, verify)
    if (current.state === 'failed') throw new HttpError(500, current.error ?? 'The upload could not be stored')
    return respond(204, { 'upload-offset': String(current.receivedBytes), ...expires(engine, current), ...fileLocation(principal, current) })
  })
}

/** A drop link accounts a deferred upload's bytes before it takes them: it needs their number. */
function lengthRequired(principal: UploadContext['principal']): number {
  if (principal.admit) throw new HttpError(411, 'Send a Content-Length (or the Upload-Length) with each PATCH of a deferred upload here')
  return 0
}

/** Refuses (413) a body without a Content-Length that runs past the upload's length; none of its bytes count then. */
export async function* atMost(body: AsyncIterable<Uint8Array>, room: number, offset: number): AsyncGenerator<Uint8Array> {
  let seen = 0
  for await (const piece of body) {
    seen += piece.length
    if (seen > room) throw new DomainError('too-large', `The body at offset ${offset} passes the upload's length ${offset + room}`)
    yield piece
  }
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}
