import { afterEach, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { randomData } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { stagedUploads } from '../helpers/stored.ts'


/** Finished partial uploads (tus concatenation) expire, are listed, can be cancelled, and go once used. */

const HOUR = 3_600_000
let server: TestServer
let now = Date.now()
afterEach(async () => {
  await server.stop()
})
const start = async () => {
  now = Date.now()
  server = await startTestServer({ UPLOAD_TTL_HOURS: '2' }, { clock: () => now })
}

const TUS = { 'tus-resumable': '1.0.0' }
const b64 = (text: string) => Buffer.from(text).toString('base64')
const stagingFiles = () => stagedUploads(server)
const head = (location: string) => server.fetch(location, { method: 'HEAD', headers: TUS })
const table = async () => (await server.fetch('/uploads/table')).text()
const partialRows = () => server.sql.all("select id, state from uploads where concat = 'partial'")

/** A partial upload of `bytes`, sent in full. */
async function finishedPartial(bytes: Uint8Array, name = 'piece') {
  const created = await server.fetch('/tus/', {
    method: 'POST',
    headers: { ...TUS, 'upload-length': String(bytes.length), 'upload-concat': 'partial', 'upload-metadata': `filename ${b64(name)}` },
  })
  expect(created.status).toBe(201)
  const location = created.headers.get('location')!
  const patched = await server.fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
    body: bytes as Uint8Array<ArrayBuffer>,
  })
  expect(patched.status).toBe(204)
  return location
}

describe('finished partial uploads', () => {
  test('expire like other uploads when no final upload has used them within the time-to-live', async () => {
    await start()
    const location = await finishedPartial(randomData(1000))
    expect(await stagingFiles()).toHaveLength(1)
    now += 2 * HOUR - 1000
    expect(await server.server.engine.expireStale()).toBe(0)
    expect((await head(location)).status).toBe(200)
    now += 2000
    expect(await server.server.engine.expireStale()).toBe(1)
    expect((await head(location)).status).toBe(410)
    expect(await stagingFiles()).toEqual([])
    expect(await table()).toMatch(/class="state expired"/)
  })

  test('are listed on the Uploads page, marked as parts, and can be cancelled there', async () => {
    await start()
    const location = await finishedPartial(randomData(1000), 'left half')
    const listed = await table()
    expect(listed).toContain('left half')
    expect(listed).toMatch(/class="badge"[^>]*>part</)
    expect(listed).toMatch(/class="state waiting"/)
    const id = location.split('/').pop()!
    expect(listed).toContain(`/uploads/${id}/cancel`)
    const cancelled = await server.fetch(`/uploads/${id}/cancel`, { method: 'POST' })
    expect(cancelled.status).toBe(303)
    expect((await head(location)).status).toBe(410)
    expect(await stagingFiles()).toEqual([])
    expect(await table()).toMatch(/class="state cancelled"/)
  })

  test('can be terminated with tus DELETE, which frees their bytes', async () => {
    await start()
    const location = await finishedPartial(randomData(1000))
    expect(await stagingFiles()).toHaveLength(1)
    expect((await server.fetch(location, { method: 'DELETE', headers: TUS })).status).toBe(204)
    expect((await head(location)).status).toBe(410)
    expect(await stagingFiles()).toEqual([])
  })

  test('are gone, rows and bytes, once a final upload has used them', async () => {
    await start()
    const data = randomData(3000)
    const parts = [await finishedPartial(data.subarray(0, 1000)), await finishedPartial(data.subarray(1000))]
    expect(await stagingFiles()).toHaveLength(2)
    expect(partialRows()).toHaveLength(2)
    const final = await server.fetch('/tus/', {
      method: 'POST',
      headers: { ...TUS, 'upload-concat': `final;${parts.join(' ')}`, 'upload-metadata': `filename ${b64('whole.bin')}` },
    })
    expect(final.status).toBe(201)
    expect(partialRows()).toEqual([])
    expect(await stagingFiles()).toEqual([])
    for (const part of parts) expect((await head(part)).status).toBe(404)
    expect(await table()).toContain('No uploads in progress, failed or stopped.')
    // Nothing left to expire later either.
    now += 3 * HOUR
    expect(await server.server.engine.expireStale()).toBe(0)
    const file = server.sql.get("select size_bytes from files where name = 'whole.bin'")
    expect(file).toEqual({ size_bytes: 3000 })
  })
})
