import { describe, expect, test } from 'bun:test'
import { randomData, sha256 } from '../helpers/data.ts'
import { serverPerTest, startTestServer, type TestServer } from '../helpers/server.ts'
import { existsSync, statSync } from 'node:fs'
import { stagingPath } from '../library/helpers.ts'
import { createLink, makeFolder } from '../links/helpers.ts'

/**
 * Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload-15) at /resumable/ and
 * /d/<token>/resumable/, with a small client written from the draft's text.
 */

const start = serverPerTest((env) => startTestServer({ MAX_FILE_SIZE: '4M', ...env }))

/** A client from the draft: creation, offset retrieval, append, cancellation. */
function client(s: TestServer, endpoint = '/resumable/', auth: Record<string, string> = {}) {
  const send = (path: string, init: RequestInit) => s.fetch(path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } })
  return {
    create: (body: BodyInit | null, complete: boolean, headers: Record<string, string> = {}) =>
      send(endpoint, { method: 'POST', body, headers: { 'upload-complete': complete ? '?1' : '?0', 'content-disposition': 'attachment; filename="data.bin"', ...headers } }),
    head: (location: string) => send(location, { method: 'HEAD' }),
    append: (location: string, offset: number, body: BodyInit | null, complete: boolean, headers: Record<string, string> = {}) =>
      send(location, {
        method: 'PATCH',
        body,
        headers: { 'content-type': 'application/partial-upload', 'upload-offset': String(offset), 'upload-complete': complete ? '?1' : '?0', ...headers },
      }),
    cancel: (location: string) => send(location, { method: 'DELETE' }),
  }
}

const offsetOf = async (response: Response) => Number(response.headers.get('upload-offset'))
const uploadCount = async (s: TestServer) => ((await s.sql.all('select id from uploads')) as unknown[]).length
const storedFile = async (s: TestServer, location: string) =>
  (await s.sql.get('select f.id, f.name, f.sha256, f.folder_id from uploads u join files f on f.id = u.file_id where u.id = ?', location.split('/').pop()!)) as
    | { id: number; name: string; sha256: string; folder_id: number }
    | null
const downloaded = async (s: TestServer, url: string) => sha256(new Uint8Array(await (await s.fetch(url)).arrayBuffer()))

describe('upload creation', () => {
  test('a whole file in one request (Upload-Complete: ?1) is stored: 201 with the upload resource, and where the file is', async () => {
    const s = await start()
    const data = randomData(300_000)
    const response = await client(s).create(data, true, { 'content-disposition': `attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.bin` })
    expect(response.status).toBe(201)
    expect(response.headers.get('upload-complete')).toBe('?1')
    expect(response.headers.get('upload-offset')).toBe('300000')
    expect(response.headers.get('location')).toMatch(/^\/resumable\/[a-z0-9]{32}$/)
    const fileUrl = response.headers.get('dropfold-file-url')!
    expect(await downloaded(s, fileUrl)).toBe(sha256(data))
    expect(await storedFile(s, response.headers.get('location')!)).toMatchObject({ name: 'résumé.bin', sha256: sha256(data), folder_id: 1 })
  })

  test('the first bytes with Upload-Complete: ?0, then appends: HEAD tells where it stands, the last append completes it', async () => {
    const s = await start()
    const c = client(s)
    const data = randomData(200_000)
    const created = await c.create(data.subarray(0, 50_000), false, { 'upload-length': String(data.length) })
    expect(created.status).toBe(201)
    expect(created.headers.get('upload-complete')).toBe('?0')
    expect(created.headers.get('upload-limit')).toContain('max-size=4194304')
    const location = created.headers.get('location')!

    const head = await c.head(location)
    expect(head.status).toBe(204)
    expect(Object.fromEntries(['upload-offset', 'upload-complete', 'upload-length', 'cache-control'].map((h) => [h, head.headers.get(h)]))).toEqual({
      'upload-offset': '50000',
      'upload-complete': '?0',
      'upload-length': '200000',
      'cache-control': 'no-store',
    })
    expect(head.headers.get('upload-limit')).toMatch(/max-size=4194304, max-age=\d+/)

    const middle = await c.append(location, 50_000, data.subarray(50_000, 120_000), false)
    expect(middle.status).toBe(204)
    expect(await offsetOf(middle)).toBe(120_000)
    const last = await c.append(location, 120_000, data.subarray(120_000), true)
    expect(last.status).toBe(200)
    expect(last.headers.get('upload-complete')).toBe('?1')
    expect(await downloaded(s, last.headers.get('dropfold-file-url')!)).toBe(sha256(data))
    expect((await c.head(location)).headers.get('upload-complete')).toBe('?1')
  })

  test('a length nobody declared is the bytes there when a request says the upload is complete (a streamed body)', async () => {
    const s = await start()
    const c = client(s)
    const data = randomData(100_000)
    const location = (await c.create(data.subarray(0, 10_000), false)).headers.get('location')!
    expect((await c.head(location)).headers.get('upload-length')).toBeNull()
    const stream = new ReadableStream({ start: (controller) => (controller.enqueue(data.subarray(10_000)), controller.close()) })
    const last = await c.append(location, 10_000, stream, true)
    expect(last.status).toBe(200)
    expect(last.headers.get('upload-length')).toBe('100000')
    expect(await downloaded(s, last.headers.get('dropfold-file-url')!)).toBe(sha256(data))
  })

  test('an admin chooses the folder with Dropfold-Folder; the same bytes twice are stored once', async () => {
    const s = await start()
    const folder = await makeFolder(s, 1, 'Inbox')
    const data = randomData(20_000)
    const first = await client(s).create(data, true, { 'dropfold-folder': String(folder) })
    const second = await client(s).create(data, true, { 'dropfold-folder': String(folder) })
    expect([first.status, second.status]).toEqual([201, 201])
    const files = [await storedFile(s, first.headers.get('location')!), await storedFile(s, second.headers.get('location')!)]
    expect(files.map((f) => [f!.name, f!.folder_id])).toEqual([['data.bin', folder], ['data (1).bin', folder]])
    expect(await s.sql.all('select sha256 from blobs')).toEqual([{ sha256: sha256(data) }])
  })

  test('OPTIONS announces the media type and the limits, without signing in', async () => {
    const s = await start()
    const response = await fetch(`${s.url}/resumable/`, { method: 'OPTIONS' })
    expect(response.status).toBe(204)
    expect(response.headers.get('accept-patch')).toBe('application/partial-upload')
    expect(response.headers.get('upload-limit')).toBe('max-size=4194304')
  })
})

