import { DomainError } from '../../core/errors.ts'
import type { Config } from '../../config.ts'
import type { Upload } from '../../core/records.ts'
import type { UploadEngine } from '../../engine/engine.ts'
import { HttpError } from '../../errors.ts'
import { textError, type ErrorFormat } from '../../http/errors.ts'
import type { UploadPrincipal } from '../principal.ts'

/**
 * What every tus method handler shares: the protocol's constants, header parsing, the answer
 * and error formats, CORS, and finding the caller's own upload.
 */

export const TUS_VERSION = '1.0.0'
export const EXTENSIONS = 'creation,creation-with-upload,creation-defer-length,termination,expiration,checksum,concatenation'
/** Supported Upload-Checksum algorithms and the length of their digests in bytes. */
export const CHECKSUMS: Record<string, number> = { sha1: 20, sha256: 32, sha512: 64, md5: 16 }
export const UPLOAD_ID = /^[a-z0-9]{32}$/
export const OFFSET_STREAM = 'application/offset+octet-stream'
/** Headers a browser page on another origin may send (when CORS is configured). */
export const REQUEST_HEADERS =
  'Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum'

export interface TusOptions {
  /** Route prefix of the endpoint; may hold params (a drop link's token). */
  prefix: string
  engine: UploadEngine
  config: Config
  authorize: (request: Request, params: Record<string, string>) => UploadPrincipal | Promise<UploadPrincipal>
  /** A stored file as `/files/<id>/download` (or the drop link's download) answers it, with the same authorisation. */
  serveFile: (request: Request, params: Record<string, string>, fileId: number) => Promise<Response>
}

/** What the handlers of an existing upload (GET, HEAD, PATCH, DELETE) are given. */
export interface UploadContext {
  request: Request
  upload: Upload
  principal: UploadPrincipal
  params: Record<string, string>
}

/** Where a finished upload's file is, for this client (none when it may not download it). */
export function fileLocation(principal: UploadPrincipal, upload: Upload): Record<string, string> {
  if (upload.state !== 'complete' || upload.fileId === null || upload.concat === 'partial') return {}
  const url = principal.fileUrl ? principal.fileUrl(upload.fileId) : `/files/${upload.fileId}/download`
  return url === null ? {} : { 'dropfold-file-url': url, link: `<${url}>; rel="item"` }
}

/** Whether a request's Content-Type is tus's body type, whatever its parameters (`; charset=binary`). */
export function isOffsetStream(request: Request): boolean {
  return (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase() === OFFSET_STREAM
}

/** Every tus answer carries Tus-Resumable, refusals included. */
export const tusError: ErrorFormat = (refusal) => {
  const response = textError(refusal)
  response.headers.set('tus-resumable', TUS_VERSION)
  return response
}

export function respond(status: number, headers: Record<string, string>) {
  return new Response(null, { status, headers: { 'tus-resumable': TUS_VERSION, ...headers } })
}

export function wholeNumberHeader(request: Request, name: string): number | null {
  const text = request.headers.get(name)
  if (text === null) return null
  if (!/^\d{1,16}$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new HttpError(400, `${name} must be a whole number of 0 or more`)
  }
  return Number(text)
}

/** Upload-Expires, while the upload still takes bytes (expiration extension). */
export function expires(engine: UploadEngine, upload: Upload): Record<string, string> {
  return upload.state === 'receiving' ? { 'upload-expires': new Date(engine.expiresAt(upload)).toUTCString() } : {}
}

/** The endpoint's own path as the client called it (prefixes may hold a token). */
export function endpointOf(request: Request, isUpload: boolean) {
  const path = new URL(request.url).pathname.replace(/\/$/, '')
  return isUpload ? path.slice(0, path.lastIndexOf('/')) : path
}

/** The caller's own live tus upload of that id: 404 for anyone else's, 410 once it is gone. */
export async function ownUpload(engine: UploadEngine, principal: UploadPrincipal, id: string): Promise<Upload> {
  const upload = UPLOAD_ID.test(id) ? await engine.find(id) : undefined
  if (!upload || upload.owner !== principal.owner || upload.protocol !== 'tus') throw new HttpError(404, 'No such upload')
  if (upload.state === 'expired' || upload.state === 'cancelled') throw new HttpError(410, `This upload has ${upload.state === 'expired' ? 'expired' : 'been terminated'}`)
  return upload
}

/** Streams the body through a digest when the client sent Upload-Checksum (checksum extension). */
export function checksummed(request: Request, body: AsyncIterable<Uint8Array>) {
  const header = request.headers.get('upload-checksum')
  if (header === null) return { body, verify: undefined }
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(header.trim())
  if (!m) throw new HttpError(400, 'Upload-Checksum must be "<algorithm> <base64 digest>"')
  const algorithm = m[1]!.toLowerCase()
  if (!Object.hasOwn(CHECKSUMS, algorithm)) throw new HttpError(400, `Unsupported Upload-Checksum; use one of ${Object.keys(CHECKSUMS).join(', ')}`)
  const expected = Buffer.from(m[2]!, 'base64')
  if (expected.length !== CHECKSUMS[algorithm]) throw new HttpError(400, `Upload-Checksum is not a ${algorithm} digest in base64`)
  const hasher = new Bun.CryptoHasher(algorithm as 'sha256')
  async function* tapped() {
    for await (const piece of body) {
      hasher.update(piece)
      yield piece
    }
  }
  const verify = () => {
    if (!hasher.digest().equals(expected)) throw new DomainError('checksum-mismatch', 'Checksum mismatch: the bytes were discarded')
  }
  return { body: tapped(), verify }
}
