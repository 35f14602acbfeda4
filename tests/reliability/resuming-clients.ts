import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { inParallel, sha256 } from '../helpers/data.ts'
import { openDatabase, type SeededRandom, type ServerProcess } from './harness.ts'

/**
 * Clients that upload in parallel (Dropzone files, small and chunked, and tus files) to a server
 * that may die at any moment, resume from what the server says it holds after it comes back, and
 * check on the way that nothing acknowledged was lost; then what the database and the downloads
 * hold. Shared by the crash test (SIGKILL) and the power-loss test.
 */

/** The server as the clients see it. A request that fails (the server died) counts as "killed". */
export type Client = Pick<ServerProcess, 'url' | 'fetch'>

export const DZ_CHUNK_BYTES = 256 * 1024
export const KB = 1024
export const MB = 1024 * KB

export interface Source {
  name: string
  data: Uint8Array
  sha256: string
}

export interface DropzoneUpload {
  protocol: 'dropzone'
  source: Source
  uuid: string
  chunkCount: number
  /** Chunk indexes the server answered 200 for. */
  acked: Set<number>
}

export interface TusUpload {
  protocol: 'tus'
  source: Source
  /** Byte ranges of the PATCHes of the first round (so its requests can be counted). */
  pieces: [number, number][]
  /** The upload's path once the server answered its creation (201). */
  path: string | null
  /** The highest Upload-Offset the server answered a PATCH with. */
  ackedOffset: number
  /** What the server answered HEAD with after the last restart (for the report of a failure). */
  offsetAfterRestart?: number
}

export type Upload = DropzoneUpload | TusUpload

