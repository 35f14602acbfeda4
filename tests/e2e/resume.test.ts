import { describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { type ChunkPost, devTools, signIn, throttleUploads, trackChunkPosts, unexpectedErrors, unexpectedLogs, watchPage, browserSuite, describeWithBrowser } from '../helpers/browser.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { type TestServer } from '../helpers/server.ts'


/**
 * Interrupted uploads in a real browser: the server goes away mid-upload, the tab is closed, the
 * server refuses. What was acknowledged is never sent twice, and the stored file is exact.
 * Uploads to a local server are throttled (Chromium's network emulation) so that they take long
 * enough to be interrupted, and so that progress can be watched.
 */

const CHUNK = 64 * 1024
const MiB = 1024 * 1024

const suite = browserSuite()
let tempDir: string | undefined

async function setUp(env: Record<string, string>) {
  const server = await suite.startServer(env)
  tempDir = suite.tempDir()
  const page = await openPage()
  return { server, page, watch: watchPage(page), tempDir }
}

/** A page in a fresh context (no cookies): another tab, another visit. */
async function openPage(): Promise<Page> {
  return (await suite.context()).newPage()
}

/** A file of random bytes in the test's temporary directory. */
function writeRandomFile(name: string, size: number) {
  const data = randomData(size)
  const path = join(tempDir!, name)
  writeFileSync(path, data)
  return { data, path }
}

interface UploadStatusJson {
  upload: { id: string; state: string; receivedChunks: number; totalChunks: number; receivedBytes: number; totalBytes: number; chunkBytes: number }
  file: { id: number; url: string } | null
  chunks: number[]
}

/** What the server says about an upload (GET /upload/<key>), or null if it has none. */
async function uploadStatus(server: TestServer, key: string): Promise<UploadStatusJson | null> {
  const response = await server.fetch(`/upload/${encodeURIComponent(key)}`, { headers: { accept: 'application/json' } })
  if (response.status === 404) return null
  expect(response.status).toBe(200)
  return (await response.json()) as UploadStatusJson
}

/** Polls `check` every few milliseconds until it returns something truthy. */
async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${what}`)
    await Bun.sleep(20)
  }
}

const range = (n: number) => [...Array(n).keys()]
const sorted = (values: Iterable<number>) => [...values].sort((a, b) => a - b)

async function downloadHash(server: TestServer, href: string) {
  const response = await server.fetch(href)
  expect(response.status).toBe(200)
  return sha256(new Uint8Array(await response.arrayBuffer()))
}

function countRows(server: TestServer, sql: string, ...params: (string | number)[]): number {
  return server.sql.get<{ n: number }>(sql, ...params)!.n
}

/**
 * Records an upload that was abandoned long ago (last activity at the epoch) and was promised a
 * petabyte: until the expiry sweep (`engine.expireStale()`) ends it, the server has no room
 * for a new upload and refuses it with 507.
 */
function reserveAllSpace(server: TestServer) {
  server.sql.run(
      `INSERT INTO uploads (id, protocol, owner, client_key, folder_id, file_name, mime_type, total_bytes, chunk_bytes, chunk_count, state, created_at, updated_at)
       VALUES ('abandoned0000000000000000', 'dropzone', 'admin', 'abandoned', 1, 'huge.iso', 'application/octet-stream', ?, ?, ?, 'receiving', 0, 0)`,
    2 ** 50, 64 * MiB, 2 ** 50 / (64 * MiB),
  )
}

/**
 * Console errors the page is expected to log here besides the 404s: Chromium reports every
 * failed request (a connection cut by the stopping server, a refused chunk) as a console error.
 */
const isExpectedNetworkError = (text: string) =>
  /Failed to load resource: net::ERR_/.test(text) || /net::ERR_[A-Z_]+ \(http:[^)]*\/upload/.test(text) || /POST http:[^ ]*\/upload\S* net::ERR_/.test(text)

/**
 * Signs in on `page`, drops the file with uploads slowed down, and closes the tab once the server
 * holds at least 30% of its chunks. Returns the upload's dzuuid.
 */
async function uploadPartlyAndCloseTab(server: TestServer, page: Page, path: string, totalChunks: number) {
  await signIn(page, server.url)
  const tools = await devTools(page)
  await throttleUploads(tools, 1 * MiB)
  const chunks = trackChunkPosts(tools)
  await page.setInputFiles('input.dz-hidden-input', path)
  const key = await until('a chunk POST with its dzuuid', () => chunks.posts.find((p) => p.uuid)?.uuid)
  await until('30% of the chunks on the server', async () => ((await uploadStatus(server, key))?.upload.receivedChunks ?? 0) >= 0.3 * totalChunks)
  await page.context().close()
  return key
}

describeWithBrowser('resuming and retrying uploads in a real browser', () => {
  test('an upload interrupted by stopping the server resumes after the restart without re-sending acknowledged chunks', async () => {
    const size = 5 * MiB + 4321
    const totalChunks = Math.ceil(size / CHUNK)
    const { server, page, watch } = await setUp({ CHUNK_SIZE: '64K' })
    const { data, path } = writeRandomFile('interrupted.bin', size)

    await signIn(page, server.url)
    const cdp = await devTools(page)
    await throttleUploads(cdp, 1.5 * MiB)
    const chunks = trackChunkPosts(cdp)
    await page.setInputFiles('input.dz-hidden-input', path)
    const key = await until('a chunk POST with its dzuuid', () => chunks.posts.find((p) => p.uuid)?.uuid)
    expect(key).toMatch(/^r-/)

    // Stop the server once the browser has seen a good part of the file acknowledged.
    await until('20 chunks acknowledged', () => chunks.acknowledged().size >= 20)
    const before = await uploadStatus(server, key)
    const acknowledgedBeforeStop = chunks.acknowledged()
    // Down long enough that the page's next requests find no server, whatever the stop caught
    // in flight (a request whose body had arrived may still be answered).
    await server.restart(() => Bun.sleep(300))
    // The interruption came mid-upload.
    expect(before!.upload.state).toBe('receiving')
    expect(before!.upload.receivedChunks).toBeLessThan(totalChunks)

    // The page's retries reach the new server (same port) and the upload completes.
    const link = page.locator('.dz-preview.dz-success .dz-status a')
    await link.waitFor({ timeout: 25_000 })
    expect(await link.textContent()).toBe('Stored as “interrupted.bin” — download')
    await chunks.settled()

    const posts = chunks.posts
    expect(posts.filter((p) => p.unreadable)).toEqual([])
    expect(new Set(posts.map((p) => p.uuid))).toEqual(new Set([key]))
    // Some requests were cut off by the stop (and retried): the interruption was real.
    expect(posts.filter((p) => p.failed !== undefined || (p.status !== undefined && p.status !== 200)).length).toBeGreaterThan(0)
    // An acknowledged chunk was sent exactly once: never again after the restart.
    expect(acknowledgedBeforeStop.size).toBeGreaterThanOrEqual(20)
    const resent = sorted(acknowledgedBeforeStop).filter((index) => posts.filter((p) => p.index === index).length !== 1)
    expect(resent).toEqual([])
    // Every chunk was acknowledged in the end.
    expect(sorted(chunks.acknowledged())).toEqual(range(totalChunks))

    // The server stored one file, byte-identical, from one upload.
    const after = await uploadStatus(server, key)
    expect(after!.upload).toMatchObject({ state: 'complete', receivedChunks: totalChunks, totalChunks, totalBytes: size })
    expect(await link.getAttribute('href')).toBe(after!.file!.url)
    expect(await downloadHash(server, after!.file!.url)).toBe(sha256(data))
    expect(countRows(server, 'SELECT count(*) AS n FROM files')).toBe(1)
    expect(countRows(server, 'SELECT count(*) AS n FROM uploads')).toBe(1)
    expect(countRows(server, 'SELECT count(*) AS n FROM upload_chunks')).toBe(0)

    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors).filter((e) => !isExpectedNetworkError(e))).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  }, 30_000)

  test('a file dropped again after the tab was closed is resumed and only the missing chunks are sent', async () => {
    const size = 4 * MiB + 999
    const totalChunks = Math.ceil(size / CHUNK)
    const { server, page: first } = await setUp({ CHUNK_SIZE: '64K' })
    const { data, path } = writeRandomFile('closed tab.bin', size)

    // First visit: the upload gets about a third of the way, then the tab is closed.
    const key = await uploadPartlyAndCloseTab(server, first, path, totalChunks)

    const held = (await uploadStatus(server, key))!
    expect(held.upload.state).toBe('receiving')
    expect(held.chunks.length).toBeGreaterThanOrEqual(0.3 * totalChunks)
    expect(held.chunks.length).toBeLessThan(totalChunks)

    // Second visit, new tab, new session: the same file is dropped again.
    const page = await openPage()
    const watch = watchPage(page)
    await signIn(page, server.url)
    const tools = await devTools(page)
    await throttleUploads(tools, 2 * MiB)
    const chunks = trackChunkPosts(tools)
    const asked = page.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).pathname === `/upload/${key}`)
    await page.setInputFiles('input.dz-hidden-input', path)
    // What the page was told the server holds when it started (chunks still in flight when the
    // first tab closed may have landed after our own look above, never the other way round).
    const told = (await (await asked).json()) as UploadStatusJson
    expect(told.upload.state).toBe('receiving')
    for (const index of held.chunks) expect(told.chunks).toContain(index)

    // The preview says so, with the share the server already held.
    const percent = Math.floor((100 * told.upload.receivedBytes) / size)
    expect(percent).toBeGreaterThanOrEqual(30)
    await page.locator('.dz-preview .dz-status').filter({ hasText: new RegExp(`^Resuming at ${percent}% \\(.+ already on the server\\)$`) }).waitFor()

    const link = page.locator('.dz-preview.dz-success .dz-status a')
    await link.waitFor({ timeout: 20_000 })
    await chunks.settled()

    // Exactly the chunks the server lacked were sent, each once, under the same upload id.
    const posts = chunks.posts
    expect(posts.filter((p) => p.unreadable)).toEqual([])
    expect(new Set(posts.map((p) => p.uuid))).toEqual(new Set([key]))
    const missing = range(totalChunks).filter((i) => !told.chunks.includes(i))
    expect(sorted(new Set(posts.map((p) => p.index!)))).toEqual(missing)
    expect(posts.length).toBe(missing.length)

    const after = (await uploadStatus(server, key))!
    expect(after.upload).toMatchObject({ state: 'complete', receivedChunks: totalChunks })
    expect(await link.getAttribute('href')).toBe(after.file!.url)
    expect(await downloadHash(server, after.file!.url)).toBe(sha256(data))
    expect(countRows(server, 'SELECT count(*) AS n FROM files')).toBe(1)

    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors)).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  }, 30_000)

  test('a refused file can be retried with the Retry button', async () => {
    const size = 5 * CHUNK - 1000
    const totalChunks = Math.ceil(size / CHUNK)
    const { server, page, watch } = await setUp({ CHUNK_SIZE: '64K' })
    const { data, path } = writeRandomFile('report.pdf', size)
    // An upload abandoned long ago still has space promised to it, more than any disk has: the
    // server refuses new uploads with 507 until the expiry sweep releases that space.
    reserveAllSpace(server)

    await signIn(page, server.url)
    const tools = await devTools(page)
    const chunks = trackChunkPosts(tools)
    await page.setInputFiles('input.dz-hidden-input', path)
    const message = page.locator('.dz-preview.dz-error .dz-error-message')
    await message.waitFor()
    expect(await message.textContent()).toContain('Not enough free disk space')
    const retry = page.locator('.dz-preview.dz-error button.retry')
    expect(await retry.isVisible()).toBe(true)
    // Every request of the refused attempt has been answered (with the refusal).
    await until('the refused attempt to end', () => chunks.posts.length > 0 && chunks.posts.every((p) => p.status !== undefined || p.failed))
    await chunks.settled()
    const refused = chunks.posts.length
    expect(chunks.posts.map((p) => p.status)).toEqual(Array(refused).fill(507))
    expect(countRows(server, 'SELECT count(*) AS n FROM files')).toBe(0)

    // The sweep expires the abandoned upload; now there is room, and the person clicks Retry.
    expect(await server.server.engine.expireStale()).toBe(1)
    await retry.click()
    const link = page.locator('.dz-preview.dz-success .dz-status a')
    await link.waitFor()
    await chunks.settled()

    // The file was sent again, all of it, and stored exactly; the failed preview was replaced.
    const again = chunks.posts.slice(refused)
    expect(again.filter((p) => p.unreadable)).toEqual([])
    expect(sorted(again.map((p) => p.index!))).toEqual(range(totalChunks))
    expect(again.every((p) => p.status === 200)).toBe(true)
    expect(await page.locator('.dz-preview').count()).toBe(1)
    expect(await page.locator('.dz-preview.dz-error').count()).toBe(0)
    // The refusal left nothing behind on the server, so the retry went up under the same resume key.
    const key = again[0]!.uuid!
    expect(key).toMatch(/^r-/)
    expect(new Set(chunks.posts.map((p) => p.uuid))).toEqual(new Set([key]))
    const status = (await uploadStatus(server, key))!
    expect(status.upload.state).toBe('complete')
    expect(await downloadHash(server, status.file!.url)).toBe(sha256(data))
    expect(countRows(server, 'SELECT count(*) AS n FROM files')).toBe(1)

    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors).filter((e) => !/status of 507/.test(e))).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  }, 30_000)

  test('the page shows overall speed and time remaining while uploading', async () => {
    const size = 3 * MiB
    const throttle = 1 * MiB
    const { server, page, watch } = await setUp({ CHUNK_SIZE: '64K' })
    const { path } = writeRandomFile('progress.bin', size)

    await signIn(page, server.url)
    const tools = await devTools(page)
    await throttleUploads(tools, throttle)
    const summary = page.locator('#upload-summary')
    expect(await summary.textContent()).toBe('')
    await page.setInputFiles('input.dz-hidden-input', path)

    // Once a second or so of history is in, the summary reads e.g. "41% · 1.0 MB/s · 2 s left".
    const pattern = /^(\d+)% · ([\d.]+) (B|KB|MB|GB)\/s · (.+) left$/
    const shown = await until('a summary with speed and time left, past 30%', async () => {
      const text = (await summary.textContent()) ?? ''
      const m = pattern.exec(text)
      return m && Number(m[1]) >= 30 && m[4] !== '…' ? m : null
    })
    expect(shown[0]).toMatch(/\d+% · [\d.]+ (B|KB|MB|GB)\/s · .+ left/)
    expect(shown[4]).toMatch(/^\d+ s$/)
    // The speed is the throttled one, within reason (units of 1000 bytes).
    const speed = Number(shown[2]) * { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[shown[3] as 'B']
    expect(speed).toBeGreaterThan(throttle / 3)
    expect(speed).toBeLessThan(throttle * 3)
    // And the time left agrees with it, give or take a few seconds.
    const left = Number(shown[4]!.split(' ')[0])
    expect(left).toBeLessThanOrEqual(Math.ceil((size * (1 - Number(shown[1]) / 100)) / (throttle / 3)) + 1)

    // When the queue is done the summary is cleared.
    await page.locator('.dz-preview.dz-success .dz-status a').waitFor()
    await until('the summary to clear', async () => (await summary.textContent()) === '')

    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors)).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  }, 30_000)

  test('a resumed upload that expired on the server starts over from scratch when retried', async () => {
    const size = 3 * MiB + 777
    const totalChunks = Math.ceil(size / CHUNK)
    const { server, page: first } = await setUp({ CHUNK_SIZE: '64K' })
    const { data, path } = writeRandomFile('expires.bin', size)

    // A first tab gets part of the file to the server and is closed.
    const key = await uploadPartlyAndCloseTab(server, first, path, totalChunks)

    // A second tab resumes it, slowly.
    const page = await openPage()
    const watch = watchPage(page)
    await signIn(page, server.url)
    const tools = await devTools(page)
    await throttleUploads(tools, 256 * 1024)
    const chunks = trackChunkPosts(tools)
    await page.setInputFiles('input.dz-hidden-input', path)
    await page.locator('.dz-preview .dz-status').filter({ hasText: /Resuming at \d+%/ }).waitFor()

    // Meanwhile the server expires the upload (as its sweep does after UPLOAD_TTL_HOURS without
    // activity): its next chunk is refused with 410 and the page offers Retry.
    server.sql.run(`UPDATE uploads SET state = 'expired' WHERE client_key = ?`, key)
    const message = page.locator('.dz-preview.dz-error .dz-error-message')
    await message.waitFor()
    expect(await message.textContent()).toContain('expired')
    await until('the failed attempt to end', () => chunks.posts.every((p) => p.status !== undefined || p.failed))
    await chunks.settled()
    const firstAttempt = chunks.posts.length
    expect(chunks.posts.some((p) => p.status === 410)).toBe(true)

    // Retry: the expired upload cannot be continued, so the whole file goes up as a new upload.
    await throttleUploads(tools, 4 * MiB)
    await page.locator('.dz-preview.dz-error button.retry').click()
    const link = page.locator('.dz-preview.dz-success .dz-status a')
    const error = page.locator('.dz-preview.dz-error .dz-error-message')
    await Promise.race([link.waitFor({ timeout: 20_000 }), error.waitFor({ timeout: 20_000 })])
    expect(await error.allTextContents()).toEqual([])
    await chunks.settled()
    const retried = chunks.posts.slice(firstAttempt)
    expect(retried.filter((p) => p.unreadable)).toEqual([])
    const newKey = retried[0]!.uuid!
    expect(newKey).not.toBe(key)
    expect(new Set(retried.map((p) => p.uuid))).toEqual(new Set([newKey]))
    expect(sorted(new Set(retried.map((p) => p.index!)))).toEqual(range(totalChunks))

    const status = (await uploadStatus(server, newKey))!
    expect(status.upload.state).toBe('complete')
    expect(await link.getAttribute('href')).toBe(status.file!.url)
    expect(await downloadHash(server, status.file!.url)).toBe(sha256(data))
    expect(countRows(server, 'SELECT count(*) AS n FROM files')).toBe(1)

    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors).filter((e) => !/status of 410/.test(e))).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  }, 30_000)

  test("Retry is not disturbed by the failed attempt's requests that are still on their way", async () => {
    // Two chunks of very different sizes: the short one is refused at once, the long one is
    // still being sent when the person clicks Retry.
    const size = CHUNK + 1000
    const { server, page, watch } = await setUp({ CHUNK_SIZE: '64K' })
    const { data, path } = writeRandomFile('two chunks.bin', size)
    reserveAllSpace(server)

    await signIn(page, server.url)
    const tools = await devTools(page)
    await throttleUploads(tools, 16 * 1024)
    const chunks = trackChunkPosts(tools)
    await page.setInputFiles('input.dz-hidden-input', path)
    await page.locator('.dz-preview.dz-error button.retry').waitFor()
    await chunks.settled()
    const firstAttempt = [...chunks.posts]
    // The long chunk of the refused attempt is still on its way.
    const pending = firstAttempt.filter((p) => p.status === undefined && p.failed === undefined)
    expect(pending.map((p) => p.index)).toEqual([0])

    expect(await server.server.engine.expireStale()).toBe(1)
    await page.locator('.dz-preview.dz-error button.retry').click()
    await throttleUploads(tools, -1)
    const link = page.locator('.dz-preview.dz-success .dz-status a')
    await link.waitFor()
    await chunks.settled()
    // Let whatever the old request does next happen: it ends (aborted or answered) before we look.
    await until('the old request to end', () => pending[0]!.status !== undefined || pending[0]!.failed !== undefined)

    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(await page.locator('.dz-preview').count()).toBe(1)
    expect(await page.locator('.dz-preview.dz-error').count()).toBe(0)
    expect(await link.textContent()).toBe('Stored as “two chunks.bin” — download')
    const retried = chunks.posts.filter((p) => !firstAttempt.includes(p))
    // Each chunk is acknowledged exactly once, in the new attempt. A request of the retry may
    // itself meet a passing failure (a connection the server closed under load) and be sent
    // again after a pause: that is the page doing its job, as long as it is only that.
    const outcome = (p: ChunkPost) => (p.status !== undefined ? String(p.status) : `failed: ${p.failed}`)
    expect(sorted(retried.filter((p) => p.status === 200).map((p) => p.index!))).toEqual([0, 1])
    const passing = retried.filter((p) => p.status !== 200).map(outcome)
    expect(passing.filter((o) => o !== '423' && !o.startsWith('failed: net::ERR_'))).toEqual([])
    expect(new Set(retried.map((p) => p.uuid)).size).toBe(1)
    const status = (await uploadStatus(server, retried[0]!.uuid!))!
    expect(status.upload.state).toBe('complete')
    expect(await downloadHash(server, status.file!.url)).toBe(sha256(data))
  }, 30_000)
})
