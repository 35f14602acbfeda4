import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { Config } from '../../config.ts'
import { DomainError } from '../../core/errors.ts'
import type { UploadRow } from '../../db/uploads.ts'
import { ROOT_FOLDER_ID } from '../../db/schema.ts'
import type { UploadEngine } from '../../engine/engine.ts'
import { cleanFileName } from '../../engine/file-names.ts'
import { HttpError } from '../../errors.ts'
import { clientAddress } from '../../http/client-address.ts'
import { errorFormats, refusalOf, textError, type ErrorFormat } from '../../http/errors.ts'
import { routePolicy } from '../../http/guard.ts'
import type { UploadPrincipal } from '../principal.ts'

/**
 * tus 1.0 (https://tus.io/protocols/resumable-upload) in front of the upload engine: core
 * protocol plus creation, creation-with-upload, creation-defer-length, termination, expiration,
 * checksum and concatenation. Finished uploads become files exactly like Dropzone uploads.
 */

export const TUS_VERSION = '1.0.0'

/** Every tus answer carries Tus-Resumable, refusals included. */
const tusError: ErrorFormat = (refusal) => {
  const response = textError(refusal)
  response.headers.set('tus-resumable', TUS_VERSION)
  return response
}
const EXTENSIONS = 'creation,creation-with-upload,creation-defer-length,termination,expiration,checksum,concatenation'
/** Supported Upload-Checksum algorithms and the length of their digests in bytes. */
const CHECKSUMS: Record<string, number> = { sha1: 20, sha256: 32, sha512: 64, md5: 16 }
/** Bounds on what clients may send in headers (a larger header is 431, anything malformed 400). */
const MAX_METADATA_BYTES = 4096
const MAX_CONCAT_BYTES = 8192
const MAX_CONCAT_PARTS = 100
const UPLOAD_ID = /^[a-z0-9]{32}$/
const OFFSET_STREAM = 'application/offset+octet-stream'
/** Headers a browser page on another origin may send and read (when CORS is configured). */
const REQUEST_HEADERS =
  'Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum'
const EXPOSED_HEADERS =
  'Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires'

export interface TusOptions {
  /** Route prefix of the endpoint; may hold params (a drop link's token). */
  prefix: string
  engine: UploadEngine
  config: Config
  authorize: (request: Request, params: Record<string, string>) => UploadPrincipal
}

