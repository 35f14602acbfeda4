import { Elysia } from 'elysia'
import type { Config } from '../config.ts'
import { ROOT_FOLDER_ID } from '../core/records.ts'
import type { UploadEngine } from '../engine/engine.ts'
import type { Upload } from '../core/records.ts'
import type { FileInfo, UploadStatus } from '../engine/types.ts'
import { collect, once } from '../engine/bodies.ts'
import { HttpError } from '../errors.ts'
import { clientAddress } from '../http/client-address.ts'
import { errorFormats, jsonError, refusalOf } from '../http/errors.ts'
import { boundaryOf, readMultipart, wholeBody, type BodySource } from './multipart.ts'
import type { UploadPrincipal } from './principal.ts'

/**
 * Dropzone.js's chunk protocol (and plain multipart uploads) in front of the upload engine.
 * Dropzone sends its dz* fields before the file part, so a chunk's bytes can be validated
 * and streamed straight to their offset without buffering.
 */

const DZ_FIELDS = ['dzuuid', 'dzchunkindex', 'dztotalfilesize', 'dzchunksize', 'dztotalchunkcount', 'dzchunkbyteoffset'] as const
/** Multipart headers and the small dz fields around a chunk's bytes. */
const ENVELOPE_BYTES = 64 * 1024
/** A refused request is read to its end (up to this much) so the browser sees our answer, not a reset. */
const DRAIN_LIMIT_BYTES = 128 * 1024 * 1024
/** Requests up to this size (by Content-Length) are read into memory at once. */
const WHOLE_BODY_BYTES = 2 * 1024 * 1024 + ENVELOPE_BYTES

/**
 * How a request's file may be held: read whole by Bun before anything is parsed (`whole`),
 * collected from the stream once its fields passed the checks (`part`), or only streamed (`none`).
 */
type Holding = 'whole' | 'part' | 'none'

export interface DropzoneOptions {
  /** Route of the upload endpoint; the status endpoint is `${path}/:key`. May hold params. */
  path: string
  engine: UploadEngine
  config: Config
  authorize: (request: Request, params: Record<string, string>) => UploadPrincipal | Promise<UploadPrincipal>
}

/** How many chunks Dropzone cuts a file of `totalBytes` into (an empty file is one empty chunk). */
export function chunkCountFor(totalBytes: number, chunkBytes: number): number {
  return Math.max(1, Math.ceil(totalBytes / chunkBytes))
}

function wholeNumber(fields: Map<string, string>, name: string): number {
  const text = fields.get(name)
  if (text === undefined) throw new HttpError(400, `Missing field ${name}`)
  const value = Number(text)
  if (!/^\d{1,16}$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new HttpError(400, `Field ${name} must be a whole number of 0 or more, got "${text.slice(0, 40)}"`)
  }
  return value
}

function folderOf(principal: UploadPrincipal, fields: Map<string, string>, query: Record<string, string | undefined>): number {
  if (principal.folderId !== undefined) return principal.folderId
  const text = fields.get('folder') ?? query.folder
  if (text === undefined || text === '') return ROOT_FOLDER_ID
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, `Field folder must be a folder id, got "${text.slice(0, 40)}"`)
  return Number(text)
}

/** A stored file as this client may see it (a visitor gets no admin URL). */
function visibleFile(principal: UploadPrincipal, file: FileInfo | null): FileInfo | null {
  if (!file || !principal.fileUrl) return file
  return { ...file, url: principal.fileUrl(file.id) as string }
}

function storedFile(principal: UploadPrincipal, status: UploadStatus): FileInfo {
  if (status.state !== 'complete' || !status.file) throw new HttpError(500, status.error ?? 'The upload could not be stored')
  return visibleFile(principal, status.file)!
}

const scopedKey = (principal: UploadPrincipal, key: string) => (principal.clientKeyScope ? `${principal.clientKeyScope}:${key}` : key)
const unscopedKey = (principal: UploadPrincipal, key: string | null) =>
  key !== null && principal.clientKeyScope ? key.slice(principal.clientKeyScope.length + 1) : key

function uploadJson(principal: UploadPrincipal, status: UploadStatus) {
  return {
    upload: {
      id: unscopedKey(principal, status.clientKey) ?? status.id,
      state: status.state,
      receivedChunks: status.receivedChunks,
      totalChunks: status.chunkCount,
      receivedBytes: status.receivedBytes,
      totalBytes: status.totalBytes,
      chunkBytes: status.chunkBytes,
      error: status.error,
    },
    file: visibleFile(principal, status.file),
  }
}

