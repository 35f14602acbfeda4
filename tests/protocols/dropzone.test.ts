import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { eventually, sendCutShort } from '../helpers/cut-short.ts'
import { inParallel, randomData, sha256, shuffled } from '../helpers/data.ts'
import { blobPath, startTestServer, type TestServer } from '../helpers/server.ts'
import { nodeFileSystem, type FileSystem } from '../../src/adapters/local-disk/file-system.ts'
import { stagedUploads, storedBlobs } from '../helpers/stored.ts'
import { localDiskTest } from '../helpers/s3.ts'

let server: TestServer
beforeEach(async () => {
  server = await startTestServer({ MAX_FILE_SIZE: '64M', MAX_CHUNK_SIZE: '1M', CHUNK_SIZE: '1M' })
})
afterEach(async () => {
  await server.stop()
})

const count = (table: string) => (server.sql.get(`select count(*) as n from ${table}`) as { n: number }).n
const stagingFiles = () => stagedUploads(server)
const blobFiles = () => storedBlobs(server)
// Tests of the local disk as such: where files go in DATA_DIR, directory syncs, blob files by hand, free space.
const layoutTest = localDiskTest('the layout of DATA_DIR')
const syncTest = localDiskTest('syncs of the staging directory')
const blobFileTest = localDiskTest('looks at or changes a blob file by hand')
const freeSpaceTest = localDiskTest('free space of the data volume')

/**
 * Runs `body` against a server (in place of this test's) whose syncs of the staging directory go
 * through `sync`, which may call the real one; `bytesDurable` is called when a staging file's
 * bytes have been synced.
 */
async function withSyncNames(sync: (realSync: () => Promise<void>) => Promise<void>, body: () => Promise<void>, bytesDurable = () => {}) {
  await server.stop()
  // Of the server started below.
  const isStaging = (dir: string) => dir === join(server.dataDir, 'staging')
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    syncDirectory: (dir) => (isStaging(dir) ? sync(() => nodeFileSystem.syncDirectory(dir)) : nodeFileSystem.syncDirectory(dir)),
    async open(path, mode) {
      const file = await nodeFileSystem.open(path, mode)
      if (!isStaging(dirname(path))) return file
      return Object.assign(Object.create(file) as typeof file, { datasync: () => file.datasync().then(bytesDurable) })
    },
  }
  server = await startTestServer({ MAX_FILE_SIZE: '64M', MAX_CHUNK_SIZE: '1M', CHUNK_SIZE: '1M' }, { testHooks: { fileSystem } })
  await body()
}

/** Sends a request head over a raw socket and returns what the server answers. */
async function rawRequestHead(server: TestServer, lines: string[]): Promise<string> {
  const { hostname, port } = new URL(server.url)
  let received = ''
  const { promise, resolve } = Promise.withResolvers<string>()
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_socket, chunk) {
        received += chunk.toString()
        if (received.includes('\r\n\r\n') && /\}\s*$/.test(received)) resolve(received)
      },
      close() {
        resolve(received)
      },
    },
  })
  socket.write(lines.join('\r\n') + '\r\n\r\n')
  const answer = await promise
  socket.end()
  return answer
}

/** A multipart body of form fields and one file, built by hand (Bun leaves out the boundary of large FormData). */
function multipart(fields: Record<string, string | number>, file: Uint8Array) {
  const boundary = 'cutshortboundary'
  const text = (t: string) => new TextEncoder().encode(t)
  const parts = Object.entries(fields).map(([name, value]) => text(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`))
  const body = Buffer.concat([
    ...parts,
    text(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="data.bin"\r\n\r\n`),
    file,
    text(`\r\n--${boundary}--\r\n`),
  ])
  return { body, contentType: `multipart/form-data; boundary=${boundary}` }
}

async function download(url: string) {
  const response = await server.fetch(url)
  expect(response.status).toBe(200)
  return new Uint8Array(await response.arrayBuffer())
}

