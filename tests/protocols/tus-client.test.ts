/**
 * Dropfold's tus endpoint driven by the real tus-js-client (its Node build: node:http requests,
 * Buffer and Readable inputs), so what we test is what third-party tus clients actually send.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { Readable } from 'node:stream'
import { Upload } from 'tus-js-client'
import { randomData, sha256 } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { baseOptions, cuttingProxy, memoryUrlStorage, recordExchanges, run, settledOffset, tusHead, uploadIdOf, type TusExchange } from '../helpers/tus.ts'
import { stagedUploads } from '../helpers/stored.ts'


const KiB = 1024
const MiB = 1024 * KiB

let server: TestServer
beforeEach(async () => {
  server = await startTestServer({ MAX_FILE_SIZE: '64M' })
})
afterEach(async () => {
  await server.stop()
})

interface UploadRecord {
  id: string
  state: string
  total_bytes: number
  received_bytes: number
  concat: string | null
  part_ids: string | null
  file_id: number | null
}
interface FileRecord {
  id: number
  folder_id: number
  name: string
  size_bytes: number
  sha256: string
}

const uploadRows = () => server.sql.all('select id, state, total_bytes, received_bytes, concat, part_ids, file_id from uploads order by created_at, id') as UploadRecord[]
const fileRows = () => server.sql.all('select id, folder_id, name, size_bytes, sha256 from files') as FileRecord[]
const uploadRow = (id: string) => server.sql.get('select id, state, total_bytes, received_bytes, concat, part_ids, file_id from uploads where id = ?', id) as UploadRecord | null
const stagingFiles = () => stagedUploads(server)

/** The file a finished tus upload became. */
function fileOf(uploadUrl: string): FileRecord {
  const upload = uploadRow(uploadIdOf(uploadUrl))
  expect(upload).not.toBeNull()
  expect(upload!.state).toBe('complete')
  expect(upload!.file_id).not.toBeNull()
  return server.sql.get('select id, folder_id, name, size_bytes, sha256 from files where id = ?', upload!.file_id) as FileRecord
}

async function download(fileId: number): Promise<Uint8Array> {
  const response = await server.fetch(`/files/${fileId}/download`)
  expect(response.status).toBe(200)
  return new Uint8Array(await response.arrayBuffer())
}

/** Byte-identical without printing megabytes on failure. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array) {
  expect(actual.length).toBe(expected.length)
  expect(sha256(actual)).toBe(sha256(expected))
}

const patches = (exchanges: TusExchange[]) => exchanges.filter((e) => e.method === 'PATCH')
const bodyBytes = (exchanges: TusExchange[]) => exchanges.reduce((sum, e) => sum + e.bodyBytes, 0)

/**
 * Starts an upload and aborts it (without terminating) from onProgress once at least `fraction`
 * of the bytes went out; resolves once the abort is done, with what the client had seen. (In Bun
 * the Node build reports progress inside a request only when the body is queued, so in practice
 * the abort lands right after a PATCH was acknowledged; the assertions hold either way.)
 */
async function uploadUntil(fraction: number, data: Buffer, options: ConstructorParameters<typeof Upload>[1]) {
  const record = recordExchanges()
  const { promise: aborted, resolve } = Promise.withResolvers<number>()
  let abortedAt: number | null = null
  const upload: Upload = new Upload(data, {
    ...options,
    ...record.hooks,
    onProgress(bytesSent) {
      if (abortedAt === null && bytesSent >= fraction * data.length) {
        abortedAt = bytesSent
        upload.abort().then(() => resolve(bytesSent))
      }
    },
  })
  const failed = run(upload).then(() => {
    throw new Error('the upload finished before it could be aborted')
  })
  const sentWhenAborted = await Promise.race([aborted, failed])
  expect(upload.url).toBeString()
  /** The last offset the server acknowledged to this client. */
  const acknowledged = Math.max(0, ...record.exchanges.map((e) => Number(e.responseHeaders?.['upload-offset'] ?? 0)))
  return { upload, exchanges: record.exchanges, sentWhenAborted, acknowledged, url: upload.url! }
}