export function dropzoneRoutes(options: DropzoneOptions) {
  const { engine, config } = options

  async function receive(
    principal: UploadPrincipal,
    request: Request,
    reader: BodySource,
    declared: number,
    holding: Holding,
    query: Record<string, string | undefined>,
    address: string | null,
  ) {
    const fields = new Map<string, string>()
    const finished: FileInfo[] = []
    /** Whole files of a request read into memory: stored together at the end, all or none. */
    const held: { fileName: string; bytes: Uint8Array }[] = []
    /** Whole files of a request streamed to disk: completed together at the end, or all cancelled. */
    const streamed: Upload[] = []
    let chunk: UploadStatus | null = null
    try {
      for await (const part of readMultipart(reader, boundaryOf(request.headers.get('content-type')))) {
        if (part.filename === null) {
          if (fields.size >= 100) throw new HttpError(400, 'Too many form fields')
          fields.set(part.name, (await part.text(4096)).trim())
          continue
        }
        if (chunk) throw new HttpError(400, 'A chunk request carries exactly one file part')
        if (DZ_FIELDS.some((name) => fields.has(name))) {
          if (held.length > 0 || streamed.length > 0) throw new HttpError(400, 'A chunk request carries exactly one file part')
          chunk = await receiveChunk(principal, fields, part.filename, part.body(), holding, query, declared, address)
        } else {
          if (principal.sizeUpFront && !(declared > 0)) throw new HttpError(411, 'Send a Content-Length with the upload')
          const spec = {
            protocol: 'plain' as const,
            owner: principal.owner,
            folderId: folderOf(principal, fields, query),
            fileName: part.filename,
            totalBytes: null,
            clientAddress: address,
          }
          // Files of a small request are held in memory (within the budget) and stored together
          // at the end. A link's type and count limits are checked before a file's bytes are read.
          if (holding !== 'none') {
            if (holding === 'part') await engine.precheck(spec, principal.admit)
            held.push({ fileName: part.filename, bytes: await collect(part.body()) })
            continue
          }
          try {
            // A file is no larger than its request: that bounds what it reserves and may grow to.
            const upload = await engine.begin({ ...spec, atMostBytes: declared > 0 ? declared : undefined }, principal.admit)
            streamed.push(await engine.write(upload, 0, part.body()))
          } catch (error) {
            // Files before it in this request are not stored either: say which file was refused.
            const refusal = refusalOf(error)
            if (streamed.length === 0 || !refusal) throw error
            throw new HttpError(refusal.status, `“${part.filename.slice(0, 255)}”: ${refusal.message} None of the files of this request was stored.`, refusal.headers)
          }
        }
      }
    } catch (error) {
      for (const upload of streamed) if (await engine.cancel(upload.id)) await engine.dismiss(upload.id)
      throw error
    }
    // Every file of the request is here: each becomes a file (a failure is answered once all have tried).
    for (const completed of await Promise.allSettled(streamed.map((upload) => engine.complete(upload)))) {
      if (completed.status === 'rejected') throw completed.reason
      finished.push(storedFile(principal, await engine.status(completed.value.id)))
    }
    if (held.length > 0) {
      const whole = { owner: principal.owner, folderId: folderOf(principal, fields, query), clientAddress: address }
      for (const status of (await engine.storeWhole({ ...whole, protocol: 'plain', clientKey: null }, held, principal.admit))!) finished.push(storedFile(principal, status))
    }
    if (chunk) {
      if (chunk.state === 'failed') throw new HttpError(500, chunk.error ?? 'The upload could not be stored')
      return uploadJson(principal, chunk)
    }
    if (finished.length === 0) throw new HttpError(400, 'The request has no file part (send the file as a form field named "file")')
    return { file: finished[0], files: finished }
  }

  async function receiveChunk(
    principal: UploadPrincipal,
    fields: Map<string, string>,
    fileName: string,
    body: AsyncIterable<Uint8Array>,
    holding: Holding,
    query: Record<string, string | undefined>,
    declared: number,
    address: string | null,
  ) {
    const clientKey = fields.get('dzuuid') ?? ''
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(clientKey)) throw new HttpError(400, 'Field dzuuid must be 1 to 100 letters, digits, "-" or "_"')
    const index = wholeNumber(fields, 'dzchunkindex')
    const totalBytes = wholeNumber(fields, 'dztotalfilesize')
    const chunkBytes = wholeNumber(fields, 'dzchunksize')
    const chunkCount = wholeNumber(fields, 'dztotalchunkcount')
    const offset = wholeNumber(fields, 'dzchunkbyteoffset')
    if (chunkBytes === 0) throw new HttpError(400, 'Field dzchunksize must be at least 1')
    if (chunkBytes > config.maxChunkBytes) {
      throw new HttpError(413, `Chunks of ${chunkBytes} bytes are too large; the limit is ${config.maxChunkBytes} bytes`)
    }
    if (declared > chunkBytes + ENVELOPE_BYTES) {
      throw new HttpError(413, `The request is ${declared} bytes, larger than a ${chunkBytes}-byte chunk`)
    }
    if (index >= chunkCount) throw new HttpError(400, `Chunk index ${index} is not below the chunk count ${chunkCount}`)
    if (offset !== index * chunkBytes) {
      throw new HttpError(400, `Chunk ${index} must start at byte ${index * chunkBytes}, not ${offset}`)
    }
    if (totalBytes > config.maxFileBytes) {
      throw new HttpError(413, `The file is ${totalBytes} bytes; the limit is ${config.maxFileBytes} bytes`)
    }
    const expectedCount = chunkCountFor(totalBytes, chunkBytes)
    if (chunkCount !== expectedCount) {
      throw new HttpError(400, `A ${totalBytes}-byte file in ${chunkBytes}-byte chunks has ${expectedCount} chunks, not ${chunkCount}`)
    }
    const spec = {
      protocol: 'dropzone' as const,
      owner: principal.owner,
      clientKey: scopedKey(principal, clientKey),
      folderId: folderOf(principal, fields, query),
      keepStartedFolder: principal.folderId !== undefined,
      fileName,
      totalBytes,
      chunkBytes,
      chunkCount,
      clientAddress: address,
    }
    // A file in one chunk of a small request (most small files) is stored in one step, unless
    // the upload is known already (a retry, or a request for it that got in first).
    if (holding !== 'none' && chunkCount === 1) {
      engine.checkLayout(spec)
      if (holding === 'part') await engine.precheck(spec, principal.admit)
      const bytes = await collect(body)
      if (bytes.length !== totalBytes) throw new HttpError(400, `Chunk 0 has ${bytes.length} bytes; expected ${totalBytes}`)
      const whole = { protocol: 'dropzone' as const, owner: spec.owner, clientKey: spec.clientKey, folderId: spec.folderId, chunkBytes, clientAddress: address }
      const stored = await engine.storeWhole(whole, [{ fileName, bytes }], principal.admit)
      if (stored) return stored[0]!
      body = once(bytes)
    }
    const upload = await engine.begin(spec, principal.admit)
    const written = await engine.write(upload, index * chunkBytes, body).catch(async (error) => {
      // A refused first chunk must not leave the upload it created behind.
      await engine.discardIfEmpty(upload.id)
      throw error
    })
    return engine.status(written.id)
  }

  return new Elysia({ name: `dropzone:${options.path}` })
    .use(errorFormats)
    .post(
      options.path,
      async ({ request, query, server, params }) => {
        const principal = await options.authorize(request, params as Record<string, string>)
        const declared = Number(request.headers.get('content-length') ?? Number.NaN)
        if (declared > config.maxFileBytes + ENVELOPE_BYTES) {
          throw new HttpError(413, `The request is ${declared} bytes; the largest file accepted is ${config.maxFileBytes} bytes`)
        }
        if (!request.body) throw new HttpError(400, 'The request has no body')
        // A small body may be held in memory, within a budget shared by all requests.
        const small = declared <= WHOLE_BODY_BYTES
        const release = small ? engine.memory.take(declared) : null
        if (small && !release) throw new HttpError(503, 'The server is busy receiving other uploads; retry in a moment', { 'retry-after': '1', connection: 'close' })
        // The admin's small body is read whole by Bun's native code: streaming it through JavaScript
        // piece by piece cost more than the bytes (1 MB chunks, small files). A drop link's is
        // streamed, so that its limits are checked from the dz fields before the file is read.
        const holding: Holding = !small ? 'none' : principal.admit ? 'part' : 'whole'
        const reader = holding === 'whole' ? wholeBody(request.bytes()) : request.body.getReader()
        try {
          return await receive(principal, request, reader, declared, holding, query, clientAddress(request, server, config.trustProxy))
        } catch (error) {
          if (declared <= DRAIN_LIMIT_BYTES) await drainReader(reader)
          throw error
        } finally {
          release?.()
        }
      },
      { parse: 'none', errorFormat: jsonError },
    )
    .get(`${options.path}/:key`, async ({ request, params }) => {
      const principal = await options.authorize(request, params as Record<string, string>)
      const upload = await engine.findByClientKey(principal.owner, scopedKey(principal, (params as Record<string, string>).key!))
      if (!upload) throw new HttpError(404, 'No such upload')
      const status = await engine.status(upload.id)
      const chunks = status.state === 'complete' ? [...Array(status.chunkCount).keys()] : await engine.receivedChunks(upload.id)
      return { ...uploadJson(principal, status), chunks }
    }, { errorFormat: jsonError })
}

async function drainReader(reader: BodySource) {
  try {
    for (;;) if ((await reader.read()).done) return
  } catch {
    // The client went away; nothing left to drain.
  }
}
