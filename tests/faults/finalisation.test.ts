import { expect, test } from 'bun:test'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { serverPerTest, startTestServer, type TestServer } from '../helpers/server.ts'
import { isRoot, tmpfsForTests } from './tmpfs.ts'

const start = serverPerTest(startTestServer)

/**
 * A real fault in the blob store: the directory a blob goes into is a plain file, so linking the
 * staged bytes into the store fails (ENOTDIR) until it is removed again.
 */
function breakBlobDirectory(server: TestServer, data: Uint8Array) {
  const shard = join(server.dataDir, 'blobs', sha256(data).slice(0, 2))
  writeFileSync(shard, 'not a directory')
  return { repair: () => rmSync(shard) }
}

const stagedPath = (server: TestServer, uploadId: string) => join(server.dataDir, 'staging', uploadId)

async function download(server: TestServer, url: string) {
  return sha256(new Uint8Array(await (await server.fetch(url)).arrayBuffer()))
}

const CHUNK = 64 * 1024
const data = randomData(3 * CHUNK)
const sendDropzoneChunk = (server: TestServer, index: number) =>
  sendChunk(server, chunkFields('held-up', data.length, CHUNK, index), chunkOf(data, CHUNK, index), { fileName: 'held-up.bin' })

test('a Dropzone upload whose finalisation meets a passing disk fault answers 503, keeps its bytes, and is stored when the last chunk is retried', async () => {
  const server = await start()
  const fault = breakBlobDirectory(server, data)
  for (const index of [0, 1]) expect((await sendDropzoneChunk(server, index)).status).toBe(200)
  const last = await sendDropzoneChunk(server, 2)
  expect(last.status).toBe(503)
  expect(last.headers.get('retry-after')).not.toBeNull()
  expect((await last.json()).error).toMatch(/kept/)

  const held = await (await server.fetch('/upload/held-up')).json()
  expect(held.upload.state).toBe('finalizing')
  expect(held.chunks).toEqual([0, 1, 2])
  // A retry while the fault lasts is refused the same way, and still loses nothing.
  expect((await sendDropzoneChunk(server, 2)).status).toBe(503)
  await server.server.engine.settle()
  const uploadId = (await server.server.engine.findByClientKey('admin', 'held-up'))!.id
  expect(existsSync(stagedPath(server, uploadId))).toBe(true)

  fault.repair()
  const retried = await sendDropzoneChunk(server, 2)
  expect(retried.status).toBe(200)
  const body = await retried.json()
  expect(body.upload.state).toBe('complete')
  expect(body.file.sha256).toBe(sha256(data))
  expect(await download(server, body.file.url)).toBe(sha256(data))
  expect(existsSync(stagedPath(server, uploadId))).toBe(false)
})

test('a tus upload whose finalisation met a passing fault is stored once the fault is gone, on the next HEAD', async () => {
  const server = await start()
  const fault = breakBlobDirectory(server, data)
  const created = await server.fetch('/tus/', {
    method: 'POST',
    headers: { 'tus-resumable': '1.0.0', 'upload-length': String(data.length), 'upload-metadata': `filename ${btoa('tus.bin')}` },
  })
  expect(created.status).toBe(201)
  const location = created.headers.get('location')!
  const uploadId = location.split('/').pop()!
  const patch = await server.fetch(location, {
    method: 'PATCH',
    headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
    body: data,
  })
  expect(patch.status).toBe(503)
  const head = () => server.fetch(location, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })
  expect((await head()).headers.get('upload-offset')).toBe(String(data.length))
  await server.server.engine.settle()
  expect((await server.server.engine.status(uploadId)).state).toBe('finalizing')
  expect(existsSync(stagedPath(server, uploadId))).toBe(true)

  fault.repair()
  expect((await head()).status).toBe(200)
  await server.server.engine.settle()
  const status = (await server.server.engine.status(uploadId))
  expect(status.state).toBe('complete')
  expect(await download(server, status.file!.url)).toBe(sha256(data))
})

test('an upload held up by a passing fault survives restarts while the fault lasts and is stored at the first start after it is gone', async () => {
  const server = await start()
  const fault = breakBlobDirectory(server, data)
  for (const index of [0, 1, 2]) await sendDropzoneChunk(server, index)
  const uploadId = (await server.server.engine.findByClientKey('admin', 'held-up'))!.id
  await server.server.engine.settle()

  await server.restart()
  expect((await server.server.engine.status(uploadId)).state).toBe('finalizing')
  expect(existsSync(stagedPath(server, uploadId))).toBe(true)

  await server.restart(() => fault.repair())
  const status = (await server.server.engine.status(uploadId))
  expect(status.state).toBe('complete')
  expect(await download(server, status.file!.url)).toBe(sha256(data))
  expect(existsSync(stagedPath(server, uploadId))).toBe(false)
})

/** A volume of its own with room for few files. */
const volume = tmpfsForTests('size=16m,nr_inodes=64')

test.skipIf(!isRoot)('a volume out of room (ENOSPC) when the last chunk lands keeps the upload retryable, and it is stored once room is made', async () => {
  const mountPoint = volume.path()
  const t = await start({ DATA_DIR: join(mountPoint, 'data'), MIN_FREE_SPACE: '0' })
  for (const index of [0, 1]) expect((await sendDropzoneChunk(t, index)).status).toBe(200)
  // Every inode the volume has left is taken by someone else: the blob's directory cannot be made.
  const filler = join(mountPoint, 'filler')
  mkdirSync(filler)
  let taken = 0
  for (;;) {
    try {
      writeFileSync(join(filler, String(taken)), '')
      taken++
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC')
      break
    }
  }
  expect(taken).toBeGreaterThan(0)
  const last = await sendDropzoneChunk(t, 2)
  expect(last.status).toBe(503)
  expect(last.headers.get('retry-after')).not.toBeNull()

  rmSync(filler, { recursive: true })
  const retried = await sendDropzoneChunk(t, 2)
  expect(retried.status).toBe(200)
  const body = await retried.json()
  expect(body.file.sha256).toBe(sha256(data))
  expect(await download(t, body.file.url)).toBe(sha256(data))
})