/** Resumes from URL storage with a fresh Upload for the same bytes and waits for it to finish. */
async function resumeFromStorage(data: Buffer, options: ConstructorParameters<typeof Upload>[1]) {
  const record = recordExchanges()
  const progress: number[] = []
  const upload = new Upload(data, { ...options, ...record.hooks, onProgress: (sent) => progress.push(sent) })
  const previous = await upload.findPreviousUploads()
  expect(previous).toHaveLength(1)
  await run(upload, previous[0])
  return { upload, previous: previous[0]!, exchanges: record.exchanges, progress }
}

describe('tus-js-client (Node build) against Dropfold', () => {
  test('tus-js-client uploads a file with parallelUploads: 3 and it downloads byte-identical', async () => {
    const data = Buffer.from(randomData(5 * MiB + 12345))
    const record = recordExchanges()
    const upload = new Upload(data, {
      ...baseOptions(server),
      ...record.hooks,
      parallelUploads: 3,
      chunkSize: 1 * MiB,
      metadata: { filename: 'parallel report.bin', filetype: 'application/octet-stream' },
    })
    await run(upload)

    // Three partial uploads, then one final upload that concatenates them.
    const posts = record.exchanges.filter((e) => e.method === 'POST')
    expect(posts).toHaveLength(4)
    expect(posts.filter((e) => e.headers['Upload-Concat'] === 'partial')).toHaveLength(3)
    expect(posts.every((e) => e.status === 201)).toBe(true)
    expect(patches(record.exchanges).every((e) => e.status === 204)).toBe(true)
    expect(bodyBytes(record.exchanges)).toBe(data.length)

    // The final upload used the partials up: their rows and bytes are gone.
    const rows = uploadRows()
    const finals = rows.filter((r) => r.concat === 'final')
    expect(rows.filter((r) => r.concat === 'partial')).toEqual([])
    expect(finals).toHaveLength(1)
    expect(rows).toHaveLength(1)
    const final = finals[0]!
    expect(final.id).toBe(uploadIdOf(upload.url!))
    expect(final).toMatchObject({ state: 'complete', total_bytes: data.length, received_bytes: data.length })
    // The final lists the partials in the order tus-js-client gave them (= the order of the bytes).
    const finalPost = posts.find((e) => e.headers['Upload-Concat']?.startsWith('final;'))!
    const partUrls = finalPost.headers['Upload-Concat']!.slice('final;'.length).trim().split(' ')
    expect(JSON.parse(final.part_ids!)).toEqual(partUrls.map(uploadIdOf))

    const file = fileOf(upload.url!)
    expect(fileRows()).toHaveLength(1)
    expect(file).toMatchObject({ name: 'parallel report.bin', folder_id: 1, size_bytes: data.length, sha256: sha256(data) })
    expectSameBytes(await download(file.id), data)

    // The final upload's HEAD still answers (tus-js-client may resume against it) and says it is done.
    const head = await tusHead(server, upload.url!)
    expect(head.status).toBe(200)
    expect(head.offset).toBe(data.length)
    expect(await stagingFiles()).toEqual([])
    expect(server.logs).toEqual([])
  })

  test('an upload aborted half-way resumes with findPreviousUploads() and sends only the rest', async () => {
    const data = Buffer.from(randomData(8 * MiB + 777))
    const urlStorage = memoryUrlStorage()
    const options = baseOptions(server, {
      chunkSize: 512 * KiB,
      metadata: { filename: 'resumed.bin' },
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      urlStorage,
      fingerprint: async () => `fp-${sha256(data)}`,
    })

    const first = await uploadUntil(0.4, data, options)
    expect(first.sentWhenAborted).toBeGreaterThanOrEqual(0.4 * data.length)
    expect(urlStorage.entries.size).toBe(1)
    expect([...urlStorage.entries.values()][0]!.uploadUrl).toBe(first.url)

    // The server kept at least what it acknowledged, and never more than the client handed over.
    const offset = await settledOffset(server, first.url)
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThan(data.length)
    expect(offset).toBeGreaterThanOrEqual(first.acknowledged)
    expect(offset).toBeLessThanOrEqual(bodyBytes(first.exchanges))
    const head = await tusHead(server, first.url)
    expect(head).toMatchObject({ status: 200, offset, length: String(data.length) })
    expect(uploadRow(uploadIdOf(first.url))).toMatchObject({ state: 'receiving', received_bytes: offset })

    const second = await resumeFromStorage(data, options)
    expect(second.previous.uploadUrl).toBe(first.url)
    expect(second.upload.url).toBe(first.url)
    // No new upload: HEAD for the offset, then PATCHes from exactly there.
    expect(second.exchanges.some((e) => e.method === 'POST')).toBe(false)
    expect(second.exchanges[0]).toMatchObject({ method: 'HEAD', url: first.url, status: 200 })
    expect(Number(second.exchanges[0]!.responseHeaders!['upload-offset'])).toBe(offset)
    const secondPatches = patches(second.exchanges)
    expect(secondPatches[0]!.headers['Upload-Offset']).toBe(String(offset))
    expect(secondPatches.every((e) => e.status === 204)).toBe(true)
    expect(second.progress[0]).toBe(offset)
    // Only the rest went over the wire the second time.
    expect(bodyBytes(second.exchanges)).toBe(data.length - offset)
    expect(Number(secondPatches.at(-1)!.responseHeaders!['upload-offset'])).toBe(data.length)

    const file = fileOf(first.url)
    expect(fileRows()).toHaveLength(1)
    expect(uploadRows()).toHaveLength(1)
    expect(file).toMatchObject({ name: 'resumed.bin', size_bytes: data.length, sha256: sha256(data) })
    expectSameBytes(await download(file.id), data)
    expect(urlStorage.entries.size).toBe(0) // removeFingerprintOnSuccess
    expect(await stagingFiles()).toEqual([])
  })

  /** Uploads 6 MiB in 2 MiB PATCHes through a proxy that cuts the link ~1 MiB into the second PATCH's body. */
  async function uploadThroughCut(stallMs: number) {
    const chunkSize = 2 * MiB
    const data = Buffer.from(randomData(6 * MiB + 3))
    // The proxy counts every byte the client sends, request heads included: byte 3 MiB lies about
    // 1 MiB into the body of the second PATCH.
    const proxy = await cuttingProxy(server.url, 3 * MiB, { stallMs })
    try {
      const record = recordExchanges()
      const upload = new Upload(data, {
        ...baseOptions(server),
        ...record.hooks,
        endpoint: `${proxy.url}/tus/`,
        chunkSize,
        retryDelays: [0, 100, 200, 400, 800, 1600],
        metadata: { filename: 'cut.bin' },
      })
      await run(upload)
      await proxy.cut
      const exchanges = record.exchanges.map((e) => ({ method: e.method, offset: e.headers['Upload-Offset'], status: e.status, answer: e.responseHeaders?.['upload-offset'] }))
      return { data, chunkSize, upload, exchanges }
    } finally {
      proxy.stop()
    }
  }

  test('a connection cut in the middle of a PATCH body is resumed by tus-js-client from the bytes the server kept', async () => {
    // The dead link hangs a while before it closes, so the server has read what got through (bytes
    // still unread in Bun's request stream when the connection closes are dropped by the runtime).
    const { data, chunkSize, upload, exchanges: ex } = await uploadThroughCut(500)
    // POST, PATCH 0 (204), PATCH 2 MiB (cut: no answer), then tus-js-client's retries: HEAD, PATCH…
    expect(ex.slice(0, 3)).toMatchObject([
      { method: 'POST', status: 201 },
      { method: 'PATCH', offset: '0', status: 204, answer: String(chunkSize) },
      { method: 'PATCH', offset: String(chunkSize), status: undefined },
    ])
    // A retry that comes while the server is still finishing the broken PATCH sees the old offset
    // and is answered 423 (upload locked); the client then asks again. Either way it resumes with
    // a PATCH at the offset the HEAD just before it reported.
    const resumedAt = ex.findIndex((e, i) => i > 2 && e.method === 'PATCH' && e.status === 204)
    const retries = ex.slice(3, resumedAt)
    expect(retries.at(-1)).toMatchObject({ method: 'HEAD', status: 200 })
    expect(retries.every((e) => (e.method === 'HEAD' && e.status === 200) || (e.method === 'PATCH' && (e.status === 423 || e.status === 409)))).toBe(true)
    const kept = Number(retries.at(-1)!.answer)
    expect(ex[resumedAt]!.offset).toBe(String(kept))
    // The part of the cut body that reached the server was kept, not thrown away.
    expect(kept).toBeGreaterThan(chunkSize)
    expect(kept).toBeLessThan(chunkSize + 1 * MiB)
    expect(ex.slice(resumedAt).every((e) => e.method === 'PATCH' && e.status === 204)).toBe(true)
    expect(Number(ex.at(-1)!.answer)).toBe(data.length)

    const file = fileOf(upload.url!)
    expect(file).toMatchObject({ name: 'cut.bin', size_bytes: data.length, sha256: sha256(data) })
    expectSameBytes(await download(file.id), data)
    expect(fileRows()).toHaveLength(1)
    expect(uploadRows()).toHaveLength(1)
    expect(await stagingFiles()).toEqual([])
  })

  /** A client that goes away mid-PATCH is an everyday event, not a server fault to log. */
  test('a client that disconnects mid-PATCH is not logged as an unexpected server error', async () => {
    const { data, upload } = await uploadThroughCut(300)
    expect(fileOf(upload.url!).sha256).toBe(sha256(data))
    expect(server.logs.filter((line) => line.startsWith('unexpected error'))).toEqual([])
  })

  test('tus-js-client with a deferred length streams a Readable without Upload-Length up front', async () => {
    const data = Buffer.from(randomData(3 * MiB + 4321))
    // Odd-sized pieces, so chunk boundaries never line up with what the stream yields.
    const pieces: Buffer[] = []
    for (let at = 0; at < data.length; at += 100_003) pieces.push(data.subarray(at, at + 100_003))
    const record = recordExchanges()
    const upload = new Upload(Readable.from(pieces) as unknown as Buffer, {
      ...baseOptions(server),
      ...record.hooks,
      uploadLengthDeferred: true,
      chunkSize: 1 * MiB,
      metadata: { filename: 'streamed.bin' },
    })
    await run(upload)

    const [post, ...rest] = record.exchanges
    expect(post).toMatchObject({ method: 'POST', status: 201, bodyBytes: 0 })
    expect(post!.headers['Upload-Defer-Length']).toBe('1')
    expect(post!.headers['Upload-Length']).toBeUndefined()
    expect(rest.every((e) => e.method === 'PATCH' && e.status === 204)).toBe(true)
    // The length is declared once, by the PATCH that reaches the end of the stream.
    const declaring = rest.filter((e) => e.headers['Upload-Length'] !== undefined)
    expect(declaring).toHaveLength(1)
    expect(declaring[0]!.headers['Upload-Length']).toBe(String(data.length))
    expect(bodyBytes(record.exchanges)).toBe(data.length)

    const file = fileOf(upload.url!)
    expect(file).toMatchObject({ name: 'streamed.bin', size_bytes: data.length, sha256: sha256(data) })
    expectSameBytes(await download(file.id), data)
    expect(fileRows()).toHaveLength(1)
    expect(await stagingFiles()).toEqual([])
  })

  test('tus-js-client with uploadDataDuringCreation sends the first chunk with the POST (creation-with-upload)', async () => {
    const data = Buffer.from(randomData(2 * MiB + 99))
    const record = recordExchanges()
    const upload = new Upload(data, {
      ...baseOptions(server),
      ...record.hooks,
      uploadDataDuringCreation: true,
      chunkSize: 1 * MiB,
      metadata: { filename: 'with-creation.bin' },
    })
    await run(upload)

    const [post, ...rest] = record.exchanges
    expect(post).toMatchObject({ method: 'POST', status: 201, bodyBytes: 1 * MiB })
    expect(post!.headers['Content-Type']).toBe('application/offset+octet-stream')
    expect(post!.responseHeaders!['upload-offset']).toBe(String(1 * MiB))
    expect(rest.map((e) => [e.method, e.headers['Upload-Offset'], e.status])).toEqual([
      ['PATCH', String(1 * MiB), 204],
      ['PATCH', String(2 * MiB), 204],
    ])
    expect(bodyBytes(record.exchanges)).toBe(data.length)

    const file = fileOf(upload.url!)
    expect(file).toMatchObject({ name: 'with-creation.bin', size_bytes: data.length, sha256: sha256(data) })
    expectSameBytes(await download(file.id), data)
    expect(await stagingFiles()).toEqual([])
  })

  /**
   * tus-js-client 4.3.1 never puts data on the POST when the length is deferred, yet with
   * uploadDataDuringCreation it still reads Upload-Offset from the 201; so every creation
   * answer carries it.
   */
  test('tus-js-client with uploadDataDuringCreation and a checksum-free deferred length still works', async () => {
    const data = Buffer.from(randomData(3 * MiB + 17))
    const pieces: Buffer[] = []
    for (let at = 0; at < data.length; at += 100_003) pieces.push(data.subarray(at, at + 100_003))
    const upload = new Upload(Readable.from(pieces) as unknown as Buffer, {
      ...baseOptions(server),
      uploadLengthDeferred: true,
      uploadDataDuringCreation: true,
      chunkSize: 1 * MiB,
      metadata: { filename: 'deferred-with-creation.bin' },
    })
    await run(upload)
    const file = fileOf(upload.url!)
    expect(file).toMatchObject({ size_bytes: data.length, sha256: sha256(data) })
    expectSameBytes(await download(file.id), data)
  })

  test('an upload survives a server restart', async () => {
    const data = Buffer.from(randomData(6 * MiB + 5))
    const urlStorage = memoryUrlStorage()
    const options = () =>
      baseOptions(server, {
        chunkSize: 512 * KiB,
        metadata: { filename: 'after-restart.bin' },
        storeFingerprintForResuming: true,
        urlStorage,
        fingerprint: async () => `fp-${sha256(data)}`,
      })

    const first = await uploadUntil(0.3, data, options())
    const offset = await settledOffset(server, first.url)
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThan(data.length)

    const urlBefore = server.url
    await server.restart()
    expect(server.url).toBe(urlBefore) // the stored upload URL must still point at the server
    expect(uploadRow(uploadIdOf(first.url))).toMatchObject({ state: 'receiving', received_bytes: offset })

    const second = await resumeFromStorage(data, options())
    expect(second.upload.url).toBe(first.url)
    expect(second.exchanges.some((e) => e.method === 'POST')).toBe(false)
    expect(Number(second.exchanges[0]!.responseHeaders!['upload-offset'])).toBe(offset)
    expect(patches(second.exchanges)[0]!.headers['Upload-Offset']).toBe(String(offset))
    expect(bodyBytes(second.exchanges)).toBe(data.length - offset)

    const file = fileOf(first.url)
    expect(file).toMatchObject({ name: 'after-restart.bin', size_bytes: data.length, sha256: sha256(data) })
    expectSameBytes(await download(file.id), data)
    expect(fileRows()).toHaveLength(1)
    expect(await stagingFiles()).toEqual([])
  })
})
