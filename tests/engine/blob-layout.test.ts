import { afterEach, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { blobPath, startTestServer, type TestServer } from '../helpers/server.ts'


let server: TestServer
afterEach(async () => {
  await server.stop()
})

const blobsDir = () => join(server.dataDir, 'blobs')

async function upload(uuid: string, data: Uint8Array, chunkSize: number) {
  let body: any
  for (let i = 0; i < Math.max(1, Math.ceil(data.length / chunkSize)); i++) {
    const response = await sendChunk(server, chunkFields(uuid, data.length, chunkSize, i), chunkOf(data, chunkSize, i))
    expect(response.status).toBe(200)
    body = await response.json()
  }
  return body as { file: { id: number; url: string; sha256: string } }
}

test('blobs are stored one directory deep: <first two hex digits>/<sha256>', async () => {
  server = await startTestServer()
  const data = randomData(5000)
  await upload('one-level', data, 1_000_000)
  const hash = sha256(data)
  expect(readdirSync(join(blobsDir(), hash.slice(0, 2)))).toEqual([hash])
  expect(readdirSync(blobsDir()).sort()).toEqual([hash.slice(0, 2), 'LAYOUT'].sort())
})

test('a store laid out two levels deep, as before, is moved to one level at start-up and every file still downloads', async () => {
  server = await startTestServer()
  const files = [randomData(3000), randomData(250_000), randomData(10)]
  const stored = [await upload('old-a', files[0]!, 1_000_000), await upload('old-b', files[1]!, 100_000), await upload('old-c', files[2]!, 1_000_000)]
  const hashes = files.map((f) => sha256(f))

  await server.restart(() => {
    // Back to the two-level layout of earlier versions, with no marker, and a stray file kept aside.
    for (const hash of hashes) {
      const old = join(blobsDir(), hash.slice(0, 2), hash.slice(2, 4))
      mkdirSync(old, { recursive: true })
      renameSync(blobPath(server, hash), join(old, hash))
    }
    rmSync(join(blobsDir(), 'LAYOUT'))
    writeFileSync(join(blobsDir(), hashes[0]!.slice(0, 2), hashes[0]!.slice(2, 4), 'notes.txt'), 'not a blob')
  })

  for (const [i, file] of stored.entries()) {
    const response = await server.fetch(file.file.url)
    expect(response.status).toBe(200)
    expect(sha256(new Uint8Array(await response.arrayBuffer()))).toBe(hashes[i]!)
  }
  for (const hash of hashes) expect(existsSync(blobPath(server, hash))).toBe(true)
  // The old directories are gone, except the one holding something that is not a blob.
  const leftovers = readdirSync(blobsDir(), { recursive: true }).map(String).filter((p) => p.split('/').length === 2 && !/[0-9a-f]{64}$/.test(p))
  expect(leftovers).toEqual([join(hashes[0]!.slice(0, 2), hashes[0]!.slice(2, 4))])
  expect(server.logs.some((line) => line.includes('moved blobs to the one-level layout') && line.includes('"moved":3'))).toBe(true)
  expect(existsSync(join(blobsDir(), 'LAYOUT'))).toBe(true)

  // Identical bytes uploaded again share the moved blob.
  const again = await upload('old-a-again', files[0]!, 1_000_000)
  expect(again.file.sha256).toBe(hashes[0]!)
  expect((server.sql.get('select ref_count from blobs where sha256 = ?', hashes[0]!) as { ref_count: number }).ref_count).toBe(2)
})
