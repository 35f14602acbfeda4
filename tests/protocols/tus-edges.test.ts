import { describe, expect, test } from 'bun:test'
import { randomData, sha256 } from '../helpers/data.ts'
import { serverPerTest, startTestServer, type TestServer } from '../helpers/server.ts'
import { createLink, TUS, tusMetadata } from '../links/helpers.ts'
import { tusCreate, tusPatch } from './tus-requests.ts'

const OTHER_ORIGIN = 'http://uploader.example'
const start = serverPerTest((env) => startTestServer({ MAX_FILE_SIZE: '16M', TUS_CORS_ORIGINS: OTHER_ORIGIN, ...env }))

const create = tusCreate

async function createUpload(s: TestServer, endpoint: string, headers: Record<string, string>): Promise<string> {
  const response = await create(s, endpoint, headers)
  expect({ status: response.status, body: await response.text() }).toEqual({ status: 201, body: '' })
  return response.headers.get('location')!
}

const patch = tusPatch

/** A body of unknown length (sent chunked): the server cannot refuse it from its Content-Length. */
const streamed = (data: Uint8Array) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(data)
      controller.close()
    },
  })

const VISITOR = { cookie: '' }
const named = (name: string) => ({ 'upload-metadata': tusMetadata({ filename: name }) })

