import { endpointOf, expires, respond, type TusOptions, type UploadContext } from './shared.ts'

/** HEAD (tus core, "HEAD"): where the upload stands, never cached. */
export function head({ request, upload }: UploadContext, { engine }: TusOptions): Response {
  const headers: Record<string, string> = {
    'upload-offset': String(upload.receivedBytes),
    'cache-control': 'no-store',
    ...expires(engine, upload),
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