describe('resuming', () => {
  test('an append cut off by the network keeps what reached the disk; the client resumes from HEAD\'s offset', async () => {
    const s = await start()
    const c = client(s)
    const data = randomData(2_000_000)
    const location = (await c.create(null, false, { 'upload-length': String(data.length) })).headers.get('location')!
    const { hostname, port } = new URL(s.url)
    const socket = await Bun.connect({ hostname, port: Number(port), socket: { data() {} } })
    socket.write(
      [`PATCH ${location} HTTP/1.1`, `Host: ${hostname}:${port}`, `Cookie: ${s.cookie}`, 'Content-Type: application/partial-upload', 'Upload-Offset: 0', 'Upload-Complete: ?1', `Content-Length: ${data.length}`, '', ''].join('\r\n'),
    )
    socket.write(data.subarray(0, 700_000))
    socket.flush()
    // Until some of the bytes are on the server's disk (bounded), then the connection dies.
    const staged = stagingPath(s, location.split('/').pop()!)
    for (let i = 0; i < 500 && !(existsSync(staged) && statSync(staged).size > 0); i++) await Bun.sleep(10)
    socket.terminate()
    let offset = 0
    // The cut request's lock goes with it: wait until an append is taken again, at the offset HEAD gives.
    let resumed: Response | null = null
    for (let i = 0; i < 200; i++) {
      offset = await offsetOf(await c.head(location))
      resumed = await c.append(location, offset, data.subarray(offset), true)
      if (resumed.status !== 423 && resumed.status !== 409) break
      await Bun.sleep(20)
    }
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThanOrEqual(700_000)
    expect(resumed!.status).toBe(200)
    expect(await downloaded(s, resumed!.headers.get('dropfold-file-url')!)).toBe(sha256(data))
  })

  test('a second append while one is writing is refused (423) and changes nothing', async () => {
    const s = await start()
    const c = client(s)
    const location = (await c.create(null, false, { 'upload-length': '10' })).headers.get('location')!
    let feed!: ReadableStreamDefaultController<Uint8Array>
    const slow = new ReadableStream<Uint8Array>({ start: (controller) => void (feed = controller) })
    const writing = c.append(location, 0, slow, false, { 'content-length': '4' })
    feed.enqueue(new TextEncoder().encode('ab'))
    // The first append holds the upload once its bytes arrive: a probe at an impossible offset
    // (refused 409 otherwise, changing nothing) learns when.
    let probe = 0
    for (let i = 0; i < 500 && probe !== 423; i++) probe = (await c.append(location, 999, null, false)).status
    expect(probe).toBe(423)
    const offset = 0
    const second = await c.append(location, offset, 'zz', false)
    expect(second.status).toBe(423)
    feed.enqueue(new TextEncoder().encode('cd'))
    feed.close()
    expect((await writing).status).toBe(204)
    expect(await offsetOf(await c.head(location))).toBe(4)
    expect((await c.append(location, 4, 'efghij', true)).status).toBe(200)
  })
})

