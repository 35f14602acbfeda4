import { busyAsHttpError } from '../db/busy.ts'
import { HttpError } from '../errors.ts'

/** The request's path, or '' when its URL cannot be read (a request refused for its Host). */
function pathOf(request: Request): string {
  return URL.canParse(request.url) ? new URL(request.url).pathname : ''
}

/**
 * Renders any error thrown by a route. HttpError messages are meant for people; anything else
 * is logged with its context and answered with a bare 500: no stack, path or source reaches a client.
 */
export function errorResponse(error: unknown, request: Request, log: (m: string, c?: Record<string, unknown>) => void): Response {
  let status = 500
  let message = 'Internal server error'
  let headers: Record<string, string> = {}
  error = busyAsHttpError(error)
  const path = pathOf(request)
  if (error instanceof HttpError) {
    ;({ status, message, headers } = error)
  } else {
    const detail = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error)
    log('unexpected error', { method: request.method, path, error: detail })
  }
  // Dropzone shows `error` from a JSON body; browsers navigating get text they can read.
  const wantsJson = (request.headers.get('accept') ?? '').includes('application/json') || /(^|\/)upload(\/|$)/.test(path)
  if (wantsJson) return Response.json({ error: message }, { status, headers })
  return new Response(message + '\n', { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } })
}
