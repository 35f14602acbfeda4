import { CHECKSUMS, EXTENSIONS, isCorsOrigin, REQUEST_HEADERS, TUS_VERSION, type TusOptions } from './shared.ts'

/**
 * OPTIONS (tus core, "OPTIONS"): what this server speaks, and the answer to a browser's CORS
 * preflight from a configured origin. Carries no credentials.
 */
export function discover({ request }: { request: Request }, { config }: TusOptions): Response {
  const headers: Record<string, string> = {
    'tus-resumable': TUS_VERSION,
    'tus-version': TUS_VERSION,
    'tus-extension': EXTENSIONS,
    'tus-max-size': String(config.maxFileBytes),
    'tus-checksum-algorithm': Object.keys(CHECKSUMS).join(','),
  }
  const origin = request.headers.get('origin')
  if (origin && request.headers.has('access-control-request-method') && isCorsOrigin(config, origin)) {
    headers['access-control-allow-methods'] = 'POST, HEAD, PATCH, DELETE, OPTIONS'
    headers['access-control-allow-headers'] = REQUEST_HEADERS
    headers['access-control-max-age'] = '86400'
  }
  return new Response(null, { status: 204, headers })
}
