import type { Server } from 'bun'
import { ROOT_FOLDER_ID } from '../../core/records.ts'
import { cleanFileName } from '../../engine/file-names.ts'
import { HttpError } from '../../errors.ts'
import { clientAddress } from '../../http/client-address.ts'
import { admitFinal } from './limits.ts'
import {
  checksummed,
  endpointOf,
  expires,
  fileLocation,
  isOffsetStream,
  ownUpload,
  respond,
  UPLOAD_ID,
  wholeNumberHeader,
  type TusOptions,
} from './shared.ts'

/** Bounds on what clients may send in headers (a larger header is 431, anything malformed 400). */
const MAX_METADATA_BYTES = 4096
const MAX_CONCAT_BYTES = 8192
const MAX_CONCAT_PARTS = 100

export interface CreateContext {
  request: Request
  server: Server<unknown> | null
  params: Record<string, string>
}

/**
 * POST on the endpoint (creation, creation-defer-length, creation-with-upload, concatenation):
 * a new upload, a partial one, or a final one assembled from the caller's partials; its
 * Location is the endpoint the client called plus the upload's id.
 */
export async function create({ request, server, params }: CreateContext, options: TusOptions): Promise<Response> {
  const { engine, config } = options
  const principal = await options.authorize(request, params)
  const address = clientAddress(request, server, config.trustProxy)
  const endpoint = endpointOf(request, false)
  const metadata = parseMetadata(request.headers.get('upload-metadata'))
  const concat = request.headers.get('upload-concat')
  if (concat !== null && concat.length > MAX_CONCAT_BYTES) throw new HttpError(431, `Upload-Concat is longer than ${MAX_CONCAT_BYTES} bytes`)
  const folderId = principal.folderId ?? folderFrom(metadata.get('folder'))
  const fileName = metadata.get('filename') ?? metadata.get('name') ?? ''
  if (!fileName && concat === null) throw new HttpError(400, 'Upload-Metadata needs a filename')
  // Checked before anything is made (a partial's name is optional, but never a bad one).
  if (fileName) cleanFileName(fileName)
  const base = { protocol: 'tus' as const, owner: principal.owner, folderId, fileName, clientAddress: address, metadata: request.headers.get('upload-metadata') }
  if (concat?.startsWith('final;')) {
    if (request.headers.has('upload-length')) throw new HttpError(400, 'A final upload must not carry Upload-Length')
    const partIds = concatenatedIds(concat, request.url)
    const parts = []
    for (const id of partIds) parts.push(await ownUpload(engine, principal, id))
    if (!fileName) throw new HttpError(400, 'Upload-Metadata of a final upload needs a filename')
    await admitFinal(engine, principal, fileName, parts)
    // A large one is answered before its bytes are assembled: HEAD shows its offset growing.
    const upload = await engine.concatenate(base, partIds, principal.admit)
    return respond(201, { location: `${endpoint}/${upload.id}`, 'upload-offset': String(upload.receivedBytes), ...expires(engine, upload), ...fileLocation(principal, upload) })
  }
  if (concat !== null && concat !== 'partial') throw new HttpError(400, 'Upload-Concat must be "partial" or "final;<urls>"')
  const length = wholeNumberHeader(request, 'Upload-Length')
  const deferred = request.headers.get('upload-defer-length')
  if (deferred !== null && deferred !== '1') throw new HttpError(400, 'Upload-Defer-Length must be 1')
  if ((length === null) === (deferred === null)) throw new HttpError(400, 'Send either Upload-Length or Upload-Defer-Length: 1')
  let upload = await engine.begin({ ...base, totalBytes: length, concat: concat === 'partial' ? 'partial' : undefined }, principal.admit)
  if (request.body && isOffsetStream(request)) {
    // creation-with-upload: the first bytes ride along with the creation request.
    const created = upload
    upload = await engine.appendingAlone(created.id, () => {
      const { body, verify } = checksummed(request, request.body!)
      return engine.write(created, 0, body, verify)
    }).catch(async (error) => {
      // The client learns no Location from a refusal: the upload it would have made goes.
      await engine.discardIfEmpty(created.id)
      throw error
    })
  }
  // Always sent: tus-js-client expects it whenever it asked for creation-with-upload.
  return respond(201, { location: `${endpoint}/${upload.id}`, 'upload-offset': String(upload.receivedBytes), ...expires(engine, upload), ...fileLocation(principal, upload) })
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

/** Metadata `folder`: where the file goes when the principal does not fix it (root by default). */
function folderFrom(text: string | undefined): number {
  if (text === undefined || text === '') return ROOT_FOLDER_ID
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, 'Metadata folder must be a folder id')
  return Number(text)
}