export const TUS = { 'tus-resumable': '1.0.0' }
export const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`

/** Answers of a server that is being killed: a refused or reset connection, a body cut short. */
export async function unlessKilled<T>(request: () => Promise<T>): Promise<T | 'killed'> {
  try {
    return await request()
  } catch {
    return 'killed'
  }
}

export function source(rng: SeededRandom, name: string, size: number, data?: Uint8Array): Source {
  const bytes = data ?? rng.bytes(size)
  return { name, data: bytes, sha256: sha256(bytes) }
}

/** PATCH ranges of random sizes from `offset` to `size`. */
export function piecesFrom(rng: SeededRandom, offset: number, size: number): [number, number][] {
  const pieces: [number, number][] = []
  for (let start = offset; start < size; ) {
    const end = Math.min(size, start + rng.int(64 * KB, 1536 * KB))
    pieces.push([start, end])
    start = end
  }
  return pieces
}

/** What one iteration uploads: small and chunked Dropzone files, tus files, some content shared. */
export function plan(rng: SeededRandom): { uploads: Upload[]; stored: Source } {
  const dropzone = (s: Source): DropzoneUpload => ({
    protocol: 'dropzone',
    source: s,
    uuid: `crash-${crypto.randomUUID()}`,
    chunkCount: Math.max(1, Math.ceil(s.data.length / DZ_CHUNK_BYTES)),
    acked: new Set(),
  })
  const tus = (s: Source): TusUpload => ({ protocol: 'tus', source: s, pieces: piecesFrom(rng, 0, s.data.length), path: null, ackedOffset: 0 })
  const tusA = source(rng, 'tus-a.bin', rng.int(512 * KB, 4 * MB))
  // Sent in one PATCH: over 2 MiB most of the time, so it takes the streamed path.
  const tusB = source(rng, 'tus-b.bin', rng.int(512 * KB, 4 * MB))
  const tusC = source(rng, 'tus-c.bin', rng.int(1, 256 * KB))
  const small = source(rng, 'dz-small.bin', rng.int(1, 200 * KB))
  const large = source(rng, 'dz-large.bin', rng.int(512 * KB, 4 * MB))
  const other = source(rng, 'dz-other.bin', rng.int(512 * KB, 4 * MB))
  // Half the time a Dropzone file and a tus file with the same content finalise side by side.
  const twin = rng.next() < 0.5 ? source(rng, 'dz-twin.bin', 0, tusA.data) : source(rng, 'dz-twin.bin', rng.int(512 * KB, 4 * MB))
  const uploads = [dropzone(small), dropzone(large), dropzone(other), dropzone(twin), tus(tusA), { ...tus(tusB), pieces: [[0, tusB.data.length] as [number, number]] }, tus(tusC)]
  // Content stored before the crash window, so one upload deduplicates onto an existing blob.
  const copied = uploads[rng.int(0, uploads.length - 1)]!.source
  return { uploads, stored: source(rng, 'stored-before.bin', 0, copied.data) }
}

export const requestCount = (upload: Upload) => (upload.protocol === 'dropzone' ? upload.chunkCount : 1 + upload.pieces.length)
export const unfinished = (upload: Upload) => (upload.protocol === 'dropzone' ? upload.acked.size < upload.chunkCount : upload.ackedOffset < upload.source.data.length)

/** Sends chunks of a Dropzone upload in the given order, three at a time, until the server dies. */
export async function sendDropzone(server: Client, upload: DropzoneUpload, indexes: number[], acknowledged: () => void, problems: string[]) {
  const { source: s } = upload
  let dead = false
  await inParallel(
    indexes.map((index) => async () => {
      if (dead) return
      const answer = await unlessKilled(async () => {
        const response = await sendChunk(server, chunkFields(upload.uuid, s.data.length, DZ_CHUNK_BYTES, index), chunkOf(s.data, DZ_CHUNK_BYTES, index), { fileName: s.name })
        return { status: response.status, body: await response.text() }
      })
      if (answer === 'killed') {
        dead = true
        return
      }
      if (answer.status !== 200) {
        problems.push(`${s.name} chunk ${index}: ${answer.status} ${answer.body}`)
        dead = true
        return
      }
      upload.acked.add(index)
      acknowledged()
    }),
    3,
  )
}

/**
 * Continues a Dropzone upload as the upload page does: asks the status endpoint which chunks the
 * server holds (after a restart, every chunk it acknowledged must be among them), then sends the
 * others out of order.
 */
export async function continueDropzone(server: Client, upload: DropzoneUpload, rng: SeededRandom, acknowledged: () => void, problems: string[]) {
  const held = new Set<number>()
  const response = await unlessKilled(async () => {
    const r = await server.fetch(`/upload/${upload.uuid}`)
    return { status: r.status, body: await r.text() }
  })
  if (response === 'killed') return
  if (response.status === 200) for (const index of (JSON.parse(response.body) as { chunks: number[] }).chunks) held.add(index)
  else if (response.status !== 404) problems.push(`${upload.source.name} status: ${response.status} ${response.body}`)
  const lost = [...upload.acked].filter((index) => !held.has(index))
  if (lost.length) problems.push(`${upload.source.name}: acknowledged chunks ${lost.join(', ')} lost (server holds ${[...held].join(', ') || 'none'})`)
  const missing = rng.shuffle([...Array(upload.chunkCount).keys()].filter((index) => !held.has(index)))
  await sendDropzone(server, upload, missing, acknowledged, problems)
}

export async function createTus(server: Client, upload: TusUpload) {
  return unlessKilled(async () => {
    const response = await server.fetch('/tus/', {
      method: 'POST',
      headers: { ...TUS, 'upload-length': String(upload.source.data.length), 'upload-metadata': metadata(upload.source.name) },
    })
    await response.arrayBuffer()
    const location = response.headers.get('location')
    return { status: response.status, path: location ? new URL(location, server.url).pathname : null }
  })
}

export async function patchTus(server: Client, upload: TusUpload, start: number, end: number) {
  return unlessKilled(async () => {
    const response = await server.fetch(upload.path!, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': String(start), 'content-type': 'application/offset+octet-stream' },
      body: upload.source.data.subarray(start, end) as Uint8Array<ArrayBuffer>,
    })
    return { status: response.status, offset: Number(response.headers.get('upload-offset')), body: await response.text() }
  })
}

export async function headTus(server: Client, upload: TusUpload) {
  return unlessKilled(async () => {
    const response = await server.fetch(upload.path!, { method: 'HEAD', headers: TUS })
    return { status: response.status, offset: Number(response.headers.get('upload-offset')) }
  })
}

/**
 * Continues a tus upload the way tus clients do: creates it if the server never answered its
 * creation, else asks HEAD for the offset (which must not be below the one acknowledged); then
 * PATCHes the rest, piece after piece.
 */
export async function continueTus(server: Client, upload: TusUpload, rng: SeededRandom, acknowledged: () => void, problems: string[]) {
  const { name, data } = upload.source
  let offset = 0
  if (upload.path) {
    const head = await headTus(server, upload)
    if (head === 'killed') return
    if (head.status !== 200) return void problems.push(`${name} HEAD: ${head.status}`)
    offset = upload.offsetAfterRestart = head.offset
    if (offset < upload.ackedOffset) problems.push(`${name}: acknowledged offset ${upload.ackedOffset}, the server now holds ${offset}`)
  } else {
    const created = await createTus(server, upload)
    if (created === 'killed') return
    if (created.status !== 201 || !created.path) return void problems.push(`${name} creation: ${created.status}`)
    upload.path = created.path
    acknowledged()
  }
  const pieces = offset === 0 && upload.pieces.length ? upload.pieces : piecesFrom(rng, offset, data.length)
  for (const [start, end] of pieces) {
    const answer = await patchTus(server, upload, start, end)
    if (answer === 'killed') return
    if (answer.status !== 204 || answer.offset !== end) return void problems.push(`${name} PATCH ${start}-${end}: ${answer.status} offset ${answer.offset} ${answer.body}`)
    upload.ackedOffset = answer.offset
    acknowledged()
  }
}

/** Every upload continued at once from where the server says it stands. */
export function continueAll(server: Client, uploads: Upload[], rng: SeededRandom, acknowledged: () => void, problems: string[]) {
  return Promise.all(
    uploads.map((upload) =>
      upload.protocol === 'dropzone' ? continueDropzone(server, upload, rng, acknowledged, problems) : continueTus(server, upload, rng, acknowledged, problems),
    ),
  )
}

/**
 * What the database records of each upload and its file (read once the server has stopped, so
 * that however the server locks its data directory does not matter).
 */
export function checkRecords(dataDir: string, uploads: Upload[], problems: string[]) {
  const db = openDatabase(dataDir)
  try {
    for (const upload of uploads) {
      const s = upload.source
      if (upload.protocol === 'tus' && !upload.path) {
        problems.push(`${s.name}: its creation was never answered`)
        continue
      }
      const row = db
        .query(
          `select u.state, u.received_bytes as receivedBytes, u.total_bytes as totalBytes, u.received_chunks as receivedChunks, u.chunk_count as chunkCount,
                  f.id, f.name, f.sha256, f.size_bytes as size
           from uploads u left join files f on f.id = u.file_id
           where ${upload.protocol === 'dropzone' ? "u.owner = 'admin' and u.client_key = ?" : 'u.id = ?'}`,
        )
        .get(upload.protocol === 'dropzone' ? upload.uuid : upload.path!.split('/').pop()!) as {
        state: string
        receivedBytes: number
        totalBytes: number
        receivedChunks: number
        chunkCount: number
        id: number | null
        name: string
        sha256: string
        size: number
      } | null
      if (!row || row.state !== 'complete' || row.id === null) {
        const progress = row && `${row.receivedBytes} of ${row.totalBytes} bytes, ${row.receivedChunks} of ${row.chunkCount} chunks`
        const offsets = upload.protocol === 'tus' && `acknowledged offset ${upload.ackedOffset}, HEAD after the last restart ${upload.offsetAfterRestart}`
        problems.push(`${s.name}: upload ${row ? `${row.state} (${progress})` : 'missing'}, no file${offsets ? `; ${offsets}` : ''}`)
      } else if (row.name !== s.name || row.sha256 !== s.sha256 || row.size !== s.data.length) {
        problems.push(`${s.name}: stored as ${row.name}, ${row.size} bytes, ${row.sha256}`)
      }
    }
  } finally {
    db.close()
  }
}

/** Downloads each Dropzone upload's file from where its status says it is. */
export async function checkDownloads(server: Client, uploads: Upload[], problems: string[]) {
  for (const upload of uploads) {
    if (upload.protocol !== 'dropzone') continue
    const status = (await (await server.fetch(`/upload/${upload.uuid}`)).json()) as { file: { url: string } | null }
    if (!status.file) continue // checkRecords says why
    const download = await server.fetch(status.file.url)
    const bytes = new Uint8Array(await download.arrayBuffer())
    if (download.status !== 200 || sha256(bytes) !== upload.source.sha256) problems.push(`${upload.source.name}: download ${download.status}, ${bytes.length} bytes, not the source`)
  }
}

export function fileRowCount(dataDir: string): number {
  const db = openDatabase(dataDir)
  try {
    return (db.query('select count(*) as n from files').get() as { n: number }).n
  } finally {
    db.close()
  }
}