/** Sends every chunk of `data` in the given order with `inFlight` requests at once. */
async function uploadChunks(uuid: string, data: Uint8Array, chunkSize: number, order: number[], inFlight: number, name = 'data.bin') {
  return inParallel(
    order.map((i) => async () => {
      const send = () => sendChunk(server, chunkFields(uuid, data.length, chunkSize, i), chunkOf(data, chunkSize, i), { fileName: name })
      let response = await send()
      // The same chunk in flight twice: the second is asked to come back (as Dropzone retries).
      for (let tries = 0; response.status === 423 && tries < 100; tries++) {
        await Bun.sleep(5)
        response = await send()
      }
      expect(response.status).toBe(200)
      return response.json()
    }),
    inFlight,
  )
}

describe('chunked uploads', () => {
  test('40 chunks sent shuffled, 6 at a time, some twice, make a byte-identical file', async () => {
    const chunkSize = 64 * 1024
    const data = randomData(40 * chunkSize - 1234)
    const order = shuffled([...Array(40).keys()], 7)
    const withRetries = [...order.slice(0, 20), 3, 17, ...order.slice(20), 3, 39, 0]
    await uploadChunks('shuffled-upload', data, chunkSize, withRetries, 6)

    const status = await (await server.fetch('/upload/shuffled-upload')).json()
    expect(status.upload).toMatchObject({ state: 'complete', receivedChunks: 40, totalChunks: 40, receivedBytes: data.length })
    expect(status.file.sha256).toBe(sha256(data))
    expect(await download(status.file.url)).toEqual(data)
    expect(count('files')).toBe(1)
    expect(await stagingFiles()).toEqual([])
  })

  test('when the last chunks land at the same instant exactly one file is made', async () => {
    const chunkSize = 64 * 1024
    const data = randomData(8 * chunkSize)
    await uploadChunks('race', data, chunkSize, [0, 1, 2, 3, 4, 5], 6)
    // The two missing chunks, each sent three times at once: many requests see "all chunks here".
    const results = await uploadChunks('race', data, chunkSize, [6, 7, 6, 7, 6, 7], 6)
    // A duplicate that lands while another chunk is still missing truthfully says "receiving";
    // none may answer before the finalisation it raced with is done.
    expect(results.every((r) => ['receiving', 'complete'].includes(r.upload.state))).toBe(true)
    const completed = results.filter((r) => r.upload.state === 'complete')
    expect(completed.length).toBeGreaterThan(0)
    expect(new Set(completed.map((r) => r.file.id)).size).toBe(1)
    expect(count('files')).toBe(1)
    expect((server.sql.get('select ref_count from blobs') as { ref_count: number }).ref_count).toBe(1)
  })

  test('each response reports progress, and the completing one the stored file', async () => {
    const data = randomData(3000)
    const options = { fileName: 'report.pdf' }
    const first = await (await sendChunk(server, chunkFields('progress', 3000, 1000, 1), chunkOf(data, 1000, 1), options)).json()
    expect(first).toEqual({
      upload: { id: 'progress', state: 'receiving', receivedChunks: 1, totalChunks: 3, receivedBytes: 1000, totalBytes: 3000, chunkBytes: 1000, error: null },
      file: null,
    })
    await sendChunk(server, chunkFields('progress', 3000, 1000, 0), chunkOf(data, 1000, 0), options)
    const last = await (await sendChunk(server, chunkFields('progress', 3000, 1000, 2), chunkOf(data, 1000, 2), options)).json()
    expect(last.upload.state).toBe('complete')
    expect(last.file).toMatchObject({ name: 'report.pdf', sizeBytes: 3000, sha256: sha256(data), mimeType: 'application/pdf', folderId: 1 })
    expect(last.file.url).toBe(`/files/${last.file.id}/download`)
  })

  test('the status endpoint lists the chunks the server holds, so a client can resume', async () => {
    const data = randomData(5000)
    for (const i of [0, 3]) await sendChunk(server, chunkFields('resume-me', 5000, 1000, i), chunkOf(data, 1000, i))
    const status = await (await server.fetch('/upload/resume-me')).json()
    expect(status.chunks).toEqual([0, 3])
    expect(status.upload.state).toBe('receiving')
    for (const i of [1, 2, 4]) await sendChunk(server, chunkFields('resume-me', 5000, 1000, i), chunkOf(data, 1000, i))
    const done = await (await server.fetch('/upload/resume-me')).json()
    expect(done.chunks).toEqual([0, 1, 2, 3, 4])
    expect(done.upload.state).toBe('complete')
    expect((await server.fetch('/upload/never-started')).status).toBe(404)
  })

  test('two uploads of identical content share one blob', async () => {
    const data = randomData(200_000)
    await uploadChunks('copy-a', data, 64 * 1024, [0, 1, 2, 3], 2, 'a.bin')
    await uploadChunks('copy-b', data, 64 * 1024, [3, 2, 1, 0], 2, 'b.bin')
    expect(count('files')).toBe(2)
    expect(await blobFiles()).toHaveLength(1)
    const blob = server.sql.all('select sha256, ref_count from blobs')
    expect(blob).toEqual([{ sha256: sha256(data), ref_count: 2 }])
  })

  test('a name already taken in the folder gets a numbered suffix', async () => {
    const names: string[] = []
    for (const [i, uuid] of ['n1', 'n2', 'n3'].entries()) {
      const data = randomData(100 + i)
      const result = await (await sendChunk(server, chunkFields(uuid, data.length, 1000, 0), data, { fileName: 'photo.tar.gz' })).json()
      names.push(result.file.name)
    }
    expect(names).toEqual(['photo.tar.gz', 'photo (1).tar.gz', 'photo (2).tar.gz'])
  })

  layoutTest('a file name that looks like a path is stored as its last component and never touches the disk layout', async () => {
    const data = randomData(10)
    const result = await (await sendChunk(server, chunkFields('path-name', 10, 1000, 0), data, { fileName: '../../etc/passwd' })).json()
    expect(result.file.name).toBe('passwd')
    // On SQLite the database and its lock are files here too; on PostgreSQL, neither is.
    const database = server.server.backend === 'sqlite' ? ['dropfold.lock', 'dropfold.sqlite', 'dropfold.sqlite-shm', 'dropfold.sqlite-wal'] : []
    expect(readdirSync(server.dataDir).sort()).toEqual(['blobs', 'dropfold.reserve', ...database, 'staging'].sort())
  })

  syncTest("a chunk is not recorded before its staging file's name is durable", async () => {
    // A record committed first could be made durable by any other request's WAL sync; after a
    // power cut it would then count bytes in a file the directory had forgotten. The directory
    // sync is held back here (a gate in front of the real one) to see what is committed meanwhile.
    const gate = Promise.withResolvers<void>()
    const reached = Promise.withResolvers<void>()
    const written = Promise.withResolvers<void>()
    await withSyncNames((realSync) => (reached.resolve(), gate.promise.then(realSync)), async () => {
      const data = randomData(2000)
      const pending = sendChunk(server, chunkFields('named-first', data.length, 1000, 1), chunkOf(data, 1000, 1))
      // The chunk's bytes are durable, its name not yet: its record must wait, whatever else runs.
      await Promise.all([reached.promise, written.promise])
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve))
      expect(await stagingFiles()).toHaveLength(1)
      expect(count('upload_chunks')).toBe(0)
      gate.resolve()
      expect((await pending).status).toBe(200)
      expect(count('upload_chunks')).toBe(1)
    }, written.resolve)
  })

  syncTest("a chunk whose staging name cannot be synced fails only once its bytes have stopped arriving", async () => {
    // Until then the chunk is still being written: answering earlier would let a retry write the
    // same range at the same time, and settle the running hash under bytes still flowing into it.
    await withSyncNames(() => Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })), async () => {
      const engine = server.server.engine
      const upload = await engine.begin({
        protocol: 'dropzone', owner: 'admin', clientKey: 'sync-fails', folderId: 1, fileName: 'a.bin',
        totalBytes: 2000, chunkBytes: 1000, chunkCount: 2, clientAddress: null,
      })
      const data = randomData(1000)
      let bodyEnded = false
      const body = (async function* () {
        yield data.subarray(0, 500)
        await Bun.sleep(200)
        bodyEnded = true
        yield data.subarray(500)
      })()
      const failure = await engine.write(upload, 0 * upload.chunkBytes, body).then(() => null, (error: Error) => error)
      expect(failure?.message).toMatch(/EIO|i\/o error/i)
      expect(bodyEnded).toBe(true)
      expect(count('upload_chunks')).toBe(0)
    })
  })

  test('an empty file can be uploaded', async () => {
    const result = await (await sendChunk(server, chunkFields('empty', 0, 1000, 0), new Uint8Array(0), { fileName: 'empty.txt' })).json()
    expect(result.file).toMatchObject({ sizeBytes: 0, sha256: sha256(new Uint8Array(0)) })
    expect(await download(result.file.url)).toEqual(new Uint8Array(0))
  })

  test('a chunk for a completed upload is acknowledged with the stored file and changes nothing', async () => {
    const data = randomData(2000)
    await uploadChunks('done', data, 1000, [0, 1], 1)
    const again = await sendChunk(server, chunkFields('done', 2000, 1000, 1), randomData(1000))
    expect(again.status).toBe(200)
    const body = await again.json()
    expect(body.upload.state).toBe('complete')
    expect(await download(body.file.url)).toEqual(data)
    expect(count('files')).toBe(1)
  })

  test('uploads go into the folder named by the query or a form field', async () => {
    server.sql.run("insert into folders (id, parent_id, name, created_at) values (2, 1, 'Inbox', 0)")
    const viaQuery = await (await sendChunk(server, chunkFields('q', 10, 1000, 0), randomData(10), { folder: 2 })).json()
    expect(viaQuery.file.folderId).toBe(2)
    const viaField = await (await sendChunk(server, { folder: 2, ...chunkFields('f', 10, 1000, 0) }, randomData(10))).json()
    expect(viaField.file.folderId).toBe(2)
  })
})