describe('refusals change nothing', () => {
  test('an append at the wrong offset: 409 with the right offset, as the draft\'s problem type', async () => {
    const s = await start()
    const c = client(s)
    const location = (await c.create('abc', false, { 'upload-length': '6' })).headers.get('location')!
    const wrong = await c.append(location, 1, 'def', true)
    expect(wrong.status).toBe(409)
    expect(wrong.headers.get('upload-offset')).toBe('3')
    expect(wrong.headers.get('content-type')).toBe('application/problem+json')
    expect(await wrong.json()).toMatchObject({ type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset', 'expected-offset': 3, 'provided-offset': 1 })
    expect(await offsetOf(await c.head(location))).toBe(3)
    // The same bytes at the right offset are taken.
    expect((await c.append(location, 3, 'def', true)).status).toBe(200)
  })

  test('hostile or lying headers are refused with a clear 4xx, and the upload stays as it was', async () => {
    const s = await start()
    const c = client(s)
    const location = (await c.create('abc', false, { 'upload-length': '6' })).headers.get('location')!
    const refusals: [string, () => Promise<Response>, number][] = [
      ['offset not a number', () => c.append(location, 0, 'd', false, { 'upload-offset': 'abc' }), 400],
      ['negative offset', () => c.append(location, 0, 'd', false, { 'upload-offset': '-3' }), 400],
      ['huge offset', () => c.append(location, 0, 'd', false, { 'upload-offset': '9'.repeat(40) }), 400],
      ['offset past the bytes', () => c.append(location, 0, 'd', false, { 'upload-offset': '5' }), 409],
      ['no Upload-Complete', () => c.append(location, 3, 'd', false, { 'upload-complete': 'yes' }), 400],
      ['another media type', () => c.append(location, 3, 'd', false, { 'content-type': 'application/octet-stream' }), 415],
      ['a different length', () => c.append(location, 3, 'd', false, { 'upload-length': '7' }), 400],
      ['complete, but short of the length', () => c.append(location, 3, 'd', true), 400],
      ['more bytes than the length', () => c.append(location, 3, 'defgh', false), 413],
    ]
    for (const [why, send, status] of refusals) {
      const answer = await send()
      expect({ why, status: answer.status, problem: answer.headers.get('content-type') }).toEqual({ why, status, problem: 'application/problem+json' })
      expect((await answer.text()).length).toBeGreaterThan(0)
    }
    const head = await c.head(location)
    expect([await offsetOf(head), head.headers.get('upload-complete'), head.headers.get('upload-length')]).toEqual([3, '?0', '6'])
    expect((await c.append(location, 3, 'def', true)).status).toBe(200)
  })

  test('creations with bad headers make no upload', async () => {
    const s = await start()
    const c = client(s)
    const refusals: [string, () => Promise<Response>, number][] = [
      ['no Upload-Complete', () => c.create('abc', false, { 'upload-complete': '1' }), 400],
      ['no file name', () => c.create('abc', true, { 'content-disposition': 'attachment' }), 400],
      ['a name of only dots', () => c.create('abc', true, { 'content-disposition': 'attachment; filename=".."' }), 400],
      ['a huge Content-Disposition', () => c.create('abc', true, { 'content-disposition': `attachment; filename="${'a'.repeat(5000)}"` }), 431],
      ['huge length', () => c.create('abc', false, { 'upload-length': '9'.repeat(30) }), 400],
      ['over the largest file', () => c.create('abc', false, { 'upload-length': String(5 * 1024 * 1024) }), 413],
      ['lengths that disagree', () => c.create('abc', true, { 'upload-length': '4' }), 400],
      ['a folder that is no id', () => c.create('abc', true, { 'dropfold-folder': '../2' }), 400],
      ['no such folder', () => c.create('abc', true, { 'dropfold-folder': '999' }), 404],
    ]
    for (const [why, send, status] of refusals) expect({ why, status: (await send()).status }).toEqual({ why, status })
    expect(await uploadCount(s)).toBe(0)
    // The same creation with sound headers makes one.
    expect((await c.create('abc', true)).status).toBe(201)
    expect(await uploadCount(s)).toBe(1)
  })

  test('an over-size creation is answered 413 with the limits, as the draft requires', async () => {
    const s = await start()
    const response = await client(s).create('abc', false, { 'upload-length': String(5 * 1024 * 1024) })
    expect(response.status).toBe(413)
    expect(response.headers.get('upload-limit')).toBe('max-size=4194304')
  })

  test('a completed upload takes nothing more', async () => {
    const s = await start()
    const c = client(s)
    const location = (await c.create('abc', true)).headers.get('location')!
    const more = await c.append(location, 3, 'd', true)
    expect(more.status).toBe(400)
    expect((await more.json()).type).toBe('https://iana.org/assignments/http-problem-types#inconsistent-upload-length')
    const again = await c.append(location, 3, null, true, { 'content-length': '0' })
    expect(again.status).toBe(400)
    expect((await again.json()).type).toBe('https://iana.org/assignments/http-problem-types#completed-upload')
  })
})

describe('cancellation', () => {
  test('DELETE cancels an upload still taking bytes; it is gone afterwards', async () => {
    const s = await start()
    const c = client(s)
    const location = (await c.create('abc', false, { 'upload-length': '6' })).headers.get('location')!
    expect((await c.cancel(location)).status).toBe(204)
    expect((await c.head(location)).status).toBe(410)
    expect((await c.append(location, 3, 'def', true)).status).toBe(410)
  })
})

describe('authorisation', () => {
  test('without the admin session: 401 and no upload', async () => {
    const s = await start()
    const c = client(s, '/resumable/', { cookie: '' })
    const response = await c.create('abc', true)
    expect(response.status).toBe(401)
    expect(await uploadCount(s)).toBe(0)
    // Someone else's upload is not found.
    const location = (await client(s).create('abc', false, { 'upload-length': '6' })).headers.get('location')!
    expect((await c.head(location)).status).toBe(401)
  })

  test('a drop link takes uploads into its folder within its limits; its refusals come before the bytes', async () => {
    const s = await start()
    const folder = await makeFolder(s, 1, 'Drops')
    const link = await createLink(s, { folder: String(folder), maxFileSize: '10' })
    const visitor = client(s, `${link.path}/resumable/`, { cookie: '' })
    const created = await visitor.create('abcd', false, { 'upload-length': '8', 'dropfold-folder': '1' })
    expect(created.status).toBe(201)
    const location = created.headers.get('location')!
    expect(location.startsWith(`${link.path}/resumable/`)).toBe(true)
    expect((await visitor.append(location, 4, 'efgh', true)).status).toBe(200)
    expect(await storedFile(s, location)).toMatchObject({ name: 'data.bin', folder_id: folder })

    const tooLarge = await visitor.create('abc', false, { 'upload-length': '11' })
    expect(tooLarge.status).toBe(413)
    // Without a length, each append's bytes are accounted before they are taken.
    const open = (await visitor.create('abcdef', false)).headers.get('location')!
    expect((await visitor.append(open, 6, 'ghijk', false)).status).toBe(413)
    expect(await offsetOf(await visitor.head(open))).toBe(6)
    // Another link's (or the admin's) upload is not this visitor's.
    const admins = (await client(s).create('abc', false, { 'upload-length': '6' })).headers.get('location')!
    expect((await visitor.head(`${link.path}/resumable/${admins.split('/').pop()}`)).status).toBe(404)
  })

  test('a link with a password refuses a visitor who has not unlocked it', async () => {
    const s = await start()
    const link = await createLink(s, { password: 'open sesame' })
    const response = await client(s, `${link.path}/resumable/`, { cookie: '' }).create('abc', true)
    expect([401, 403]).toContain(response.status)
    expect(await uploadCount(s)).toBe(0)
  })
})

describe('cross-origin', () => {
  test('pages on TUS_CORS_ORIGINS get preflight answers and can read the answers, refusals included', async () => {
    const s = await start({ TUS_CORS_ORIGINS: 'https://app.example' })
    const origin = { origin: 'https://app.example' }
    const preflight = await fetch(`${s.url}/resumable/`, { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'POST' } })
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Upload-Complete')
    const created = await client(s, '/resumable/', origin).create('abc', false, { 'upload-length': '6' })
    expect(created.status).toBe(201)
    expect(created.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(created.headers.get('access-control-expose-headers')).toContain('Upload-Complete')
    const refused = await client(s, '/resumable/', { ...origin, cookie: '' }).create('abc', true)
    expect(refused.status).toBe(401)
    expect(refused.headers.get('access-control-allow-origin')).toBe('https://app.example')
  })
})
