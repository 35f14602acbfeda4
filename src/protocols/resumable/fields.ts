import type { Config } from '../../config.ts'
import type { Upload } from '../../core/records.ts'
import type { UploadEngine } from '../../engine/engine.ts'
import { HttpError } from '../../errors.ts'
import type { ErrorFormat } from '../../http/errors.ts'
import type { UploadPrincipal } from '../principal.ts'

/**
 * What the handlers of Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload-15)
 * share: its header fields (Structured Fields), its problem types, and its options.
 */

export const PARTIAL_UPLOAD = 'application/partial-upload'
/** Marks an engine upload as made through this protocol (the engine's protocol is tus's: the same streamed upload). */
export const RESUMABLE_MARK = 'ietf-resumable-upload'
const PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#'
/** A Structured Field Integer has at most 15 digits. */
const SF_INTEGER = /^\d{1,15}$/
const MAX_DISPOSITION_BYTES = 2048

export interface ResumableOptions {
  /** Route prefix of the endpoint; may hold params (a drop link's token). */
  prefix: string
  engine: UploadEngine
  config: Config
  authorize: (request: Request, params: Record<string, string>) => UploadPrincipal | Promise<UploadPrincipal>
}

/** A refusal with one of the draft's problem types (RFC 9457 problem details). */
export class ProblemError extends HttpError {
  constructor(
    status: number,
    message: string,
    readonly problem: { type: string } & Record<string, unknown>,
    headers: Record<string, string> = {},
  ) {
    super(status, message, headers)
  }
}

export const mismatchingOffset = (expected: number, provided: number) =>
  new ProblemError(409, `The upload is at offset ${expected}, not ${provided}`, { type: `${PROBLEM_TYPES}mismatching-upload-offset`, 'expected-offset': expected, 'provided-offset': provided }, { 'upload-offset': String(expected) })

export const inconsistentLength = (detail: string) => new ProblemError(400, detail, { type: `${PROBLEM_TYPES}inconsistent-upload-length` })

export const completedUpload = () => new ProblemError(400, 'The upload is already completed', { type: `${PROBLEM_TYPES}completed-upload` })

/** Every refusal as problem details: the draft's type where it defines one, `about:blank` otherwise. */
export const problemError: ErrorFormat = (refusal) => {
  const problem = refusal instanceof ProblemError ? refusal.problem : { type: 'about:blank' }
  return new Response(JSON.stringify({ ...problem, title: refusal.message, status: refusal.status }), {
    status: refusal.status,
    headers: { 'content-type': 'application/problem+json', ...refusal.headers },
  })
}

/** `Upload-Complete` (a Boolean): required on creation and append. */
export function uploadComplete(request: Request): boolean {
  const value = request.headers.get('upload-complete')?.trim()
  if (value === '?1') return true
  if (value === '?0') return false
  throw new HttpError(400, 'Upload-Complete must be ?0 or ?1')
}

/** A non-negative Integer field (Upload-Offset, Upload-Length), or null when absent; anything else is refused. */
export function integerField(request: Request, name: string): number | null {
  const value = request.headers.get(name)
  if (value === null) return null
  if (!SF_INTEGER.test(value.trim())) throw new HttpError(400, `${name} must be a non-negative integer of at most 15 digits`)
  return Number(value.trim())
}

export function contentLength(request: Request): number | null {
  return integerField(request, 'content-length')
}

/** `Content-Disposition: attachment|inline; filename=...` (RFC 6266): `filename*` (UTF-8) wins over `filename`. */
export function fileNameOf(request: Request): string {
  const header = request.headers.get('content-disposition')
  if (header === null) throw new HttpError(400, 'Name the file: Content-Disposition: attachment; filename="<name>"')
  if (header.length > MAX_DISPOSITION_BYTES) throw new HttpError(431, `Content-Disposition is longer than ${MAX_DISPOSITION_BYTES} bytes`)
  const extended = /;\s*filename\*\s*=\s*UTF-8'[^']*'([^;\s]+)/i.exec(header)
  if (extended) {
    try {
      return decodeURIComponent(extended[1]!)
    } catch {
      throw new HttpError(400, 'Content-Disposition filename* is not percent-encoded UTF-8')
    }
  }
  const plain = /;\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]+))/i.exec(header)
  if (!plain) throw new HttpError(400, 'Content-Disposition needs a filename')
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2]!
}

/** `Upload-Limit`: the largest file, and (for an existing upload) how long it stays resumable. */
export function uploadLimit(options: ResumableOptions, upload?: Upload): Record<string, string> {
  const limits = [`max-size=${options.config.maxFileBytes}`]
  if (upload?.state === 'receiving') limits.push(`max-age=${Math.max(0, Math.floor((options.engine.expiresAt(upload) - Date.now()) / 1000))}`)
  return { 'upload-limit': limits.join(', ') }
}

export function isPartialUpload(request: Request): boolean {
  return (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase() === PARTIAL_UPLOAD
}

export function respond(status: number, headers: Record<string, string>): Response {
  return new Response(null, { status, headers })
}
