import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chunkFields, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

let server: TestServer
const data = randomData(10_000)
let url: string
let unicodeUrl: string

beforeAll(async () => {
  server = await startTestServer()
  await sendChunk(server, chunkFields('dl', data.length, 8192, 0), data.subarray(0, 8192), { fileName: 'report.pdf' })
  await sendChunk(server, chunkFields('dl', data.length, 8192, 1), data.subarray(8192), { fileName: 'report.pdf' })
  url = (await (await server.fetch('/upload/dl')).json()).file.url
  const page = new TextEncoder().encode('<script>alert(1)</script>')
  unicodeUrl = (await (await sendChunk(server, chunkFields('uni', page.length, 1000, 0), page, { fileName: 'Straße "Ω" 😀.html' })).json()).file.url
})
afterAll(() => server.stop())

const bytes = async (response: Response) => new Uint8Array(await response.arrayBuffer())

describe('downloads', () => {
  test('the whole file with its length, type, ETag and name', async () => {
    const response = await server.fetch(url)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-length')).toBe('10000')
    expect(response.headers.get('content-type')).toBe('application/pdf')
    expect(response.headers.get('etag')).toBe(`"${sha256(data)}"`)
    expect(response.headers.get('accept-ranges')).toBe('bytes')
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`)
    expect(await bytes(response)).toEqual(data)
  })

  test('a non-ASCII name is given exactly (RFC 6266) with a safe ASCII fallback', async () => {
    const response = await server.fetch(unicodeUrl)
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="Stra_e _Ω_ __.html"`.replace('Ω', '_') + `; filename*=UTF-8''Stra%C3%9Fe%20%22%CE%A9%22%20%F0%9F%98%80.html`,
    )
  })

  test('an uploaded HTML file can never run script in our origin', async () => {
    const response = await server.fetch(unicodeUrl)
    expect(response.headers.get('content-security-policy')).toBe('sandbox')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expect(response.headers.get('content-disposition')).toStartWith('attachment')
  })

  test.each([
    ['bytes=0-99', 0, 100],
    ['bytes=9990-', 9990, 10_000],
    ['bytes=-10', 9990, 10_000],
    ['bytes=9000-20000', 9000, 10_000],
    ['bytes=5-5', 5, 6],
  ])('Range %s answers 206 with those bytes', async (range, start, end) => {
    const response = await server.fetch(url, { headers: { range } })
    expect(response.status).toBe(206)
    expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end - 1}/10000`)
    expect(response.headers.get('content-length')).toBe(String(end - start))
    expect(await bytes(response)).toEqual(data.subarray(start, end))
  })

  test.each(['bytes=10000-', 'bytes=-0', 'bytes=20000-30000'])('Range %s is not satisfiable (416)', async (range) => {
    const response = await server.fetch(url, { headers: { range } })
    expect(response.status).toBe(416)
    expect(response.headers.get('content-range')).toBe('bytes */10000')
  })

  test.each(['bytes=0-1,5-6', 'items=0-1', 'bytes=5-1'])('Range %s we do not serve gives the whole file', async (range) => {
    const response = await server.fetch(url, { headers: { range } })
    expect(response.status).toBe(200)
    expect(await bytes(response)).toEqual(data)
  })

  test('If-None-Match with the ETag answers 304', async () => {
    const response = await server.fetch(url, { headers: { 'if-none-match': `"${sha256(data)}"` } })
    expect(response.status).toBe(304)
  })

  test('If-Range with another ETag ignores the range', async () => {
    const response = await server.fetch(url, { headers: { range: 'bytes=0-9', 'if-range': '"other"' } })
    expect(response.status).toBe(200)
    const matching = await server.fetch(url, { headers: { range: 'bytes=0-9', 'if-range': `"${sha256(data)}"` } })
    expect(matching.status).toBe(206)
  })

  test('HEAD gives the headers without the body', async () => {
    const response = await server.fetch(url, { method: 'HEAD' })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-length')).toBe('10000')
    expect((await bytes(response)).length).toBe(0)
  })

  test('unknown or malformed ids are 404', async () => {
    for (const path of ['/files/999/download', '/files/abc/download', '/files/1e3/download']) {
      expect((await server.fetch(path)).status).toBe(404)
    }
  })

  test('downloading needs the admin session', async () => {
    const response = await fetch(server.url + url, { redirect: 'manual' })
    expect(response.status).toBe(401)
  })
})
