import { describe, expect, test } from 'bun:test'
import { serverPerTest, startTestServer, type TestServer } from '../helpers/server.ts'
import { row } from '../library/helpers.ts'


const start = serverPerTest(startTestServer)

async function createTusUpload(t: TestServer): Promise<string> {
  const metadata = `filename ${Buffer.from('kept.bin').toString('base64')}`
  const response = await t.fetch('/tus/', { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '10', 'upload-metadata': metadata } })
  expect(response.status).toBe(201)
  return response.headers.get('location')!
}

let folders = 0
const newFolder = (t: TestServer, origin: string, headers: Record<string, string> = {}) =>
  t.fetch('/folders/1/folders', { method: 'POST', body: new URLSearchParams({ name: `folder ${++folders}` }), headers: { origin, ...headers } })

describe('the cross-site check', () => {
  test('applies to the method a request asks for: a HEAD that says DELETE is refused cross-site', async () => {
    const t = await start()
    const headers = { 'tus-resumable': '1.0.0', 'x-http-method-override': 'DELETE', origin: 'https://evil.example' }
    const location = await createTusUpload(t)
    const forged = await t.fetch(location, { method: 'HEAD', headers })
    expect(forged.status).toBe(403)
    expect(row(t, 'select state from uploads')).toEqual({ state: 'receiving' })
    // The same request from the site itself does terminate the upload: the refusal was the check.
    const own = await t.fetch(location, { method: 'HEAD', headers: { ...headers, origin: t.url } })
    expect(own.status).toBe(204)
    expect(row(t, 'select state from uploads')).toEqual({ state: 'cancelled' })
  })

  test('compares the scheme of Origin too when Sec-Fetch-Site is absent', async () => {
    const t = await start()
    const { host } = new URL(t.url)
    expect((await newFolder(t, `https://${host}`)).status).toBe(403)
    expect((await newFolder(t, `http://${host}:80`)).status).toBe(403)
    expect((await newFolder(t, `http://${host}`)).status).toBe(303)
  })

  test('behind a trusted proxy, the scheme is the one the proxy forwarded', async () => {
    const t = await start({ TRUST_PROXY: 'true' })
    const { host } = new URL(t.url)
    const viaTls = { 'x-forwarded-proto': 'https' }
    expect((await newFolder(t, `http://${host}`, viaTls)).status).toBe(403)
    expect((await newFolder(t, `https://${host}`, viaTls)).status).toBe(303)
    expect((await newFolder(t, `http://${host}`)).status).toBe(303)
  })

  test('without a trusted proxy, X-Forwarded-Proto changes nothing', async () => {
    const t = await start()
    const { host } = new URL(t.url)
    expect((await newFolder(t, `https://${host}`, { 'x-forwarded-proto': 'https' })).status).toBe(403)
  })
})
