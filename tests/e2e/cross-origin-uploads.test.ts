import { expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { browserSuite, describeWithBrowser, unexpectedErrors, watchPage } from '../helpers/browser.ts'
import type { TestServer } from '../helpers/server.ts'
import { createLink, rows } from '../links/helpers.ts'
import type { Page } from 'playwright-core'

/**
 * Uploaders on a page of another origin (TUS_CORS_ORIGINS=*, which echoes it), in real Chromium:
 * tus-js-client with parallel uploads through a drop link, Dropzone and a plain XMLHttpRequest
 * multipart POST (as Uppy's XHRUpload sends it), and a signed-out admin's tus upload.
 */

const suite = browserSuite()
const TUS_CLIENT = Bun.resolveSync('tus-js-client/dist/tus.min.js', import.meta.dir)
const DROPZONE = Bun.resolveSync('dropzone/dist/dropzone-min.js', import.meta.dir)

/** The same bytes in the page and here: a page on plain http has no crypto.subtle to hash them. */
const PATTERN = `(n) => { const a = new Uint8Array(n); for (let i = 0; i < n; i++) a[i] = (Math.imul(i, 2654435761) >>> 13) & 255; return a }`
const pattern = eval(PATTERN) as (n: number) => Uint8Array
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

/**
 * A page on another origin of the same machine: the server reached as localhost, uploading to it
 * as 127.0.0.1 (two origins, both loopback, so Chromium's private-network checks stay out of it).
 * Its document is the health check's: no page script or policy of ours in the way.
 */
async function uploaderPage(s: TestServer, scripts: string[]): Promise<{ page: Page; requests: { method: string; url: string }[]; errors: string[] }> {
  const page = await (await suite.context()).newPage()
  const { errors } = watchPage(page)
  const requests: { method: string; url: string }[] = []
  page.on('request', (request) => requests.push({ method: request.method(), url: request.url() }))
  await page.goto(`${s.url.replace('127.0.0.1', 'localhost')}/healthz`)
  await page.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<div id="drop"></div>'))
  for (const path of scripts) await page.addScriptTag({ path })
  return { page, requests, errors }
}

const storedFiles = (s: TestServer) => rows<{ name: string; sha256: string; size_bytes: number }>(s, 'select name, sha256, size_bytes from files order by id')

describeWithBrowser('uploads from a page on another origin', () => {
  test('tus-js-client with parallelUploads: 3 through a drop link stores the file whole', async () => {
    const s = await suite.startServer({ TUS_CORS_ORIGINS: '*' })
    const link = await createLink(s, { maxFiles: '1', allowDownload: 'on' })
    const { page, requests, errors } = await uploaderPage(s, [TUS_CLIENT])
    const size = 3 * 1024 * 1024 + 17
    const result = await page.evaluate(
      ({ endpoint, size, pattern }) =>
        new Promise<{ url: string | null; fileUrl: string | null; error?: string }>((resolve) => {
          const data = new Blob([(0, eval)(pattern)(size)])
          let fileUrl: string | null = null
          const upload = new (window as any).tus.Upload(data, {
            endpoint,
            parallelUploads: 3,
            chunkSize: 512 * 1024,
            metadata: { filename: 'parallel.bin' },
            retryDelays: null,
            onAfterResponse: (_req: any, res: any) => {
              fileUrl = res.getHeader('Dropfold-File-Url') ?? fileUrl
            },
            onError: (error: Error) => resolve({ url: null, fileUrl, error: String(error) }),
            onSuccess: () => resolve({ url: upload.url, fileUrl }),
          })
          upload.start()
        }),
      { endpoint: `${s.url}${link.path}/tus/`, size, pattern: PATTERN },
    )
    expect(result.error).toBeUndefined()
    expect(storedFiles(s)).toEqual([{ name: 'parallel.bin', sha256: sha256(pattern(size)), size_bytes: size }])
    // Three partial uploads, then the final one; the page could read where the file is.
    expect(requests.filter((r) => r.method === 'POST' && r.url.startsWith(`${s.url}${link.path}/tus`))).toHaveLength(4)
    expect(result.fileUrl).toMatch(new RegExp(`^${link.path}/files/\\d+/download$`))
    expect(unexpectedErrors(errors)).toEqual([])
  }, 60_000)

  test('Dropzone (preflighted) and a credentialed XMLHttpRequest multipart POST, as XHRUpload sends it, upload through a drop link', async () => {
    const s = await suite.startServer({ TUS_CORS_ORIGINS: '*' })
    const link = await createLink(s)
    const { page, errors } = await uploaderPage(s, [DROPZONE])
    const endpoint = `${s.url}${link.path}/upload`
    const dropzone = await page.evaluate(
      ({ endpoint, pattern }) =>
        new Promise<{ status: number; error?: string }>((resolve) => {
          const Dropzone = (window as any).Dropzone
          Dropzone.autoDiscover = false
          const dz = new Dropzone('#drop', { url: endpoint, withCredentials: true, chunking: true, chunkSize: 100_000, forceChunking: true })
          dz.on('success', (file: any) => resolve({ status: file.xhr.status }))
          dz.on('error', (_file: any, message: unknown) => resolve({ status: -1, error: JSON.stringify(message) }))
          dz.addFile(new File([(0, eval)(pattern)(250_000)], 'dropped.bin'))
        }),
      { endpoint, pattern: PATTERN },
    )
    expect(dropzone).toEqual({ status: 200 })
    // Dropzone's own headers (X-Requested-With, Cache-Control) made the browser ask first (a
    // preflight Playwright does not report): this is what it was told.
    const origin = new URL(page.url()).origin
    const preflight = await fetch(endpoint, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'cache-control,x-requested-with' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin)
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('X-Requested-With')

    const xhr = await page.evaluate(
      ({ endpoint, pattern }) =>
        new Promise<{ status: number; body: string }>((resolve) => {
          const form = new FormData()
          form.append('file', new File([(0, eval)(pattern)(40_000)], 'xhr.bin'))
          const request = new XMLHttpRequest()
          request.open('POST', endpoint)
          request.withCredentials = true
          request.onload = () => resolve({ status: request.status, body: request.responseText })
          request.onerror = () => resolve({ status: 0, body: 'network error' })
          request.send(form)
        }),
      { endpoint, pattern: PATTERN },
    )
    expect(xhr.status).toBe(200)
    expect(JSON.parse(xhr.body).file.name).toBe('xhr.bin')
    expect(storedFiles(s)).toEqual([
      { name: 'dropped.bin', sha256: sha256(pattern(250_000)), size_bytes: 250_000 },
      { name: 'xhr.bin', sha256: sha256(pattern(40_000)), size_bytes: 40_000 },
    ])
    expect(unexpectedErrors(errors)).toEqual([])
  }, 60_000)

  test("a signed-out admin's tus upload from another origin is told 401, not a network error", async () => {
    const s = await suite.startServer({ TUS_CORS_ORIGINS: '*' })
    const { page } = await uploaderPage(s, [TUS_CLIENT])
    const status = await page.evaluate(
      (endpoint) =>
        new Promise<number>((resolve) => {
          const upload = new (window as any).tus.Upload(new Blob(['hello']), {
            endpoint,
            metadata: { filename: 'a.txt' },
            retryDelays: null,
            onBeforeRequest: (req: any) => {
              req.getUnderlyingObject().withCredentials = true
            },
            onError: (error: any) => resolve(error.originalResponse ? error.originalResponse.getStatus() : 0),
            onSuccess: () => resolve(201),
          })
          upload.start()
        }),
      `${s.url}/tus/`,
    )
    expect(status).toBe(401)
  }, 60_000)
})