describe('files that arrive in one request', () => {
  const blobCount = () => count('blobs')
  const refCount = (hash: string) => (server.sql.get('select ref_count from blobs where sha256 = ?', hash) as { ref_count: number } | null)?.ref_count

  blobFileTest('a one-chunk file whose bytes are stored already becomes a second file on the same blob, its bytes left as they were', async () => {
    const data = randomData(100_000)
    const first = await (await sendChunk(server, chunkFields('one-a', data.length, 1_000_000, 0), data, { fileName: 'a.bin' })).json()
    const blob = statSync(blobPath(server, sha256(data)))
    const second = await (await sendChunk(server, chunkFields('one-b', data.length, 1_000_000, 0), data, { fileName: 'b.bin' })).json()
    expect(second.upload).toMatchObject({ state: 'complete', receivedChunks: 1, totalChunks: 1, receivedBytes: data.length })
    expect(second.file).toMatchObject({ name: 'b.bin', sha256: sha256(data), sizeBytes: data.length })
    expect(second.file.id).not.toBe(first.file.id)
    expect(refCount(sha256(data))).toBe(2)
    expect(await blobFiles()).toHaveLength(1)
    const after = statSync(blobPath(server, sha256(data)))
    expect([after.ino, after.mtimeMs]).toEqual([blob.ino, blob.mtimeMs])
    expect(await download(second.file.url)).toEqual(data)
    expect(await stagingFiles()).toEqual([])
    expect(count('upload_chunks')).toBe(0)
  })

  test('the same one-chunk file sent four times at once is stored once, and every answer names that file', async () => {
    const data = randomData(50_000)
    const answers = await Promise.all([0, 1, 2, 3].map(() => sendChunk(server, chunkFields('four-at-once', data.length, 1_000_000, 0), data)))
    const bodies = await Promise.all(answers.map((r) => r.json()))
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect(bodies.map((b) => b.upload.state)).toEqual(['complete', 'complete', 'complete', 'complete'])
    expect(new Set(bodies.map((b) => b.file.id)).size).toBe(1)
    expect([count('files'), count('uploads'), refCount(sha256(data))]).toEqual([1, 1, 1])
    expect(await blobFiles()).toHaveLength(1)
    expect(await stagingFiles()).toEqual([])
  })

  blobFileTest('bytes the database counts but the disk lost are written again by the next upload of them', async () => {
    const data = randomData(20_000)
    await sendChunk(server, chunkFields('lost-a', data.length, 1_000_000, 0), data)
    await Bun.file(blobPath(server, sha256(data))).delete()
    const again = await (await sendChunk(server, chunkFields('lost-b', data.length, 1_000_000, 0), data)).json()
    expect(again.upload.state).toBe('complete')
    expect(await download(again.file.url)).toEqual(data)
    expect(refCount(sha256(data))).toBe(2)
  })

  blobFileTest.each([
    ['one-chunk Dropzone upload', (data: Uint8Array) => sendChunk(server, chunkFields('stray', data.length, 1_000_000, 0), data)],
    ['chunked Dropzone upload', async (data: Uint8Array) => {
      await sendChunk(server, chunkFields('stray', data.length, 20_000, 1), chunkOf(data, 20_000, 1))
      return sendChunk(server, chunkFields('stray', data.length, 20_000, 0), chunkOf(data, 20_000, 0))
    }],
  ])('a stray file in the store under the right name but with other bytes is replaced, not trusted (%s)', async (_, send) => {
    // What a crash could leave, or a hand-made copy: a blob no database row refers to. This one
    // is a second name of a file outside the store, which must keep its own bytes.
    const data = randomData(30_000)
    const path = blobPath(server, sha256(data))
    const outside = join(server.dataDir, 'kept-elsewhere.txt')
    writeFileSync(outside, 'not the bytes this name promises')
    mkdirSync(dirname(path), { recursive: true })
    linkSync(outside, path)
    const body = await (await send(data)).json()
    expect(body.upload.state).toBe('complete')
    expect(await download(body.file.url)).toEqual(data)
    expect(await blobFiles()).toHaveLength(1)
    expect(readdirSync(dirname(path))).toEqual([sha256(data)])
    expect(readFileSync(outside, 'utf8')).toBe('not the bytes this name promises')
  })

  test('a one-chunk file that says it is longer or shorter than it is is refused and leaves nothing', async () => {
    const data = randomData(1000)
    for (const total of [999, 1001]) {
      const response = await sendChunk(server, chunkFields(`wrong-${total}`, total, 1_000_000, 0), data)
      expect(response.status).toBe(400)
      expect((await response.json()).error).toBe(`Chunk 0 has 1000 bytes; expected ${total}`)
    }
    expect([count('files'), count('uploads'), blobCount()]).toEqual([0, 0, 0])
    expect(await blobFiles()).toEqual([])
    expect(await stagingFiles()).toEqual([])
  })
})

