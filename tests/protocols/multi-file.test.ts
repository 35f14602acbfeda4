import { afterEach, describe, expect, test } from 'bun:test'
import { randomData } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { createLink } from '../links/helpers.ts'
import { eventually, sendCutShort } from '../helpers/cut-short.ts'
import { stagedUploads, storedBlobs } from '../helpers/stored.ts'


/** A plain multipart request with several files stores all of them or none. */

let server: TestServer
afterEach(async () => {
  await server.stop()
})

const fileCount = () => (server.sql.get('select count(*) as n from files') as { n: number }).n
const uploadCount = () => (server.sql.get('select count(*) as n from uploads') as { n: number }).n
const blobFiles = () => storedBlobs(server)

function form(files: [name: string, bytes: Uint8Array][]) {
  const body = new FormData()
  for (const [name, bytes] of files) body.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), name)
  return body
}

const post = (path: string, files: [string, Uint8Array][]) => fetch(`${server.url}${path}/upload`, { method: 'POST', body: form(files) })

describe('several files in one plain multipart request', () => {
  test('a link that takes 2 files, sent 3: refused naming the third, and none is stored', async () => {
    server = await startTestServer()
    const link = await createLink(server, { maxFiles: '2' })
    const response = await post(link.path, [['a.txt', randomData(100)], ['b.txt', randomData(200)], ['c.txt', randomData(300)]])
    expect(response.status).toBe(403)
    const { error } = await response.json()
    expect(error).toContain('“c.txt”')
    expect(error).toContain('at most 2 files')
    expect(error).toContain('None of the 3 files was stored')
    expect([fileCount(), uploadCount(), (await blobFiles()).length]).toEqual([0, 0, 0])
    // The first two alone fit, and are stored.
    const fits = await post(link.path, [['a.txt', randomData(100)], ['b.txt', randomData(200)]])
    expect(fits.status).toBe(200)
    expect((await fits.json()).files.map((f: { name: string }) => f.name)).toEqual(['a.txt', 'b.txt'])
    expect(fileCount()).toBe(2)
  })

  test('a link with a total size, sent files whose sum is over it: none is stored', async () => {
    server = await startTestServer()
    const link = await createLink(server, { maxTotalSize: '1000' })
    const response = await post(link.path, [['a.bin', randomData(400)], ['b.bin', randomData(400)], ['c.bin', randomData(400)]])
    expect(response.status).toBe(413)
    expect((await response.json()).error).toContain('“c.bin”')
    expect([fileCount(), uploadCount(), (await blobFiles()).length]).toEqual([0, 0, 0])
    expect((await post(link.path, [['a.bin', randomData(400)], ['b.bin', randomData(400)]])).status).toBe(200)
    expect(fileCount()).toBe(2)
  })

  test('files streamed to disk (a request over 2 MiB), a link that takes 2, sent 3: none is stored', async () => {
    server = await startTestServer()
    const link = await createLink(server, { maxFiles: '2' })
    const MiB = 1024 * 1024
    const files: [string, Uint8Array][] = [['a.bin', randomData(1.2 * MiB)], ['b.bin', randomData(1.2 * MiB)], ['c.bin', randomData(1.2 * MiB)]]
    const response = await post(link.path, files)
    expect(response.status).toBe(403)
    const { error } = await response.json()
    expect(error).toContain('“c.bin”')
    expect(error).toContain('None of the files of this request was stored')
    expect([fileCount(), uploadCount(), (await blobFiles()).length]).toEqual([0, 0, 0])
    expect(await stagedUploads(server)).toEqual([])
    // Two of them, streamed the same way, are stored.
    const fits = await post(link.path, files.slice(0, 2))
    expect(fits.status).toBe(200)
    expect(fileCount()).toBe(2)
  })

  test('files streamed to disk to the admin, a later one refused: none is stored', async () => {
    server = await startTestServer()
    const MiB = 1024 * 1024
    const files: [string, Uint8Array][] = [['a.bin', randomData(1.2 * MiB)], ['b.bin', randomData(1.2 * MiB)], ['..', randomData(1000)]]
    const response = await server.fetch('/upload', { method: 'POST', body: form(files) })
    expect(response.status).toBe(400)
    expect((await response.json()).error).toContain('“..”')
    expect([fileCount(), uploadCount(), (await blobFiles()).length]).toEqual([0, 0, 0])
    expect(await stagedUploads(server)).toEqual([])
    expect((await server.fetch('/upload', { method: 'POST', body: form(files.slice(0, 2)) })).status).toBe(200)
    expect(fileCount()).toBe(2)
  })

  test('files streamed to disk, the connection dropped during the third: none is stored, and no staged bytes are left', async () => {
    server = await startTestServer()
    const MiB = 1024 * 1024
    const files: [string, Uint8Array][] = [['a.bin', randomData(1.2 * MiB)], ['b.bin', randomData(1.2 * MiB)], ['c.bin', randomData(1.2 * MiB)]]
    const request = new Response(form(files))
    const contentType = request.headers.get('content-type')!
    const body = new Uint8Array(await request.arrayBuffer())
    const names = () => server.sql.all('select file_name as name, state from uploads order by created_at')
    // Dropped once the server is writing the third file: the first two were received whole.
    const writingThird = async () => {
      for (let tries = 0; tries < 600 && !names().some((row) => (row as { name: string }).name === 'c.bin'); tries++) await Bun.sleep(50)
    }
    await sendCutShort(server, { body, contentType }, body.length - 0.6 * MiB, writingThird)
    await eventually(() => expect(names()).toEqual([{ name: 'c.bin', state: 'failed' }]))
    expect([fileCount(), (await blobFiles()).length]).toEqual([0, 0])
    expect(await stagedUploads(server)).toEqual([])
    // Sent whole, the same request stores all three.
    const whole = await server.fetch('/upload', { method: 'POST', body: form(files) })
    expect(whole.status).toBe(200)
    expect(fileCount()).toBe(3)
  })

  test('an empty file among files streamed to disk is stored with them', async () => {
    server = await startTestServer()
    const big = randomData(2.5 * 1024 * 1024)
    const response = await server.fetch('/upload', { method: 'POST', body: form([['big.bin', big], ['empty.txt', new Uint8Array(0)]]) })
    expect(response.status).toBe(200)
    const { files } = await response.json()
    expect(files.map((f: { name: string; sizeBytes: number }) => [f.name, f.sizeBytes])).toEqual([['big.bin', big.length], ['empty.txt', 0]])
    expect(await stagedUploads(server)).toEqual([])
  })

  test('requests racing for a link’s last places each store both their files or neither', async () => {
    server = await startTestServer()
    const link = await createLink(server, { maxFiles: '5' })
    const responses = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post(link.path, [[`a${i}.txt`, randomData(100)], [`b${i}.txt`, randomData(100)]])),
    )
    const accepted = responses.filter((r) => r.status === 200).length
    expect(accepted).toBe(2)
    expect(responses.filter((r) => r.status === 403)).toHaveLength(10)
    // Never one file of a pair: the fifth place stays free.
    expect(fileCount()).toBe(4)
    const names = (server.sql.all('select name from files') as { name: string }[]).map((f) => f.name.slice(1))
    expect(names.sort()).toEqual([...new Set(names)].flatMap((n) => [n, n]).sort())
  })

  test('a bad name among the files: refused naming it, and none is stored', async () => {
    server = await startTestServer()
    const body = new FormData()
    body.append('file', new Blob(['first']), 'first.txt')
    body.append('file', new Blob(['second']), '..')
    const response = await server.fetch('/upload', { method: 'POST', body })
    expect(response.status).toBe(400)
    expect((await response.json()).error).toContain('“..”')
    expect([fileCount(), uploadCount(), (await blobFiles()).length]).toEqual([0, 0, 0])
  })

  test('files with the same content in one request are stored as two files on one blob', async () => {
    server = await startTestServer()
    const bytes = randomData(500)
    const admin = await server.fetch('/upload', { method: 'POST', body: form([['one.bin', bytes], ['two.bin', bytes]]) })
    expect(admin.status).toBe(200)
    expect(fileCount()).toBe(2)
    expect((await blobFiles()).length).toBe(1)
  })
})
