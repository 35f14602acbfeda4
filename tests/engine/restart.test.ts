import { afterEach, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { blobPath, startTestServer, type TestServer } from '../helpers/server.ts'


let server: TestServer
afterEach(async () => {
  await server.stop()
})


test('restarting the server between two chunks of one upload loses nothing', async () => {
  server = await startTestServer()
  const data = randomData(5 * 100_000)
  for (const i of [0, 2, 4]) expect((await sendChunk(server, chunkFields('across-restart', data.length, 100_000, i), chunkOf(data, 100_000, i))).status).toBe(200)

  await server.restart()

  const status = await (await server.fetch('/upload/across-restart')).json()
  expect(status.chunks).toEqual([0, 2, 4])
  for (const i of [1, 3]) await sendChunk(server, chunkFields('across-restart', data.length, 100_000, i), chunkOf(data, 100_000, i))
  const done = await (await server.fetch('/upload/across-restart')).json()
  expect(done.upload.state).toBe('complete')
  const downloaded = new Uint8Array(await (await server.fetch(done.file.url)).arrayBuffer())
  expect(sha256(downloaded)).toBe(sha256(data))
})

test('an upload the server stopped in the middle of finalising is finished at the next start', async () => {
  server = await startTestServer()
  const data = randomData(300_000)
  for (const i of [0, 1]) await sendChunk(server, chunkFields('half-final', data.length, 100_000, i), chunkOf(data, 100_000, i))
  // The state a crash leaves after the last chunk was recorded and finalisation had begun.
  const id = (server.sql.get("select id from uploads where client_key = 'half-final'") as { id: string }).id
  await sendChunk(server, chunkFields('half-final', data.length, 100_000, 2), chunkOf(data, 100_000, 2))
  const blob = blobPath(server, sha256(data))
  expect(existsSync(blob)).toBe(true)
  // Rewind to "finalizing, bytes still in staging": take the finished file back out.
  server.sql.exec(`update uploads set state = 'finalizing', file_id = null, sha256 = null where id = '${id}'; delete from files; delete from blobs`)
  await Bun.write(join(server.dataDir, 'staging', id), Bun.file(blob))
  await Bun.file(blob).delete()

  await server.restart()

  const status = await (await server.fetch('/upload/half-final')).json()
  expect(status.upload.state).toBe('complete')
  expect(status.file.sha256).toBe(sha256(data))
  expect(existsSync(join(server.dataDir, 'staging', id))).toBe(false)
  expect(server.sql.all('select ref_count from blobs')).toEqual([{ ref_count: 1 }])
})

test('a finalisation interrupted after the bytes moved into the store completes without them in staging', async () => {
  server = await startTestServer()
  const data = randomData(1000)
  const result = await (await sendChunk(server, chunkFields('moved', 1000, 1000, 0), data)).json()
  const id = (server.sql.get("select id from uploads where client_key = 'moved'") as { id: string }).id
  server.sql.exec(`update uploads set state = 'finalizing', file_id = null where id = '${id}'; delete from files; delete from blobs`)

  await server.restart()

  const status = await (await server.fetch('/upload/moved')).json()
  expect(status.upload.state).toBe('complete')
  expect(status.file.sha256).toBe(result.file.sha256)
  expect(new Uint8Array(await (await server.fetch(status.file.url)).arrayBuffer())).toEqual(data)
})

test('uploads idle for longer than UPLOAD_TTL_HOURS expire at start-up and free their bytes', async () => {
  server = await startTestServer({ UPLOAD_TTL_HOURS: '1' })
  await sendChunk(server, chunkFields('stale', 2000, 1000, 0), randomData(1000))
  const id = (server.sql.get("select id from uploads where client_key = 'stale'") as { id: string }).id
  expect(existsSync(join(server.dataDir, 'staging', id))).toBe(true)
  server.sql.exec(`update uploads set updated_at = updated_at - 2 * 3600 * 1000 where id = '${id}'`)

  await server.restart()

  expect(existsSync(join(server.dataDir, 'staging', id))).toBe(false)
  const response = await sendChunk(server, chunkFields('stale', 2000, 1000, 1), randomData(1000))
  expect(response.status).toBe(410)
  expect((await response.json()).error).toMatch(/expired/)
})

test('staging files nothing needs (a finalisation cut short before its unlink, strays) are removed at start-up; those in use stay', async () => {
  server = await startTestServer()
  const data = randomData(1000)
  const done = await (await sendChunk(server, chunkFields('finished', 1000, 1000, 0), data)).json()
  const finished = (server.sql.get("select id from uploads where client_key = 'finished'") as { id: string }).id
  await sendChunk(server, chunkFields('unfinished', 2000, 1000, 0), randomData(1000))
  const unfinished = (server.sql.get("select id from uploads where client_key = 'unfinished'") as { id: string }).id
  const staging = (name: string) => join(server.dataDir, 'staging', name)
  expect(existsSync(staging(finished))).toBe(false)
  // What a crash after the finished upload's commit but before its unlink leaves behind.
  await Bun.write(staging(finished), data)
  await Bun.write(staging('stray0000000000000000000'), 'left over')

  await server.restart()

  expect(existsSync(staging(finished))).toBe(false)
  expect(existsSync(staging('stray0000000000000000000'))).toBe(false)
  expect(existsSync(staging(unfinished))).toBe(true)
  expect(new Uint8Array(await (await server.fetch(done.file.url)).arrayBuffer())).toEqual(data)
  const status = await (await server.fetch('/upload/unfinished')).json()
  expect(status.chunks).toEqual([0])
})