describe('a finished tus upload', () => {
  test('its URL answers GET with the file as its download does: Range, ETag, Content-Disposition', async () => {
    const s = await start()
    const data = randomData(100_000)
    const location = await createUpload(s, '/tus/', { 'upload-length': String(data.length), ...named('report.pdf') })
    const last = await patch(s, location, 0, data)
    expect(last.status).toBe(204)
    const fileUrl = last.headers.get('dropfold-file-url')!
    expect(fileUrl).toMatch(/^\/files\/\d+\/download$/)
    expect(last.headers.get('link')).toBe(`<${fileUrl}>; rel="item"`)

    const whole = await s.fetch(location)
    expect(whole.status).toBe(200)
    expect(sha256(new Uint8Array(await whole.arrayBuffer()))).toBe(sha256(data))
    const download = await s.fetch(fileUrl)
    for (const name of ['etag', 'content-disposition', 'content-type', 'accept-ranges', 'content-length']) {
      expect(whole.headers.get(name)).toBe(download.headers.get(name))
    }
    await download.body?.cancel()
    const range = await s.fetch(location, { headers: { range: 'bytes=10-19' } })
    expect(range.status).toBe(206)
    expect(range.headers.get('content-range')).toBe(`bytes 10-19/${data.length}`)
    expect(new Uint8Array(await range.arrayBuffer())).toEqual(data.subarray(10, 20))
  })

  test('HEAD on it answers the offset and the download headers; HEAD on an unfinished one stays the tus answer', async () => {
    const s = await start()
    const location = await createUpload(s, '/tus/', { 'upload-length': '10', ...named('a.txt') })
    const unfinished = await s.fetch(location, { method: 'HEAD', headers: TUS })
    expect(unfinished.status).toBe(200)
    expect(unfinished.headers.get('upload-offset')).toBe('0')
    expect(unfinished.headers.get('etag')).toBeNull()
    expect(unfinished.headers.get('dropfold-file-url')).toBeNull()
    expect((await s.fetch(location)).status).toBe(404)

    expect((await patch(s, location, 0, '0123456789')).status).toBe(204)
    const finished = await s.fetch(location, { method: 'HEAD', headers: TUS })
    expect(finished.headers.get('upload-offset')).toBe('10')
    expect(finished.headers.get('upload-length')).toBe('10')
    expect(finished.headers.get('cache-control')).toBe('no-store')
    expect(finished.headers.get('etag')).toBe(`"${sha256(new TextEncoder().encode('0123456789'))}"`)
    expect(finished.headers.get('content-disposition')).toContain('a.txt')
    expect(finished.headers.get('dropfold-file-url')).toMatch(/^\/files\/\d+\/download$/)
  })

  test("an admin upload's URL needs the session", async () => {
    const s = await start()
    const location = await createUpload(s, '/tus/', { 'upload-length': '3', ...named('a.txt') })
    expect((await patch(s, location, 0, 'abc')).status).toBe(204)
    expect((await s.fetch(location)).status).toBe(200)
    expect((await s.fetch(location, { headers: { cookie: 'dropfold_session=nope' } })).status).toBe(401)
  })

  test('a creation-with-upload POST that completes, a duplicate of a stored file, and the last PATCH sent again, say where the file is', async () => {
    const s = await start()
    const created = await create(s, '/tus/', { 'upload-length': '3', 'content-type': 'application/offset+octet-stream', ...named('b.txt') }, 'abc')
    expect(created.status).toBe(201)
    const first = created.headers.get('dropfold-file-url')!
    expect(first).toMatch(/^\/files\/\d+\/download$/)

    // The same bytes again: stored once (deduplicated), as a file of its own.
    const location = await createUpload(s, '/tus/', { 'upload-length': '3', ...named('c.txt') })
    const duplicate = await patch(s, location, 0, 'abc')
    expect(duplicate.status).toBe(204)
    const second = duplicate.headers.get('dropfold-file-url')!
    expect(second).toMatch(/^\/files\/\d+\/download$/)
    expect(second).not.toBe(first)
    expect(await (await s.fetch(second)).text()).toBe('abc')

    // The client never saw that answer and sends the (now empty) rest again: the same file.
    const again = await patch(s, location, 3, '')
    expect(again.status).toBe(204)
    expect(again.headers.get('dropfold-file-url')).toBe(second)
  })

  test('a drop link answers with its file only when it lets visitors download, and never says where it is otherwise', async () => {
    const s = await start()
    for (const allowDownload of [true, false]) {
      const link = await createLink(s, allowDownload ? { allowDownload: 'on' } : {})
      const visitor = { cookie: '' }
      const location = (await s.fetch(`${link.path}/tus/`, { method: 'POST', headers: { ...TUS, ...visitor, 'upload-length': '5', ...named('v.txt') } })).headers.get('location')!
      const last = await s.fetch(location, {
        method: 'PATCH',
        headers: { ...TUS, ...visitor, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
        body: 'hello',
      })
      expect(last.status).toBe(204)
      const got = await s.fetch(location, { headers: visitor })
      if (allowDownload) {
        expect(last.headers.get('dropfold-file-url')).toMatch(new RegExp(`^${link.path}/files/\\d+/download$`))
        expect(got.status).toBe(200)
        expect(await got.text()).toBe('hello')
      } else {
        expect(last.headers.get('dropfold-file-url')).toBeNull()
        expect(got.status).toBe(403)
        expect(await got.text()).not.toContain('hello')
        const headed = await s.fetch(location, { method: 'HEAD', headers: { ...TUS, ...visitor } })
        expect(headed.headers.get('upload-offset')).toBe('5')
        expect(headed.headers.get('etag')).toBeNull()
      }
    }
  })
})

describe('every answer under the tus endpoints carries Tus-Resumable and the CORS headers', () => {
  const cors = (response: Response) => ({
    status: response.status,
    tus: response.headers.get('tus-resumable'),
    origin: response.headers.get('access-control-allow-origin'),
    credentials: response.headers.get('access-control-allow-credentials'),
    vary: response.headers.get('vary'),
    exposes: (response.headers.get('access-control-expose-headers') ?? '').split(', '),
  })
  const expected = (status: number) => ({
    status,
    tus: '1.0.0',
    origin: OTHER_ORIGIN,
    credentials: 'true',
    vary: expect.stringContaining('Origin'),
    exposes: expect.arrayContaining(['Upload-Offset', 'Location', 'Upload-Length', 'Tus-Resumable', 'Dropfold-File-Url', 'Upload-Expires']),
  })

  test('a cross-origin request whose session expired is told 401 in words the page can read', async () => {
    const s = await start()
    const response = await s.fetch('/tus/', {
      method: 'POST',
      headers: { ...TUS, origin: OTHER_ORIGIN, cookie: 'dropfold_session=expired', 'upload-length': '3', ...named('a.txt') },
    })
    expect(cors(response)).toEqual(expected(401))
    expect(await response.text()).toContain('Sign in first')
  })

  test('errors of every kind, on the admin endpoint and a link\'s', async () => {
    const s = await start()
    const link = await createLink(s, { maxFileSize: '10' })
    const other = { origin: OTHER_ORIGIN }
    const location = await createUpload(s, '/tus/', { 'upload-length': '3', ...named('a.txt') })
    // One at a time: several at once on one upload would be refused as busy (423).
    const cases: [string, () => Promise<Response>, number][] = [
      ['unknown path', () => s.fetch('/tus/a/b/c', { headers: { ...TUS, ...other } }), 404],
      ['unknown upload', () => s.fetch(`/tus/${'a'.repeat(32)}`, { method: 'HEAD', headers: { ...TUS, ...other } }), 404],
      ['unknown link', () => s.fetch('/d/aaaaaaaaaaaaaaaaaaaaaaaa/tus/', { method: 'POST', headers: { ...TUS, ...other, 'upload-length': '1', ...named('a') } }), 404],
      ['too large for the link', () => s.fetch(`${link.path}/tus/`, { method: 'POST', headers: { ...TUS, ...other, 'upload-length': '11', ...named('a') } }), 413],
      ['wrong content type', () => s.fetch(location, { method: 'PATCH', headers: { ...TUS, ...other, 'content-type': 'text/plain', 'upload-offset': '0' }, body: 'a' }), 415],
      ['past the length', () => patch(s, location, 0, 'abcd', other), 413],
      ['checksum mismatch', () => patch(s, location, 0, 'abc', { ...other, 'upload-checksum': `sha1 ${Buffer.alloc(20).toString('base64')}` }), 460],
      ['no Tus-Resumable', () => s.fetch(location, { method: 'HEAD', headers: other }), 412],
    ]
    for (const [what, answer, status] of cases) expect({ what, ...cors(await answer()) }).toEqual({ what, ...expected(status) })
    expect((await patch(s, location, 0, 'abc')).status).toBe(204)
    const finished = await s.fetch(location, { method: 'DELETE', headers: { ...TUS, ...other } })
    expect(cors(finished)).toEqual(expected(403))
    const terminated = await createUpload(s, '/tus/', { 'upload-length': '3', ...named('b.txt') })
    expect((await s.fetch(terminated, { method: 'DELETE', headers: TUS })).status).toBe(204)
    expect(cors(await s.fetch(terminated, { method: 'HEAD', headers: { ...TUS, ...other } }))).toEqual(expected(410))
  })

  test('an origin not configured gets no CORS headers, and the answer varies by origin', async () => {
    const s = await start()
    const response = await s.fetch('/tus/nothing/here', { headers: { ...TUS, origin: 'http://elsewhere.example' } })
    expect(response.status).toBe(404)
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
    expect(response.headers.get('vary')).toContain('Origin')
    expect(response.headers.get('tus-resumable')).toBe('1.0.0')
  })

  test('TUS_CORS_ORIGINS=* echoes the origin with credentials (a wildcard cannot carry them) and warns at start-up', async () => {
    const s = await start({ TUS_CORS_ORIGINS: '*' })
    expect(s.logs.some((line) => line.startsWith('warning: TUS_CORS_ORIGINS=*'))).toBe(true)
    const response = await s.fetch('/tus/', { method: 'OPTIONS', headers: { origin: 'http://any.example', 'access-control-request-method': 'POST' } })
    expect(response.headers.get('access-control-allow-origin')).toBe('http://any.example')
    expect(response.headers.get('access-control-allow-credentials')).toBe('true')
  })
})

describe('plain multipart uploads take the same CORS as tus', () => {
  test("a configured origin's preflight is answered and its credentialed POST to a drop link is stored and readable", async () => {
    const s = await start()
    const link = await createLink(s)
    for (const path of ['/upload', `${link.path}/upload`]) {
      const preflight = await s.fetch(path, {
        method: 'OPTIONS',
        headers: { ...VISITOR, origin: OTHER_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-requested-with' },
      })
      expect({ path, status: preflight.status, origin: preflight.headers.get('access-control-allow-origin') }).toEqual({ path, status: 204, origin: OTHER_ORIGIN })
      expect(preflight.headers.get('access-control-allow-methods')).toContain('POST')
    }
    const form = new FormData()
    form.append('file', new File(['hello'], 'hello.txt'))
    const posted = await s.fetch(`${link.path}/upload`, { method: 'POST', headers: { ...VISITOR, origin: OTHER_ORIGIN }, body: form })
    expect(posted.status).toBe(200)
    expect(posted.headers.get('access-control-allow-origin')).toBe(OTHER_ORIGIN)
    expect(posted.headers.get('access-control-allow-credentials')).toBe('true')
    // Which another origin is refused.
    const elsewhere = await s.fetch(`${link.path}/upload`, { method: 'POST', headers: { ...VISITOR, origin: 'http://elsewhere.example' }, body: form })
    expect(elsewhere.status).toBe(403)
    expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('status codes', () => {
  test('a PATCH past Upload-Length is 413, whether its length is declared or not, and none of its bytes count', async () => {
    const s = await start()
    const location = await createUpload(s, '/tus/', { 'upload-length': '5', ...named('a.txt') })
    expect((await patch(s, location, 0, streamed(new TextEncoder().encode('abcdefgh')))).status).toBe(413)
    expect((await patch(s, location, 0, 'abcdefgh')).status).toBe(413)
    const head = await s.fetch(location, { method: 'HEAD', headers: TUS })
    expect(head.headers.get('upload-offset')).toBe('0')
    // Which could have been taken: the right bytes are.
    expect((await patch(s, location, 0, 'abcde')).status).toBe(204)
  })

  test('a PATCH past a deferred length declared later is 413', async () => {
    const s = await start()
    const location = await createUpload(s, '/tus/', { 'upload-defer-length': '1', ...named('a.txt') })
    expect((await patch(s, location, 0, 'abc')).status).toBe(204)
    expect((await patch(s, location, 3, streamed(new TextEncoder().encode('defgh')), { 'upload-length': '6' })).status).toBe(413)
    expect((await patch(s, location, 3, 'defgh', { 'upload-length': '6' })).status).toBe(413)
    expect((await patch(s, location, 3, 'def', { 'upload-length': '6' })).status).toBe(204)
  })

  test('Content-Type application/offset+octet-stream with parameters is accepted', async () => {
    const s = await start()
    const location = await createUpload(s, '/tus/', { 'upload-length': '3', ...named('a.txt') })
    const response = await patch(s, location, 0, 'abc', { 'content-type': 'application/offset+octet-stream; charset=binary' })
    expect(response.status).toBe(204)
    expect(response.headers.get('upload-offset')).toBe('3')
  })
})
