import { afterAll, afterEach, beforeAll, expect } from 'bun:test'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type CDPSession,
  type Page,
  type Request,
} from 'playwright-core'
import { startTestServer, TEST_PASSWORD, type TestServer } from './server.ts'
import { describeNeeding, type Service } from './services.ts'

/**
 * Real Chromium for end-to-end tests, driven by playwright-core (no bundled browsers: we use the
 * system's). Suites that need it are declared with describeWithBrowser: skipped and reported
 * without Chromium, failed in CI (see describeNeeding).
 */

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export const CHROMIUM: Service = {
  name: 'Chromium',
  missing: () => (existsSync(CHROMIUM_PATH) ? null : `Chromium was not found at ${CHROMIUM_PATH}`),
  howToRun: 'Run them after `apt-get install -y chromium`, or with CHROMIUM_PATH set to a Chromium/Chrome executable.',
}

/** `describe` for a suite that drives a real browser. */
export function describeWithBrowser(name: string, body: () => void) {
  return describeNeeding([CHROMIUM], name, body)
}

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium was not found at ${CHROMIUM_PATH}. The browser tests need a real Chromium: ` +
        'install it with `apt-get install chromium`, or set CHROMIUM_PATH to the path of a Chromium/Chrome executable.',
    )
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS })
}

/** A fresh context (no cookies, no storage): a person who has never visited. */
export async function newContext(browser: Browser, options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, ...options })
  context.setDefaultTimeout(15_000)
  context.setDefaultNavigationTimeout(15_000)
  return context
}

/**
 * Collects what a page reports that a test should fail on: uncaught exceptions and console errors.
 * Call `problems()` to read them.
 */
export function watchPage(page: Page) {
  const errors: string[] = []
  const console: string[] = []
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`))
  page.on('console', (message) => {
    console.push(`${message.type()}: ${message.text()}`)
    if (message.type() === 'error') errors.push(`console.error: ${message.text()} (${message.location().url})`)
  })
  return { errors, console }
}

export async function closeContext(context: BrowserContext | undefined) {
  await context?.close().catch(() => {})
}

export async function closeBrowser(browser: Browser | undefined) {
  await browser?.close().catch(() => {})
}

/**
 * A browser test file's fixtures: one Chromium for the file; per test a server, browser contexts
 * and a temporary directory, all torn down after each test whatever happened. Call it at the top
 * level of the file.
 */
export function browserSuite() {
  let browser: Browser | undefined
  const contexts: BrowserContext[] = []
  let server: TestServer | undefined
  let tempDir: string | undefined
  beforeAll(async () => {
    // Without Chromium every suite of the file is skipped (describeWithBrowser): nothing to launch.
    if (!CHROMIUM.missing()) browser = await launchBrowser()
  })
  afterEach(async () => {
    for (const context of contexts.splice(0)) await closeContext(context)
    await server?.stop()
    server = undefined
    if (tempDir) rmSync(tempDir, { recursive: true, force: true })
    tempDir = undefined
  })
  afterAll(async () => {
    await closeBrowser(browser)
  })
  return {
    async startServer(env: Record<string, string> = {}) {
      server = await startTestServer(env)
      return server
    },
    async context(options: BrowserContextOptions = {}) {
      const context = await newContext(browser!, options)
      contexts.push(context)
      return context
    },
    tempDir() {
      tempDir ??= mkdtempSync(join(tmpdir(), 'dropfold-e2e-'))
      return tempDir
    },
  }
}

export const ROOT_FOLDER_PATH = '/folders/1'

/** Opens the site without a session, is sent to the login page, signs in, lands on the root folder. */
export async function signIn(page: Page, url: string) {
  await page.goto(`${url}/`)
  await page.waitForURL((u) => u.pathname === '/login')
  expect(new URL(page.url()).searchParams.get('next')).toBe('/')
  await page.fill('input[name=password]', TEST_PASSWORD)
  await Promise.all([page.waitForURL((u) => u.pathname === ROOT_FOLDER_PATH), page.click('button[type=submit]')])
  await waitForUploader(page)
}

/** Waits until a folder page's scripts ran: Dropzone (deferred) made the form a drop target and added its hidden input. */
export async function waitForUploader(page: Page) {
  await page.waitForSelector('#dropzone.dz-clickable')
  await page.waitForSelector('input.dz-hidden-input', { state: 'attached' })
}

/** Signs in through the plain login form, for pages without JavaScript (nothing waits for scripts). */
export async function signInWithoutScripts(page: Page, url: string) {
  await page.goto(`${url}/login`)
  await page.fill('input[name=password]', TEST_PASSWORD)
  await Promise.all([page.waitForURL((u) => u.pathname === ROOT_FOLDER_PATH), page.click('button[type=submit]')])
}

/** Accepts every confirm() dialog (hx-confirm) and records its text. */
export function acceptDialogs(page: Page) {
  const messages: string[] = []
  page.on('dialog', (dialog) => {
    messages.push(dialog.message())
    void dialog.accept().catch(() => {})
  })
  return messages
}

