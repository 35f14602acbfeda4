import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { randomData, sha256 } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { stagedUploads } from '../helpers/stored.ts'


let server: TestServer
beforeEach(async () => {
  server = await startTestServer({ MAX_FILE_SIZE: '16M' })
})
afterEach(async () => {
  await server.stop()
})

const TUS = { 'tus-resumable': '1.0.0' }
const b64 = (text: string) => Buffer.from(text).toString('base64')
const metadata = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',')
const stagingFiles = () => stagedUploads(server)

function create(headers: Record<string, string>, body?: BodyInit) {
  return server.fetch('/tus/', { method: 'POST', headers: { ...TUS, ...headers }, body })
}

async function createUpload(length: number | null, name = 'movie.mp4', extra: Record<string, string> = {}) {
  const lengthHeader: Record<string, string> = length === null ? { 'upload-defer-length': '1' } : { 'upload-length': String(length) }
  const response = await create({ ...lengthHeader, 'upload-metadata': metadata({ filename: name }), ...extra })
  expect(response.status).toBe(201)
  return response.headers.get('location')!
}

function patch(location: string, offset: number, body: BodyInit, headers: Record<string, string> = {}) {
  return server.fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), ...headers },
    body,
  })
}

const head = (location: string) => server.fetch(location, { method: 'HEAD', headers: TUS })

async function storedFile(location: string) {
  const id = location.split('/').pop()
  const row = server.sql.get('select f.id, f.name, f.sha256, f.folder_id from uploads u join files f on f.id = u.file_id where u.id = ?', id!) as
    | { id: number; name: string; sha256: string; folder_id: number }
    | null
  return row
}

async function download(fileId: number) {
  return new Uint8Array(await (await server.fetch(`/files/${fileId}/download`)).arrayBuffer())
}

describe('discovery', () => {
  test('OPTIONS lists version, extensions, maximum size and checksums, without signing in', async () => {
    const response = await fetch(`${server.url}/tus/`, { method: 'OPTIONS' })
    expect(response.status).toBe(204)
    expect(response.headers.get('tus-version')).toBe('1.0.0')
    expect(response.headers.get('tus-resumable')).toBe('1.0.0')
    expect(response.headers.get('tus-max-size')).toBe(String(16 * 1024 * 1024))
    expect(response.headers.get('tus-extension')!.split(',')).toEqual([
      'creation',
      'creation-with-upload',
      'creation-defer-length',
      'termination',
      'expiration',
      'checksum',
      'concatenation',
    ])
    expect(response.headers.get('tus-checksum-algorithm')!.split(',')).toContain('sha256')
  })

  test('a request without Tus-Resumable 1.0.0 is refused with 412 and the supported version', async () => {
    for (const headers of [{}, { 'tus-resumable': '0.2.2' }] as Record<string, string>[]) {
      const response = await server.fetch('/tus/', { method: 'POST', headers: { ...headers, 'upload-length': '1' } })
      expect(response.status).toBe(412)
      expect(response.headers.get('tus-version')).toBe('1.0.0')
    }
    expect(server.sql.get('select count(*) as n from uploads')).toEqual({ n: 0 })
  })
})

