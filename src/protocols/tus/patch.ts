import { HttpError } from '../../errors.ts'
import { checksummed, expires, OFFSET_STREAM, respond, wholeNumberHeader, type TusOptions, type UploadContext } from './shared.ts'

/**
 * PATCH (tus core, "PATCH"): bytes at the offset the upload stands at, one request at a time
 * per upload; may declare a deferred length (creation-defer-length) and carry a checksum.
 */
export async function patch({ request, upload }: UploadContext, { engine }: TusOptions): Promise<Response> {
  if (request.headers.get('content-type') !== OFFSET_STREAM) throw new HttpError(415, `Content-Type must be ${OFFSET_STREAM}`)
  if (upload.concat === 'final') throw new HttpError(403, 'A final upload cannot be patched')
  const offset = wholeNumberHeader(request, 'Upload-Offset')
  if (offset === null) throw new HttpError(400, 'Upload-Offset is required')
  return engine.appendingAlone(upload.id, async () => {
    let current = (await engine.find(upload.id))!
    const length = wholeNumberHeader(request, 'Upload-Length')
    if (length !== null) current = await engine.declareLength(current, length)
    const declared = wholeNumberHeader(request, 'Content-Length')
    if (declared !== null && !current.lengthDeferred && offset + declared > current.totalBytes) {
      throw new HttpError(413, `${declared} bytes at offset ${offset} would pass the upload's length ${current.totalBytes}`)
    }
    const { body, verify } = checksummed(request, request.body ?? emptyBody())
    current = await engine.write(current, offset, body, verify)
    if (current.state === 'failed') throw new HttpError(500, current.error ?? 'The upload could not be stored')
    return respond(204, { 'upload-offset': String(current.receivedBytes), ...expires(engine, current) })
  })
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}