/** Upload-Metadata: comma-separated "key base64value" pairs (value optional). */
export function parseMetadata(header: string | null): Map<string, string> {
  const metadata = new Map<string, string>()
  if (!header) return metadata
  if (header.length > MAX_METADATA_BYTES) throw new HttpError(431, `Upload-Metadata is longer than ${MAX_METADATA_BYTES} bytes`)
  for (const pair of header.split(',')) {
    const [key, value, extra] = pair.trim().split(' ')
    if (!key || extra !== undefined || !/^[\x21-\x7e]+$/.test(key) || metadata.has(key)) {
      throw new HttpError(400, 'Upload-Metadata must be comma-separated "key base64value" pairs with distinct keys')
    }
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new HttpError(400, `Upload-Metadata value of ${key} is not base64`)
    metadata.set(key, value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8'))
  }
  return metadata
}

/**
 * The upload ids an `Upload-Concat: final;<urls>` header names, in order: every URL parsed
 * safely (relative to the request), each naming an upload once.
 */
export function concatenatedIds(header: string, base: string): string[] {
  const urls = header.slice('final;'.length).trim().split(/\s+/).filter(Boolean)
  if (urls.length === 0) throw new HttpError(400, 'A final upload needs at least one partial upload')
  if (urls.length > MAX_CONCAT_PARTS) throw new HttpError(400, `A final upload may have at most ${MAX_CONCAT_PARTS} partial uploads`)
  const ids = urls.map((url) => {
    let id: string | undefined
    try {
      id = new URL(url, base).pathname.split('/').pop()
    } catch {
      throw new HttpError(400, 'Upload-Concat holds a malformed URL')
    }
    if (!id || !UPLOAD_ID.test(id)) throw new HttpError(400, 'Upload-Concat holds a URL that is not an upload of this server')
    return id
  })
  if (new Set(ids).size !== ids.length) throw new HttpError(400, 'Upload-Concat names a partial upload more than once')
  return ids
}

function wholeNumberHeader(request: Request, name: string): number | null {
  const text = request.headers.get(name)
  if (text === null) return null
  if (!/^\d{1,16}$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new HttpError(400, `${name} must be a whole number of 0 or more`)
  }
  return Number(text)
}

function corsHeaders(config: Config, request: Request): Record<string, string> {
  const origin = request.headers.get('origin')
  if (!origin || !isCorsOrigin(config, origin)) return {}
  const any = config.tusCorsOrigins.includes('*')
  return {
    'access-control-allow-origin': any ? '*' : origin,
    ...(any ? {} : { 'access-control-allow-credentials': 'true', vary: 'Origin' }),
    'access-control-expose-headers': EXPOSED_HEADERS,
  }
}

export function isCorsOrigin(config: Config, origin: string): boolean {
  return config.tusCorsOrigins.includes('*') || config.tusCorsOrigins.includes(origin)
}

export function tusRoutes(options: TusOptions) {
  const { prefix, engine, config } = options

  const expires = (upload: UploadRow): Record<string, string> =>
    upload.state === 'receiving' ? { 'upload-expires': new Date(engine.expiresAt(upload)).toUTCString() } : {}

  /** The endpoint's own path as the client called it (prefixes may hold a token). */
  const endpointOf = (request: Request, isUpload: boolean) => {
    const path = new URL(request.url).pathname.replace(/\/$/, '')
    return isUpload ? path.slice(0, path.lastIndexOf('/')) : path
  }

  function ownUpload(principal: UploadPrincipal, id: string): UploadRow {
    const upload = UPLOAD_ID.test(id) ? engine.find(id) : undefined
    if (!upload || upload.owner !== principal.owner || upload.protocol !== 'tus') throw new HttpError(404, 'No such upload')
    if (upload.state === 'expired' || upload.state === 'cancelled') throw new HttpError(410, `This upload has ${upload.state === 'expired' ? 'expired' : 'been terminated'}`)
    return upload
  }

  /** Streams the body through a digest when the client sent Upload-Checksum. */
  function checksummed(request: Request, body: AsyncIterable<Uint8Array>) {
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

  async function create(request: Request, principal: UploadPrincipal, address: string | null) {
    const endpoint = endpointOf(request, false)
    const metadata = parseMetadata(request.headers.get('upload-metadata'))
    const concat = request.headers.get('upload-concat')
    if (concat !== null && concat.length > MAX_CONCAT_BYTES) throw new HttpError(431, `Upload-Concat is longer than ${MAX_CONCAT_BYTES} bytes`)
    if (principal.sizeUpFront && concat !== null) throw new HttpError(400, 'Concatenated (parallel) tus uploads are not available here')
    if (principal.sizeUpFront && request.headers.has('upload-defer-length')) throw new HttpError(400, 'Upload-Length is required here')
    const folderId = principal.folderId ?? folderFrom(metadata.get('folder'))
    const fileName = metadata.get('filename') ?? metadata.get('name') ?? ''
    if (!fileName && concat === null) throw new HttpError(400, 'Upload-Metadata needs a filename')
    // Checked before anything is made (a partial's name is optional, but never a bad one).
    if (fileName) cleanFileName(fileName)
    const base = { protocol: 'tus' as const, owner: principal.owner, folderId, fileName, clientAddress: address, metadata: request.headers.get('upload-metadata') }
    if (concat?.startsWith('final;')) {
      if (request.headers.has('upload-length')) throw new HttpError(400, 'A final upload must not carry Upload-Length')
      const partIds = concatenatedIds(concat, request.url)
      for (const id of partIds) ownUpload(principal, id)
      const upload = await engine.concatenate(base, partIds)
      return respond(201, { location: `${endpoint}/${upload.id}`, ...expires(upload) })
    }
    if (concat !== null && concat !== 'partial') throw new HttpError(400, 'Upload-Concat must be "partial" or "final;<urls>"')
    const length = wholeNumberHeader(request, 'Upload-Length')
    const deferred = request.headers.get('upload-defer-length')
    if (deferred !== null && deferred !== '1') throw new HttpError(400, 'Upload-Defer-Length must be 1')
    if ((length === null) === (deferred === null)) throw new HttpError(400, 'Send either Upload-Length or Upload-Defer-Length: 1')
    let upload = await engine.createStream({ ...base, totalBytes: length, concat: concat === 'partial' ? 'partial' : undefined }, principal.admit)
    if (request.body && request.headers.get('content-type') === OFFSET_STREAM) {
      // creation-with-upload: the first bytes ride along with the creation request.
      const created = upload
      upload = await engine.appendingAlone(created.id, () => {
        const { body, verify } = checksummed(request, request.body!)
        return engine.appendAt(created, 0, body, verify)
      }).catch(async (error) => {
        // The client learns no Location from a refusal: the upload it would have made goes.
        await engine.discardIfEmpty(created.id)
        throw error
      })
    }
    // Always sent: tus-js-client expects it whenever it asked for creation-with-upload.
    return respond(201, { location: `${endpoint}/${upload.id}`, 'upload-offset': String(upload.receivedBytes), ...expires(upload) })
  }

  function head(request: Request, upload: UploadRow) {
    const headers: Record<string, string> = {
      'upload-offset': String(upload.receivedBytes),
      'cache-control': 'no-store',
      ...expires(upload),
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

  async function patch(request: Request, upload: UploadRow) {
    if (request.headers.get('content-type') !== OFFSET_STREAM) throw new HttpError(415, `Content-Type must be ${OFFSET_STREAM}`)
    if (upload.concat === 'final') throw new HttpError(403, 'A final upload cannot be patched')
    const offset = wholeNumberHeader(request, 'Upload-Offset')
    if (offset === null) throw new HttpError(400, 'Upload-Offset is required')
    return engine.appendingAlone(upload.id, async () => {
      let current = engine.find(upload.id)!
      const length = wholeNumberHeader(request, 'Upload-Length')
      if (length !== null) current = await engine.declareLength(current, length)
      const declared = wholeNumberHeader(request, 'Content-Length')
      if (declared !== null && !current.lengthDeferred && offset + declared > current.totalBytes) {
        throw new HttpError(413, `${declared} bytes at offset ${offset} would pass the upload's length ${current.totalBytes}`)
      }
      const { body, verify } = checksummed(request, request.body ?? emptyBody())
      current = await engine.appendAt(current, offset, body, verify)
      if (current.state === 'failed') throw new HttpError(500, current.error ?? 'The upload could not be stored')
      return respond(204, { 'upload-offset': String(current.receivedBytes), ...expires(current) })
    })
  }

  async function terminate(upload: UploadRow) {
    const waitingPartial = upload.concat === 'partial' && upload.state === 'complete'
    if (upload.state !== 'receiving' && !waitingPartial) throw new HttpError(403, 'This upload is finished; manage the file in Dropfold instead')
    if (!(await engine.cancel(upload.id))) throw new HttpError(423, 'This upload is in use (being finalised, or assembled into a final upload); try again shortly')
    return respond(204, {})
  }

  function respond(status: number, headers: Record<string, string>) {
    return new Response(null, { status, headers: { 'tus-resumable': TUS_VERSION, ...headers } })
  }

  /** Every tus answer, errors included, carries Tus-Resumable and (when configured) CORS headers. */
  async function handle(request: Request, work: () => Promise<Response> | Response): Promise<Response> {
    let response: Response
    try {
      if (request.method !== 'OPTIONS' && request.headers.get('tus-resumable') !== TUS_VERSION) {
        throw new HttpError(412, `Tus-Resumable ${TUS_VERSION} is required`, { 'tus-version': TUS_VERSION })
      }
      response = await work()
    } catch (error) {
      const refusal = refusalOf(error)
      if (!refusal) throw error
      response = tusError(refusal)
      await request.body?.cancel().catch(() => {})
    }
    for (const [name, value] of Object.entries(corsHeaders(config, request))) response.headers.set(name, value)
    return response
  }

  function discovery(request: Request) {
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

  /** X-HTTP-Method-Override lets clients behind proxies that only pass GET and POST speak tus. */
  const method = (request: Request) => request.headers.get('x-http-method-override')?.toUpperCase() ?? request.method

  const onUpload = async ({ request, params }: { request: Request; params: Record<string, string> }) =>
    handle(request, () => {
      const principal = options.authorize(request, params)
      const upload = ownUpload(principal, params.id!)
      switch (method(request)) {
        case 'HEAD':
          return head(request, upload)
        case 'PATCH':
          return patch(request, upload)
        case 'DELETE':
          return terminate(upload)
        default:
          throw new HttpError(405, 'Use HEAD, PATCH or DELETE on an upload', { allow: 'HEAD, PATCH, DELETE, OPTIONS' })
      }
    })

  const onDiscovery = ({ request }: { request: Request }) => handle(request, () => discovery(request))
  const onCreate = ({ request, server, params }: { request: Request; server: Server<unknown> | null; params: Record<string, string> }) =>
    handle(request, () => create(request, options.authorize(request, params), clientAddress(request, server, config.trustProxy)))

  // Discovery and CORS preflight carry no credentials.
  const discoveryIsPublic = { public: 'tus discovery and CORS preflight', errorFormat: tusError }
  const streamed = { parse: 'none', errorFormat: tusError } as const
  return new Elysia({ name: `tus:${prefix}` })
    .use(routePolicy)
    .use(errorFormats)
    .options(prefix, onDiscovery, discoveryIsPublic)
    .options(`${prefix}/`, onDiscovery, discoveryIsPublic)
    .options(`${prefix}/:id`, onDiscovery, discoveryIsPublic)
    .post(prefix, onCreate, streamed)
    .post(`${prefix}/`, onCreate, streamed)
    .head(`${prefix}/:id`, onUpload, { errorFormat: tusError })
    .patch(`${prefix}/:id`, onUpload, streamed)
    .delete(`${prefix}/:id`, onUpload, streamed)
    .post(`${prefix}/:id`, onUpload, streamed)
}

function folderFrom(text: string | undefined): number {
  if (text === undefined || text === '') return ROOT_FOLDER_ID
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, 'Metadata folder must be a folder id')
  return Number(text)
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}