describe('creation and the core protocol', () => {
  test('an upload created, sent in two PATCHes and finished becomes a file', async () => {
    const data = randomData(300_000)
    const response = await create({ 'upload-length': String(data.length), 'upload-metadata': metadata({ filename: 'clip.mov', filetype: 'video/quicktime' }) })
    expect(response.status).toBe(201)
    const location = response.headers.get('location')!
    expect(location).toMatch(/^\/tus\/[a-z0-9]{32}$/)
    expect(new Date(response.headers.get('upload-expires')!).getTime()).toBeGreaterThan(Date.now())

    const before = await head(location)
    expect(before.status).toBe(200)
    expect(before.headers.get('upload-offset')).toBe('0')
    expect(before.headers.get('upload-length')).toBe('300000')
    expect(before.headers.get('cache-control')).toBe('no-store')
    expect(before.headers.get('upload-metadata')).toBe(metadata({ filename: 'clip.mov', filetype: 'video/quicktime' }))

    const first = await patch(location, 0, data.subarray(0, 100_000))
    expect(first.status).toBe(204)
    expect(first.headers.get('upload-offset')).toBe('100000')
    expect((await head(location)).headers.get('upload-offset')).toBe('100000')
    const second = await patch(location, 100_000, data.subarray(100_000))
    expect(second.status).toBe(204)
    expect(second.headers.get('upload-offset')).toBe('300000')

    const file = (await storedFile(location))!
    expect(file).toMatchObject({ name: 'clip.mov', sha256: sha256(data), folder_id: 1 })
    expect(await download(file.id)).toEqual(data)
    expect(await stagingFiles()).toEqual([])
    expect((await head(location)).headers.get('upload-offset')).toBe('300000')
  })

  test('the finished file lands in the folder named by the metadata, deduplicated and named like any upload', async () => {
    server.sql.run("insert into folders (id, parent_id, name, created_at) values (2, 1, 'Inbox', 0)")
    const data = randomData(1000)
    const names = []
    for (let i = 0; i < 2; i++) {
      const response = await create({ 'upload-length': '1000', 'upload-metadata': metadata({ filename: 'same.bin', folder: '2' }) })
      const location = response.headers.get('location')!
      expect((await patch(location, 0, data)).status).toBe(204)
      names.push((await storedFile(location))!)
    }
    expect(names.map((f) => [f.name, f.folder_id])).toEqual([
      ['same.bin', 2],
      ['same (1).bin', 2],
    ])
    expect(server.sql.all('select ref_count from blobs')).toEqual([{ ref_count: 2 }])
  })

  test('creation-with-upload: the first bytes come with the POST', async () => {
    const data = randomData(5000)
    const response = await create(
      { 'upload-length': '5000', 'upload-metadata': metadata({ filename: 'a.bin' }), 'content-type': 'application/offset+octet-stream' },
      data.subarray(0, 2000),
    )
    expect(response.status).toBe(201)
    expect(response.headers.get('upload-offset')).toBe('2000')
    const location = response.headers.get('location')!
    expect((await patch(location, 2000, data.subarray(2000))).status).toBe(204)
    expect(await download((await storedFile(location))!.id)).toEqual(data)
  })

  test('an empty file is complete as soon as it is created', async () => {
    const location = await createUpload(0, 'empty.txt')
    expect((await storedFile(location))!.sha256).toBe(sha256(new Uint8Array(0)))
  })

  test.each([
    [{ 'upload-metadata': metadata({ filename: 'x' }) }, 400, /Upload-Length or Upload-Defer-Length/],
    [{ 'upload-length': '10', 'upload-defer-length': '1', 'upload-metadata': metadata({ filename: 'x' }) }, 400, /either/],
    [{ 'upload-length': '-1', 'upload-metadata': metadata({ filename: 'x' }) }, 400, /Upload-Length must be a whole number/],
    [{ 'upload-length': 'ten', 'upload-metadata': metadata({ filename: 'x' }) }, 400, /Upload-Length must be a whole number/],
    [{ 'upload-defer-length': '2', 'upload-metadata': metadata({ filename: 'x' }) }, 400, /Upload-Defer-Length must be 1/],
    [{ 'upload-length': String(17 * 1024 * 1024), 'upload-metadata': metadata({ filename: 'x' }) }, 413, /limit is 16777216/],
    [{ 'upload-length': '10' }, 400, /needs a filename/],
    [{ 'upload-length': '10', 'upload-metadata': 'filename not*base64' }, 400, /not base64/],
    [{ 'upload-length': '10', 'upload-metadata': `filename ${b64('a')},filename ${b64('b')}` }, 400, /distinct keys/],
    [{ 'upload-length': '10', 'upload-metadata': metadata({ filename: 'a', folder: '99' }) }, 404, /Folder 99 does not exist/],
    [{ 'upload-length': '10', 'upload-metadata': metadata({ filename: 'a' }), 'upload-concat': 'whole' }, 400, /Upload-Concat must be/],
  ])('creation with %p is refused (%i) and creates nothing', async (headers, status, message) => {
    const response = await create(headers)
    expect(response.status).toBe(status)
    expect(response.headers.get('tus-resumable')).toBe('1.0.0')
    expect(await response.text()).toMatch(message)
    expect(server.sql.get('select count(*) as n from uploads')).toEqual({ n: 0 })
  })

  test('a PATCH without the offset content type is refused with 415', async () => {
    const location = await createUpload(10)
    const response = await patch(location, 0, randomData(10), { 'content-type': 'application/octet-stream' })
    expect(response.status).toBe(415)
    expect((await head(location)).headers.get('upload-offset')).toBe('0')
  })

  test('a PATCH at the wrong offset is refused with 409 and writes nothing', async () => {
    const data = randomData(100)
    const location = await createUpload(100)
    expect((await patch(location, 0, data.subarray(0, 40))).status).toBe(204)
    for (const offset of [0, 39, 41, 100]) {
      const response = await patch(location, offset, data.subarray(offset, offset + 10))
      expect(response.status).toBe(409)
    }
    expect((await patch(location, 40, data.subarray(40))).status).toBe(204)
    expect(await download((await storedFile(location))!.id)).toEqual(data)
  })

  test('a PATCH without Upload-Offset is refused with 400', async () => {
    const location = await createUpload(10)
    const response = await server.fetch(location, {
      method: 'PATCH',
      headers: { ...TUS, 'content-type': 'application/offset+octet-stream' },
      body: randomData(10),
    })
    expect(response.status).toBe(400)
  })

  test('a PATCH with more bytes than the upload has left is refused with 413', async () => {
    const location = await createUpload(10)
    expect((await patch(location, 0, randomData(11))).status).toBe(413)
    expect((await head(location)).headers.get('upload-offset')).toBe('0')
  })

  test('unknown uploads are 404', async () => {
    for (const path of ['/tus/0123456789abcdef0123456789abcdef', '/tus/nope', '/tus/..%2f..%2fetc']) {
      expect((await head(path)).status).toBe(404)
      expect((await patch(path, 0, 'x')).status).toBe(404)
    }
  })

  test('X-HTTP-Method-Override lets POST act as PATCH, HEAD or DELETE', async () => {
    const data = randomData(20)
    const location = await createUpload(20)
    const patched = await server.fetch(location, {
      method: 'POST',
      headers: { ...TUS, 'x-http-method-override': 'PATCH', 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
      body: data.subarray(0, 10),
    })
    expect(patched.status).toBe(204)
    const headed = await server.fetch(location, { method: 'POST', headers: { ...TUS, 'x-http-method-override': 'HEAD' } })
    expect(headed.headers.get('upload-offset')).toBe('10')
    const deleted = await server.fetch(location, { method: 'POST', headers: { ...TUS, 'x-http-method-override': 'DELETE' } })
    expect(deleted.status).toBe(204)
    expect((await head(location)).status).toBe(410)
  })

  test('tus needs the admin session', async () => {
    const response = await fetch(`${server.url}/tus/`, { method: 'POST', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': metadata({ filename: 'x' }) } })
    expect(response.status).toBe(401)
  })
})

describe('deferred length', () => {
  test('the length can be given with a later PATCH', async () => {
    const data = randomData(3000)
    const location = await createUpload(null)
    const first = await head(location)
    expect(first.headers.get('upload-defer-length')).toBe('1')
    expect(first.headers.get('upload-length')).toBeNull()
    expect((await patch(location, 0, data.subarray(0, 1000))).status).toBe(204)
    expect((await patch(location, 1000, data.subarray(1000), { 'upload-length': '3000' })).status).toBe(204)
    expect(await download((await storedFile(location))!.id)).toEqual(data)
  })

  test('a length smaller than what was received, or a second different length, is refused', async () => {
    const location = await createUpload(null)
    expect((await patch(location, 0, randomData(100))).status).toBe(204)
    expect((await patch(location, 100, randomData(1), { 'upload-length': '50' })).status).toBe(400)
    expect((await patch(location, 100, new Uint8Array(0), { 'upload-length': '200' })).status).toBe(204)
    expect((await patch(location, 100, new Uint8Array(0), { 'upload-length': '300' })).status).toBe(400)
    expect((await head(location)).headers.get('upload-length')).toBe('200')
  })
})

describe('checksums', () => {
  const digest = (algorithm: string, bytes: Uint8Array) => createHash(algorithm).update(bytes).digest('base64')

  test.each(['sha1', 'sha256', 'md5', 'sha512'])('a PATCH with a correct %s checksum is accepted', async (algorithm) => {
    const data = randomData(5000)
    const location = await createUpload(5000)
    const response = await patch(location, 0, data, { 'upload-checksum': `${algorithm} ${digest(algorithm, data)}` })
    expect(response.status).toBe(204)
    expect(await download((await storedFile(location))!.id)).toEqual(data)
  })

  test('a checksum mismatch is refused with 460 and the bytes are discarded', async () => {
    const data = randomData(5000)
    const location = await createUpload(5000)
    expect((await patch(location, 0, data.subarray(0, 1000))).status).toBe(204)
    const corrupted = data.slice(1000)
    corrupted[7] = corrupted[7]! ^ 0xff
    const response = await patch(location, 1000, corrupted, { 'upload-checksum': `sha256 ${digest('sha256', data.subarray(1000))}` })
    expect(response.status).toBe(460)
    expect((await head(location)).headers.get('upload-offset')).toBe('1000')
    expect((await patch(location, 1000, data.subarray(1000), { 'upload-checksum': `sha1 ${digest('sha1', data.subarray(1000))}` })).status).toBe(204)
    expect(await download((await storedFile(location))!.id)).toEqual(data)
  })

  test('an unsupported checksum algorithm is refused with 400', async () => {
    const location = await createUpload(10)
    expect((await patch(location, 0, randomData(10), { 'upload-checksum': 'crc32 AAAA' })).status).toBe(400)
    expect((await head(location)).headers.get('upload-offset')).toBe('0')
  })
})

describe('termination and expiry', () => {
  test('DELETE terminates an upload and frees its bytes at once', async () => {
    const location = await createUpload(1000)
    expect((await patch(location, 0, randomData(500))).status).toBe(204)
    expect(await stagingFiles()).toHaveLength(1)
    const response = await server.fetch(location, { method: 'DELETE', headers: TUS })
    expect(response.status).toBe(204)
    expect(await stagingFiles()).toEqual([])
    expect((await head(location)).status).toBe(410)
    expect((await patch(location, 500, randomData(500))).status).toBe(410)
  })

  test('an expired upload answers 410', async () => {
    await server.stop()
    server = await startTestServer({ UPLOAD_TTL_HOURS: '1' })
    const location = await createUpload(1000)
    const expires = new Date((await head(location)).headers.get('upload-expires')!).getTime()
    expect(expires - Date.now()).toBeGreaterThan(3_500_000)
    expect(expires - Date.now()).toBeLessThanOrEqual(3_600_000)
    server.sql.run('update uploads set updated_at = updated_at - 2 * 3600 * 1000')
    await server.restart()
    expect((await head(location)).status).toBe(410)
    expect(await stagingFiles()).toEqual([])
  })
})

describe('concatenation', () => {
  test('partial uploads are assembled, in order, into the final file', async () => {
    const data = randomData(250_000)
    const pieces = [data.subarray(0, 100_000), data.subarray(100_000, 100_001), data.subarray(100_001)]
    const partials: string[] = []
    for (const piece of pieces) {
      const response = await create({ 'upload-length': String(piece.length), 'upload-concat': 'partial' })
      expect(response.status).toBe(201)
      const location = response.headers.get('location')!
      expect((await head(location)).headers.get('upload-concat')).toBe('partial')
      partials.push(location)
    }
    // Parts may be sent in any order, in parallel.
    await Promise.all([2, 0, 1].map((i) => patch(partials[i]!, 0, pieces[i]!)))
    expect(server.sql.get('select count(*) as n from files')).toEqual({ n: 0 })

    const final = await create({
      'upload-concat': `final;${partials.map((p) => server.url + p).join(' ')}`,
      'upload-metadata': metadata({ filename: 'joined.bin' }),
    })
    expect(final.status).toBe(201)
    const location = final.headers.get('location')!
    const finalHead = await head(location)
    expect(finalHead.headers.get('upload-concat')).toBe(`final;${partials.join(' ')}`)
    expect(finalHead.headers.get('upload-offset')).toBe('250000')
    const file = (await storedFile(location))!
    expect(file.name).toBe('joined.bin')
    expect(await download(file.id)).toEqual(data)
    expect(await stagingFiles()).toEqual([])
    expect((await patch(location, 250_000, new Uint8Array(1))).status).toBe(403)
  })

  test('a final upload of unfinished or foreign partials is refused', async () => {
    const partial = (await create({ 'upload-length': '10', 'upload-concat': 'partial' })).headers.get('location')!
    const unfinished = await create({ 'upload-concat': `final;${partial}`, 'upload-metadata': metadata({ filename: 'x' }) })
    expect(unfinished.status).toBe(400)
    expect(await unfinished.text()).toMatch(/not complete/)
    const regular = await createUpload(1)
    await patch(regular, 0, randomData(1))
    const notPartial = await create({ 'upload-concat': `final;${regular}`, 'upload-metadata': metadata({ filename: 'x' }) })
    expect(notPartial.status).toBe(400)
    expect(await notPartial.text()).toMatch(/is not a partial upload/)
    const withLength = await create({ 'upload-concat': `final;${partial}`, 'upload-length': '10', 'upload-metadata': metadata({ filename: 'x' }) })
    expect(withLength.status).toBe(400)
  })
})

describe('concurrency and interruption', () => {
  test('a second PATCH while one is writing is refused with 423, never interleaved', async () => {
    const data = randomData(200_000)
    const location = await createUpload(data.length)
    const { promise: firstBytesSent, resolve: sentFirstBytes } = Promise.withResolvers<void>()
    const { promise: release, resolve: finish } = Promise.withResolvers<void>()
    let step = 0
    const slowBody = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (step === 0) {
          controller.enqueue(data.subarray(0, 100_000))
          step++
          sentFirstBytes()
        } else if (step === 1) {
          await release
          controller.enqueue(data.subarray(100_000))
          step++
        } else controller.close()
      },
    })
    const slow = patch(location, 0, slowBody, { 'content-length': String(data.length) })
    await firstBytesSent
    // Probe until the server is inside the first PATCH: a probe with a wrong checksum changes
    // nothing if it gets through (460), and is refused with 423 once the first one holds the upload.
    const probe = () => patch(location, 0, data.subarray(0, 1), { 'upload-checksum': 'sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=' })
    for (let i = 0; i < 100 && (await probe()).status !== 423; i++) await Bun.sleep(10)
    const second = await patch(location, 0, data)
    expect(second.status).toBe(423)
    finish()
    expect((await slow).status).toBe(204)
    expect(await download((await storedFile(location))!.id)).toEqual(data)
  })

  test('an interrupted PATCH keeps every byte that reached the disk, and the client continues from there', async () => {
    const data = randomData(2_000_000)
    const location = await createUpload(data.length)
    const { hostname, port } = new URL(server.url)
    const socket = await Bun.connect({ hostname, port: Number(port), socket: { data() {} } })
    socket.write(
      [
        `PATCH ${location} HTTP/1.1`,
        `Host: ${hostname}:${port}`,
        `Cookie: ${server.cookie}`,
        'Tus-Resumable: 1.0.0',
        'Content-Type: application/offset+octet-stream',
        'Upload-Offset: 0',
        `Content-Length: ${data.length}`,
        '',
        '',
      ].join('\r\n'),
    )
    socket.write(data.subarray(0, 700_000))
    socket.flush()
    // Wait until the server has the bytes in hand, then the connection dies.
    await Bun.sleep(300)
    socket.terminate()
    let offset = 0
    for (let i = 0; i < 100 && offset === 0; i++) {
      await Bun.sleep(20)
      offset = Number((await head(location)).headers.get('upload-offset'))
    }
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThanOrEqual(700_000)
    expect((await patch(location, offset, data.subarray(offset))).status).toBe(204)
    expect(await download((await storedFile(location))!.id)).toEqual(data)
  })
})

describe('CORS', () => {
  test('is off by default', async () => {
    const response = await fetch(`${server.url}/tus/`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
    const post = await create({ origin: 'https://app.example', 'upload-length': '1', 'upload-metadata': metadata({ filename: 'x' }) })
    expect(post.status).toBe(403)
  })

  test('allowed origins get preflight answers and can read the tus headers', async () => {
    await server.stop()
    server = await startTestServer({ TUS_CORS_ORIGINS: 'https://app.example' })
    const preflight = await fetch(`${server.url}/tus/`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'upload-length' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true')
    expect(preflight.headers.get('access-control-allow-methods')).toContain('PATCH')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Upload-Offset')
    const post = await create({ origin: 'https://app.example', 'upload-length': '1', 'upload-metadata': metadata({ filename: 'x' }) })
    expect(post.status).toBe(201)
    expect(post.headers.get('access-control-expose-headers')).toContain('Location')
    const other = await create({ origin: 'https://evil.example', 'upload-length': '1', 'upload-metadata': metadata({ filename: 'x' }) })
    expect(other.status).toBe(403)
  })
})