describe('every chunk is checked before anything is written', () => {
  const data = randomData(2500)
  const valid = chunkFields('checked', 2500, 1000, 1)

  async function expectRefused(fields: Record<string, unknown>, bytes: Uint8Array, status: number, message: RegExp, options = {}) {
    const response = await sendChunk(server, fields, bytes, options)
    expect(response.status).toBe(status)
    expect(response.headers.get('content-type')).toContain('application/json')
    const body = await response.json()
    expect(body.error).toMatch(message)
    return body
  }

  test.each([
    ['dzuuid', /dzuuid/],
    ['dzchunkindex', /Missing field dzchunkindex/],
    ['dztotalfilesize', /Missing field dztotalfilesize/],
    ['dzchunksize', /Missing field dzchunksize/],
    ['dztotalchunkcount', /Missing field dztotalchunkcount/],
    ['dzchunkbyteoffset', /Missing field dzchunkbyteoffset/],
  ])('a chunk without %s is refused', async (field, message) => {
    await expectRefused({ ...valid, [field]: undefined, ...(field === 'dzuuid' ? {} : { dzuuid: 'checked' }) }, chunkOf(data, 1000, 1), 400, message)
    expect(count('uploads')).toBe(0)
    expect(await stagingFiles()).toEqual([])
  })

  test.each([
    ['dzchunkindex', '-1'],
    ['dzchunkindex', 'one'],
    ['dztotalfilesize', '1e3'],
    ['dzchunksize', '0x10'],
    ['dztotalchunkcount', ''],
    ['dzchunkbyteoffset', '1000.5'],
  ])('%s = %p is refused as not a whole number', async (field, value) => {
    await expectRefused({ ...valid, [field]: value }, chunkOf(data, 1000, 1), 400, new RegExp(field))
    expect(count('uploads')).toBe(0)
  })

  test('a bad dzuuid is refused', async () => {
    await expectRefused({ ...valid, dzuuid: '../x' }, chunkOf(data, 1000, 1), 400, /dzuuid/)
  })

  test('a chunk count that does not match the sizes is refused', async () => {
    await expectRefused({ ...valid, dztotalchunkcount: 4 }, chunkOf(data, 1000, 1), 400, /has 3 chunks, not 4/)
  })

  test('an index at or past the chunk count is refused', async () => {
    await expectRefused({ ...valid, dzchunkindex: 3, dzchunkbyteoffset: 3000 }, chunkOf(data, 1000, 1), 400, /not below the chunk count/)
  })

  test('an offset other than index × chunk size is refused', async () => {
    await expectRefused({ ...valid, dzchunkbyteoffset: 999 }, chunkOf(data, 1000, 1), 400, /must start at byte 1000/)
    expect(count('uploads')).toBe(0)
  })

  test('a chunk shorter or longer than it must be is refused and not recorded', async () => {
    await expectRefused(valid, data.subarray(0, 999), 400, /has 999 bytes; expected 1000/)
    await expectRefused(valid, data.subarray(0, 1001), 400, /longer than the 1000 bytes expected/)
    const last = chunkFields('checked', 2500, 1000, 2)
    await expectRefused(last, data.subarray(0, 1000), 400, /longer than the 500 bytes expected/)
    // Each was the upload's first chunk: refused, it leaves no upload behind (see refusals.test.ts).
    expect((await server.fetch('/upload/checked')).status).toBe(404)
    expect(count('uploads')).toBe(0)
  })

  test('a chunk that disagrees with the upload’s first chunk is refused', async () => {
    expect((await sendChunk(server, valid, chunkOf(data, 1000, 1))).status).toBe(200)
    await expectRefused({ ...chunkFields('checked', 2600, 1000, 0) }, chunkOf(data, 1000, 0), 400, /total file size is 2600/)
    await expectRefused({ ...chunkFields('checked', 2500, 500, 0) }, chunkOf(data, 500, 0), 400, /chunk size is 500/)
    await expectRefused(chunkFields('checked', 2500, 1000, 0), chunkOf(data, 1000, 0), 400, /file name/, { fileName: 'other.bin' })
    const status = await (await server.fetch('/upload/checked')).json()
    expect(status.chunks).toEqual([1])
  })

  test('a chunk that another request is still writing is refused with 423, and nothing changes', async () => {
    const engine = server.server.engine
    const upload = await engine.begin({ protocol: 'dropzone', owner: 'admin', clientKey: 'checked', folderId: 1, fileName: 'data.bin', totalBytes: 2500, chunkBytes: 1000, chunkCount: 3, clientAddress: null })
    const { promise: release, resolve: finish } = Promise.withResolvers<void>()
    // A client whose chunk is half sent: the engine holds chunk 1 while it waits for the rest.
    const slowBody = (async function* () {
      yield chunkOf(data, 1000, 1).subarray(0, 500)
      await release
      yield chunkOf(data, 1000, 1).subarray(500)
    })()
    const slow = engine.write(upload, 1 * upload.chunkBytes, slowBody)
    const second = await sendChunk(server, valid, randomData(1000))
    expect(second.status).toBe(423)
    expect((await second.json()).error).toMatch(/being received by another request/)
    finish()
    expect((await slow).receivedChunks).toBe(1)
    for (const i of [0, 2]) await sendChunk(server, chunkFields('checked', 2500, 1000, i), chunkOf(data, 1000, i))
    const status = await (await server.fetch('/upload/checked')).json()
    expect(await download(status.file.url)).toEqual(data)
  })

  test('a chunk whose connection drops mid-body is not recorded, and the chunk sent again completes the file', async () => {
    // Small requests are read whole before anything happens; this one never arrives whole.
    const request = multipart(chunkFields('dropped', 2500, 1000, 0), chunkOf(data, 1000, 0))
    await sendCutShort(server, request, request.body.length - 10)
    await Bun.sleep(300)
    expect(count('uploads')).toBe(0)
    for (const i of [2, 0, 1]) expect((await sendChunk(server, chunkFields('dropped', 2500, 1000, i), chunkOf(data, 1000, i))).status).toBe(200)
    const status = await (await server.fetch('/upload/dropped')).json()
    expect(await download(status.file.url)).toEqual(data)
  })

  test('a retried chunk whose bytes the server holds is counted once and its bytes are kept', async () => {
    expect((await sendChunk(server, valid, chunkOf(data, 1000, 1))).status).toBe(200)
    // A broken client re-sends chunk 1 with other bytes: what was acknowledged must not change.
    expect((await sendChunk(server, valid, randomData(1000))).status).toBe(200)
    for (const i of [0, 2]) await sendChunk(server, chunkFields('checked', 2500, 1000, i), chunkOf(data, 1000, i))
    const status = await (await server.fetch('/upload/checked')).json()
    expect(status.upload.receivedBytes).toBe(2500)
    expect(await download(status.file.url)).toEqual(data)
  })

  test('a file larger than the limit is refused at its first chunk', async () => {
    await expectRefused(chunkFields('huge', 65 * 1024 * 1024, 1024 * 1024, 0), randomData(1024), 413, /limit is 67108864 bytes/)
    expect(count('uploads')).toBe(0)
  })

  test('chunks larger than the chunk limit are refused', async () => {
    await expectRefused(chunkFields('bigchunk', 4 * 1024 * 1024, 2 * 1024 * 1024, 0), randomData(1024), 413, /Chunks of 2097152 bytes are too large/)
  })

  test('a request much longer than its declared chunk is refused from Content-Length before its bytes are read', async () => {
    await expectRefused(chunkFields('padded', 300_000, 1000, 0), randomData(200_000), 413, /larger than a 1000-byte chunk/)
    expect(count('uploads')).toBe(0)
  })

  test('a request larger than the largest file is refused from Content-Length alone', async () => {
    // Only the head is sent: the answer must come without the server waiting for 65 MiB.
    const head = await rawRequestHead(server, [
      'POST /upload HTTP/1.1',
      `Host: ${new URL(server.url).host}`,
      `Cookie: ${server.cookie}`,
      'Content-Type: multipart/form-data; boundary=x',
      `Content-Length: ${65 * 1024 * 1024}`,
    ])
    expect(head).toStartWith('HTTP/1.1 413')
    expect(head).toContain('the largest file accepted is 67108864 bytes')
    expect(count('uploads')).toBe(0)
  })

  test('an unknown folder is refused', async () => {
    await expectRefused(valid, chunkOf(data, 1000, 1), 404, /Folder 99 does not exist/, { folder: 99 })
    await expectRefused({ ...valid, folder: 'abc' }, chunkOf(data, 1000, 1), 400, /folder must be a folder id/)
    expect(count('uploads')).toBe(0)
  })

  test('a request that is not multipart is refused', async () => {
    const response = await server.fetch('/upload', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain', accept: 'application/json' } })
    expect(response.status).toBe(415)
    expect((await response.json()).error).toMatch(/multipart\/form-data/)
  })

  test('a multipart request without a file part is refused', async () => {
    const form = new FormData()
    form.append('folder', '1')
    const response = await server.fetch('/upload', { method: 'POST', body: form })
    expect(response.status).toBe(400)
    expect((await response.json()).error).toMatch(/no file part/)
  })
})

describe('disk space', () => {
  freeSpaceTest('an upload that would not fit is refused with 507 before any byte is written', async () => {
    await server.stop()
    server = await startTestServer({ MIN_FREE_SPACE: '1000T' })
    const response = await sendChunk(server, chunkFields('nospace', 2000, 1000, 0), randomData(1000))
    expect(response.status).toBe(507)
    expect((await response.json()).error).toMatch(/Not enough free disk space/)
    expect(count('uploads')).toBe(0)
    expect(await stagingFiles()).toEqual([])
  })
})

describe('plain multipart uploads', () => {
  test('several files in one request, as curl -F sends them', async () => {
    const a = randomData(70_000)
    const b = new TextEncoder().encode('hello')
    const form = new FormData()
    form.append('file', new Blob([a]), 'a.bin')
    form.append('file', new Blob([b]), 'b.txt')
    const response = await server.fetch('/upload', { method: 'POST', body: form })
    expect(response.status).toBe(200)
    const body = await response.json()
    expect(body.files.map((f: { name: string }) => f.name)).toEqual(['a.bin', 'b.txt'])
    expect(body.file.name).toBe('a.bin')
    expect(await download(body.files[0].url)).toEqual(a)
    expect(await download(body.files[1].url)).toEqual(b)
  })

  test('a plain file over the size limit is refused and leaves nothing behind', async () => {
    await server.stop()
    server = await startTestServer({ MAX_FILE_SIZE: '100K', CHUNK_SIZE: '64K', MAX_CHUNK_SIZE: '64K' })
    const form = new FormData()
    form.append('file', new Blob([randomData(150_000)]), 'big.bin')
    // Content-Length exceeds the limit, so it is refused before the body is read.
    const response = await server.fetch('/upload', { method: 'POST', body: form }).catch((error) => error)
    if (response instanceof Response) expect(response.status).toBe(413)
    expect(count('files')).toBe(0)
    expect(await stagingFiles()).toEqual([])
  })

  test('a large plain file arrives intact, streamed to disk; one whose connection drops leaves no file and no staged bytes', async () => {
    // Over 2 MiB: streamed, not read whole.
    const big = randomData(5 * 1024 * 1024 + 17)
    const form = new FormData()
    form.append('file', new Blob([big]), 'big.bin')
    const response = await server.fetch('/upload', { method: 'POST', body: form })
    expect(response.status).toBe(200)
    expect(await download((await response.json()).file.url)).toEqual(big)

    await sendCutShort(server, multipart({}, big), 3 * 1024 * 1024)
    await eventually(() => expect(server.sql.all("select state from uploads where protocol = 'plain' order by created_at")).toEqual([{ state: 'complete' }, { state: 'failed' }]))
    expect(count('files')).toBe(1)
    expect(await stagingFiles()).toEqual([])
  })

  test('a plain file whose length is not declared is cut off at the size limit', async () => {
    await server.stop()
    server = await startTestServer({ MAX_FILE_SIZE: '100K', CHUNK_SIZE: '64K', MAX_CHUNK_SIZE: '64K' })
    const boundary = 'dropfoldtestboundary'
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="streamed.bin"\r\n\r\n`
    const parts = [new TextEncoder().encode(head), randomData(150_000), new TextEncoder().encode(`\r\n--${boundary}--\r\n`)]
    const body = new ReadableStream({
      pull(controller) {
        const next = parts.shift()
        if (next) controller.enqueue(next)
        else controller.close()
      },
    })
    const response = await server.fetch('/upload', { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } })
    expect(response.status).toBe(413)
    expect((await response.json()).error).toMatch(/larger than the 102400-byte limit/)
    expect(count('files')).toBe(0)
    expect(await stagingFiles()).toEqual([])
    expect(server.sql.all('select state from uploads')).toEqual([{ state: 'failed' }])
  })
})

describe('access', () => {
  test('uploading needs the admin session', async () => {
    const response = await sendChunk(server, chunkFields('anon', 10, 1000, 0), randomData(10), { headers: { cookie: 'dropfold_session=forged' } })
    expect(response.status).toBe(401)
    expect(count('uploads')).toBe(0)
  })

  test('a cross-site upload is refused', async () => {
    const response = await sendChunk(server, chunkFields('csrf', 10, 1000, 0), randomData(10), { headers: { origin: 'https://evil.example' } })
    expect(response.status).toBe(403)
    expect(count('uploads')).toBe(0)
  })
})
