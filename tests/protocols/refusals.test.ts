import { afterEach, describe, expect, test } from 'bun:test'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { createLink } from '../links/helpers.ts'
import { stagedUploads } from '../helpers/stored.ts'


/** A refused request leaves nothing behind: no upload row, no staging file, nothing on the Uploads page. */

let server: TestServer
afterEach(async () => {
  await server.stop()
})
const start = async () => (server = await startTestServer({ MAX_FILE_SIZE: '64M', MAX_CHUNK_SIZE: '4M', CHUNK_SIZE: '1M' }))

const uploadRows = () => (server.sql.get('select count(*) as n from uploads') as { n: number }).n
const stagingFiles = () => stagedUploads(server)
const TUS = { 'tus-resumable': '1.0.0' }
const b64 = (text: string) => Buffer.from(text).toString('base64')

/** What the admin sees: the Uploads page lists no upload, and the staging directory is empty. */
async function expectNothingLeft() {
  const page = await (await server.fetch('/uploads/table')).text()
  expect(page).toContain('No uploads in progress, failed or stopped.')
  expect(uploadRows()).toBe(0)
  expect(await stagingFiles()).toEqual([])
}

describe('a refused first chunk leaves nothing', () => {
  const data = randomData(2500)

  test.each([
    ['a non-last first chunk shorter than the chunk size', 0, data.subarray(0, 999), /has 999 bytes; expected 1000/],
    ['a non-last first chunk longer than the chunk size', 0, data.subarray(0, 1001), /longer than the 1000 bytes expected/],
    ['a last chunk (sent first) longer than the remainder', 2, data.subarray(0, 1000), /longer than the 500 bytes expected/],
    ['a last chunk (sent first) shorter than the remainder', 2, data.subarray(0, 499), /has 499 bytes; expected 500/],
  ])('%s', async (_what, index, bytes, message) => {
    await start()
    const response = await sendChunk(server, chunkFields('refused', 2500, 1000, index), bytes)
    expect(response.status).toBe(400)
    expect((await response.json()).error).toMatch(message)
    expect((await server.fetch('/upload/refused')).status).toBe(404)
    await expectNothingLeft()
    // The same chunk with the right bytes does make an upload, and it shows.
    expect((await sendChunk(server, chunkFields('refused', 2500, 1000, index), chunkOf(data, 1000, index))).status).toBe(200)
    expect(uploadRows()).toBe(1)
    expect(await (await server.fetch('/uploads/table')).text()).toContain('data.bin')
  })

  test('a first chunk streamed (larger than what is read whole) and cut short of its size leaves nothing', async () => {
    await start()
    const big = randomData(3 * 1024 * 1024)
    const response = await sendChunk(server, chunkFields('streamed', 6 * 1024 * 1024, 4 * 1024 * 1024, 0), big)
    expect(response.status).toBe(400)
    await expectNothingLeft()
  })

  test('a refused chunk of an upload that already holds chunks keeps the upload and its chunks', async () => {
    await start()
    expect((await sendChunk(server, chunkFields('kept', 2500, 1000, 0), chunkOf(data, 1000, 0))).status).toBe(200)
    expect((await sendChunk(server, chunkFields('kept', 2500, 1000, 1), data.subarray(0, 10))).status).toBe(400)
    const status = await (await server.fetch('/upload/kept')).json()
    expect(status.chunks).toEqual([0])
    expect(await stagingFiles()).toHaveLength(1)
  })

  test('through a drop link too', async () => {
    await start()
    const link = await createLink(server)
    const form = new FormData()
    for (const [name, value] of Object.entries(chunkFields('visitor', 2500, 1000, 0))) form.append(name, String(value))
    form.append('file', new Blob([data.subarray(0, 999)]), 'data.bin')
    const response = await fetch(`${server.url}${link.path}/upload`, { method: 'POST', body: form })
    expect(response.status).toBe(400)
    await expectNothingLeft()
  })
})

describe('a refused tus creation-with-upload leaves nothing', () => {
  async function createWithUpload(headers: Record<string, string>, body: Uint8Array) {
    const bytes = body as Uint8Array<ArrayBuffer>
    return server.fetch('/tus/', {
      method: 'POST',
      headers: { ...TUS, 'upload-metadata': `filename ${b64('a.bin')}`, 'content-type': 'application/offset+octet-stream', ...headers },
      body: bytes,
    })
  }

  test('whose bytes fail their checksum', async () => {
    await start()
    const data = randomData(1000)
    const right = new Bun.CryptoHasher('sha256').update(data).digest('base64')
    const response = await createWithUpload({ 'upload-length': '2000', 'upload-checksum': `sha256 ${Buffer.alloc(32).toString('base64')}` }, data)
    expect(response.status).toBe(460)
    expect(response.headers.get('location')).toBeNull()
    await expectNothingLeft()
    // The same request with the right checksum creates the upload.
    expect((await createWithUpload({ 'upload-length': '2000', 'upload-checksum': `sha256 ${right}` }, data)).status).toBe(201)
    expect(uploadRows()).toBe(1)
  })

  test('whose bytes are more than its length', async () => {
    await start()
    const response = await createWithUpload({ 'upload-length': '500' }, randomData(1000))
    expect(response.status).toBe(400)
    await expectNothingLeft()
    expect((await createWithUpload({ 'upload-length': '1000' }, randomData(1000))).status).toBe(201)
    expect(uploadRows()).toBe(1)
  })
})
