import { refusalOf } from '../../http/errors.ts'
import { download } from './get.ts'
import { endpointOf, expires, fileLocation, respond, type TusOptions, type UploadContext } from './shared.ts'

/**
 * HEAD (tus core, "HEAD"): where the upload stands, never cached. Once the upload is a file the
 * client may download, also what a HEAD on its download answers (type, length, ETag, name).
 */
export async function head(context: UploadContext, options: TusOptions): Promise<Response> {
  const { request, upload, principal } = context
  const headers: Record<string, string> = {
    ...(await fileHeaders(context, options)),
    ...fileLocation(principal, upload),
    'upload-offset': String(upload.receivedBytes),
    'cache-control': 'no-store',
    ...expires(options.engine, upload),
  }
  if (upload.lengthDeferred) headers['upload-defer-length'] = '1'
  else headers['upload-length'] = String(upload.totalBytes)
  if (upload.metadata) headers['upload-metadata'] = upload.metadata
  if (upload.concat === 'partial') headers['upload-concat'] = 'partial'
  if (upload.concat === 'final') {
    const parts = JSON.parse(upload.partIds ?? '[]') as string[]
    const endpoint = endpointOf(request, true)
    headers['upload-concat'] = `final;${parts.map((id) => `${endpoint}/${id}`).join(' ')}`
  }
  return respond(200, headers)
}

/** The download's headers, when the upload is a file this client may download (none otherwise: a resuming client still learns its offset). */
async function fileHeaders(context: UploadContext, options: TusOptions): Promise<Record<string, string>> {
  const { upload, request } = context
  if (upload.state !== 'complete' || upload.fileId === null || upload.concat === 'partial') return {}
  // Only what describes the whole file: a tus client's HEAD is about the upload, never a range of it.
  const whole = new Request(request.url, { method: 'HEAD', headers: { cookie: request.headers.get('cookie') ?? '' } })
  try {
    const answer = await download({ ...context, request: whole }, options)
    return Object.fromEntries(answer.headers)
  } catch (error) {
    if (refusalOf(error)) return {}
    throw error
  }
}
