import { busyAsHttpError } from '../db/busy.ts'
import { HttpError } from '../errors.ts'

/**
 * Renders any error thrown by a route. HttpError messages are meant for people; anything else
 * is logged with its context and answered with a bare 500.
 */
export function errorResponse(error: unknown, request: Request, log: (m: string, c?: Record<string, unknown>) => void): Response {
  let status = 500
  let message = 'Internal server error'
  let headers: Record<string, string> = {}
  error = busyAsHttpError(error)
  if (error instanceof HttpError) {
    ;({ status, message, headers } = error)
  } else {
    const url = new URL(request.url)
    const detail = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error)
    log('unexpected error', { method: request.method, path: url.pathname, error: detail })
  }
  // Dropzone shows `error` from a JSON body; browsers navigating get text they can read.
  const wantsJson = (request.headers.get('accept') ?? '').includes('application/json') || /(^|\/)upload(\/|$)/.test(new URL(request.url).pathname)
  if (wantsJson) return Response.json({ error: message }, { status, headers })
  return new Response(message + '\n', { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } })
}