/**
 * Marks the current document; `stillSameDocument()` is true until the page is reloaded or
 * navigated away (what htmx swaps must not do).
 */
export async function markDocument(page: Page) {
  await page.evaluate(() => ((globalThis as any).__marker = 1))
  return async () => (await page.evaluate(() => (globalThis as any).__marker)) === 1
}

const isChunkPost = (method: string, url: string) => method === 'POST' && new URL(url).pathname === '/upload'

/** Counts the browser's chunk POSTs and the most that were in flight at once. */
export function trackUploads(page: Page) {
  const stats = { posts: 0, inFlight: 0, maxInFlight: 0, failed: [] as string[] }
  const isPost = (request: Request) => isChunkPost(request.method(), request.url())
  const done = (request: Request) => {
    if (isPost(request)) stats.inFlight--
  }
  page.on('request', (request) => {
    if (!isPost(request)) return
    stats.posts++
    stats.inFlight++
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
  })
  page.on('requestfinished', done)
  page.on('requestfailed', (request) => {
    if (isPost(request)) stats.failed.push(request.failure()?.errorText ?? 'unknown')
    done(request)
  })
  return stats
}

/**
 * Expected 404s: Chromium asks for /favicon.ico, which the server has not got, and the page asks
 * GET /upload/<key> whether a dropped file can be resumed (404: a new upload). Chromium logs
 * both as console errors; anything else is a failure.
 */
export const isExpected404 = (text: string) => text.includes('/favicon.ico') || /404 \(Not Found\) \(http:[^)]*\/upload\/r-/.test(text)
/** Console errors from the page, other than the expected 404s. */
export const unexpectedErrors = (errors: string[]) => errors.filter((e) => !isExpected404(e))
/** Errors the server logged as unexpected. */
export const unexpectedLogs = (logs: string[]) => logs.filter((l) => l.startsWith('unexpected error'))

/** A DevTools session on a page, with the Network domain on (needed by the helpers below). */
export async function devTools(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  return cdp
}

/**
 * Limits how fast the page can send (Chromium's own network emulation throttles request bodies),
 * so that an upload to a local server takes seconds rather than milliseconds.
 */
export async function throttleUploads(cdp: CDPSession, bytesPerSecond: number) {
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond,
  })
}

/** One chunk POST as the browser sent it. */
export interface ChunkPost {
  /** Order in which the browser started the requests (0, 1, 2, …). */
  seq: number
  requestId: string
  /** Read from the multipart body (the dz fields come before the file part); undefined until read. */
  uuid?: string
  index?: number
  /** HTTP status, once response headers arrived. */
  status?: number
  /** Chromium's error text when the request failed (connection reset, aborted, …). */
  failed?: string
  /** Why the body could not be read, if it could not. */
  unreadable?: string
}

/**
 * Records every Dropzone chunk POST of a page with its chunk index, status and failure, through
 * DevTools. Playwright's `request.postData()` is empty for file-backed bodies, but DevTools'
 * Network.getRequestPostData reads them.
 */
export function trackChunkPosts(cdp: CDPSession) {
  const posts: ChunkPost[] = []
  const byId = new Map<string, ChunkPost>()
  const reading = new Set<Promise<void>>()
  cdp.on('Network.requestWillBeSent', (event) => {
    if (!isChunkPost(event.request.method, event.request.url)) return
    const post: ChunkPost = { seq: posts.length, requestId: event.requestId }
    posts.push(post)
    byId.set(event.requestId, post)
    const read = cdp
      .send('Network.getRequestPostData', { requestId: event.requestId })
      .then((data) => {
        const body = (data as { base64Encoded?: boolean }).base64Encoded === false ? data.postData : Buffer.from(data.postData, 'base64').toString('latin1')
        const field = (name: string) => new RegExp(`name="${name}"\r\n\r\n([^\r]*)\r\n`).exec(body)?.[1]
        post.uuid = field('dzuuid')
        const index = field('dzchunkindex')
        if (index === undefined) post.unreadable = 'no dzchunkindex field'
        else post.index = Number(index)
      })
      .catch((error) => {
        post.unreadable = String(error)
      })
    reading.add(read)
    void read.finally(() => reading.delete(read))
  })
  cdp.on('Network.responseReceived', (event) => {
    const post = byId.get(event.requestId)
    if (post) post.status = event.response.status
  })
  cdp.on('Network.loadingFailed', (event) => {
    const post = byId.get(event.requestId)
    if (post) post.failed = event.errorText
  })
  return {
    posts,
    /** Waits until every body seen so far has been read. */
    async settled() {
      while (reading.size > 0) await Promise.all(reading)
    },
    /** Chunk indexes the server answered with 200 (so far as events have arrived). */
    acknowledged(): Set<number> {
      return new Set(posts.filter((p) => p.status === 200 && p.index !== undefined).map((p) => p.index!))
    },
  }
}
