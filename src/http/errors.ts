import { Elysia } from 'elysia'
import { DomainError, type ErrorKind } from '../core/errors.ts'
import { HttpError } from '../errors.ts'

/** The one place where a domain error becomes an HTTP status. */
export const STATUS_OF_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  'limit-reached': 403,
  'not-found': 404,
  conflict: 409,
  gone: 410,
  'too-large': 413,
  'unsupported-type': 415,
  busy: 423,
  // tus's checksum extension names this status.
  'checksum-mismatch': 460,
  failed: 500,
  unavailable: 503,
  'no-space': 507,
}

/** A refusal whose message is meant for people, as HTTP; null for anything else (a bug, a fault). */
export function refusalOf(error: unknown): HttpError | null {
  if (error instanceof HttpError) return error
  if (!(error instanceof DomainError)) return null
  const { retryAfterSeconds } = error.details
  const headers: Record<string, string> = retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) }
  return new HttpError(STATUS_OF_KIND[error.kind], error.message, headers)
}

/** How a protocol answers a refusal (Dropzone reads JSON, tus wants its headers on every answer). */
export type ErrorFormat = (refusal: HttpError) => Response

export const textError: ErrorFormat = ({ status, message, headers }) =>
  new Response(message + '\n', { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } })

/** Dropzone shows `error` from a JSON body. */
export const jsonError: ErrorFormat = ({ status, message, headers }) => Response.json({ error: message }, { status, headers })

const formats = new WeakMap<Request, ErrorFormat>()

/** The route option `errorFormat`: a protocol's routes say how their errors are answered. */
export const errorFormats = new Elysia({ name: 'error-formats' }).macro({
  errorFormat: (format: ErrorFormat) => ({
    transform({ request }) {
      formats.set(request, format)
    },
  }),
})

/**
 * Renders any error thrown by a route. Refusals (domain errors, HttpError) are meant for people;
 * anything else is logged with its context and answered with a bare 500: no stack, path or
 * source reaches a client.
 */
export function errorResponse(error: unknown, request: Request, log: (m: string, c?: Record<string, unknown>) => void, stopping = false): Response {
  let refusal = refusalOf(error)
  if (!refusal && stopping) {
    // The server is closing its database and storage under a request that was still running:
    // expected, and the client (whose connection is being closed) retries.
    log('request cut short by the server stopping', { method: request.method, path: pathOf(request), error: String(error) })
    refusal = new HttpError(503, 'The server is stopping; retry shortly')
  }
  if (!refusal) {
    const detail = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error)
    log('unexpected error', { method: request.method, path: pathOf(request), error: detail })
    refusal = new HttpError(500, 'Internal server error')
  }
  // Browsers navigating get text they can read; a client asking for JSON gets JSON.
  if ((request.headers.get('accept') ?? '').includes('application/json')) return jsonError(refusal)
  return (formats.get(request) ?? textError)(refusal)
}

/** The request's path, or '' when its URL cannot be read (a request refused for its Host). */
function pathOf(request: Request): string {
  return URL.canParse(request.url) ? new URL(request.url).pathname : ''
}
