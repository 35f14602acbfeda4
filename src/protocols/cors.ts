import { Elysia } from 'elysia'
import type { Config } from '../config.ts'
import { routePolicy } from '../http/guard.ts'

/**
 * Cross-origin access to the upload endpoints (tus and plain multipart), for pages on the origins
 * TUS_CORS_ORIGINS lists. Uploads carry credentials (the session or a drop link's cookies), and a
 * browser refuses a wildcard with credentials: `*` echoes the request's origin instead.
 */

/** Headers a browser page on another origin may read from an upload answer. */
const EXPOSED_HEADERS =
  'Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires, Dropfold-File-Url, Link, Content-Disposition, Content-Range, ETag, Upload-Complete, Upload-Limit, Accept-Patch'

/** Paths whose answers carry the CORS headers: the tus endpoints and the multipart upload endpoints. */
const CROSS_ORIGIN_PATH = /^\/(?:d\/[^/]+\/)?(?:tus|upload|resumable)(?:\/|$)/
/** Paths whose answers carry Tus-Resumable, errors included. */
const TUS_PATH = /^\/(?:d\/[^/]+\/)?tus(?:\/|$)/

export function isCorsOrigin(config: Config, origin: string): boolean {
  return config.tusCorsOrigins.includes('*') || config.tusCorsOrigins.includes(origin)
}

export function corsHeaders(config: Config, request: Request): Record<string, string> {
  if (config.tusCorsOrigins.length === 0) return {}
  const origin = request.headers.get('origin')
  // The answer depends on the origin whenever origins are configured: caches must keep them apart.
  if (!origin || !isCorsOrigin(config, origin)) return { vary: 'Origin' }
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': EXPOSED_HEADERS,
    vary: 'Origin',
  }
}

/** The answer to a browser's preflight from a configured origin (nothing more for any other). */
export function preflightHeaders(config: Config, request: Request, methods: string, allowHeaders: string): Record<string, string> {
  const origin = request.headers.get('origin')
  if (!origin || !request.headers.has('access-control-request-method') || !isCorsOrigin(config, origin)) return {}
  return { 'access-control-allow-methods': methods, 'access-control-allow-headers': allowHeaders, 'access-control-max-age': '86400' }
}

/**
 * Every answer under an upload endpoint, errors from the guard and unknown paths included, with
 * the protocol's and the CORS headers: a page on another origin can read why it was refused.
 */
export function withEndpointHeaders(config: Config, request: Request, response: Response): Response {
  const headers = endpointHeaders(config, request)
  if (!headers) return response
  // A copy: a response's own headers may be immutable (a redirect's are).
  const answer = new Response(response.body, response)
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'vary') appendVary(answer.headers, value)
    else answer.headers.set(name, value)
  }
  return answer
}

/** The headers every answer under an upload endpoint carries; null elsewhere. */
export function endpointHeaders(config: Config, request: Request): Record<string, string> | null {
  const path = URL.canParse(request.url) ? new URL(request.url).pathname : ''
  if (!CROSS_ORIGIN_PATH.test(path)) return null
  const headers: Record<string, string> = { ...corsHeaders(config, request) }
  if (TUS_PATH.test(path)) headers['tus-resumable'] = '1.0.0'
  return headers
}

function appendVary(headers: Headers, value: string) {
  const current = headers.get('vary')
  if (!current) headers.set('vary', value)
  else if (!current.split(',').some((v) => v.trim().toLowerCase() === value.toLowerCase())) headers.set('vary', `${current}, ${value}`)
}

/** What a page's uploader may send to a multipart endpoint (Dropzone adds the last two). */
const MULTIPART_REQUEST_HEADERS = 'Content-Type, Accept, Authorization, X-Requested-With, Cache-Control'

/**
 * CORS preflight for a multipart upload endpoint (`path`, and its status `path/:key`): answered
 * for the configured origins, without credentials (a preflight never carries them).
 */
export function multipartPreflight(config: Config, path: string) {
  const answer = ({ request }: { request: Request }) =>
    new Response(null, { status: 204, headers: preflightHeaders(config, request, 'POST, GET, OPTIONS', MULTIPART_REQUEST_HEADERS) })
  const isPublic = { public: 'CORS preflight of an upload endpoint' }
  return new Elysia({ name: `multipart-preflight:${path}` })
    .use(routePolicy)
    .options(path, answer, isPublic)
    .options(`${path}/:key`, answer, isPublic)
}
