import { preflightHeaders } from '../cors.ts'
import { CHECKSUMS, EXTENSIONS, REQUEST_HEADERS, TUS_VERSION, type TusOptions } from './shared.ts'

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
    ...preflightHeaders(config, request, 'POST, GET, HEAD, PATCH, DELETE, OPTIONS', REQUEST_HEADERS),
  }
  return new Response(null, { status: 204, headers })
}
