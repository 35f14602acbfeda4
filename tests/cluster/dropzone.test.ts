import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { closeBrowser, launchBrowser, newContext, unexpectedErrors, CHROMIUM } from '../helpers/browser.ts'
import { describeNeeding } from '../helpers/services.ts'
import { NGINX } from '../helpers/cluster.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { clusterPerTest, uploadInBrowser } from './helpers.ts'

/** The upload page in real Chromium with stock Dropzone, through the deployed nginx configuration. */

const MiB = 1024 * 1024
const start = clusterPerTest()

describeNeeding([NGINX, CHROMIUM], 'Dropzone in a browser through nginx', () => {
  let browser: Browser | undefined
  let tempDir: string | undefined
  beforeAll(async () => {
    browser = await launchBrowser()
    tempDir = mkdtempSync(join(tmpdir(), 'dropfold-cluster-e2e-'))
  })
  afterAll(async () => {
    await closeBrowser(browser)
    if (tempDir) rmSync(tempDir, { recursive: true, force: true })
  })

  test('a person signs in through nginx and uploads a file in parallel chunks; each chunk went through nginx; the download is byte-identical', async () => {
    const cluster = await start({ env: { CHUNK_SIZE: '1M' } })
    const size = 24 * MiB + 4321
    const chunks = Math.ceil(size / MiB)
    const data = randomData(size)
    const path = join(tempDir!, 'through nginx.bin')
    writeFileSync(path, data)
    const context = await newContext(browser!)
    try {
      const { watch, uploads, href } = await uploadInBrowser(context, cluster.url, path)

      expect(uploads.failed).toEqual([])
      expect(uploads.posts).toBe(chunks)
      expect(uploads.maxInFlight).toBeGreaterThanOrEqual(2)
      // nginx passed every chunk POST to the instance, and the instance took each one.
      const isChunk = (e: { method: string; path: string }) => e.method === 'POST' && e.path === '/upload'
      const logged = await cluster.logged(isChunk, chunks)
      expect(logged.map((e) => e.status)).toEqual(Array(chunks).fill(200))
      expect(cluster.instances[0]!.requests(isChunk)).toBe(chunks)
      expect(logged.reduce((sum, e) => sum + e.requestLength, 0)).toBeGreaterThan(size)

      const response = await cluster.fetch(href)
      expect(response.status).toBe(200)
      const downloaded = new Uint8Array(await response.arrayBuffer())
      expect(downloaded.length).toBe(size)
      expect(sha256(downloaded)).toBe(sha256(data))
      expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
      expect(unexpectedErrors(watch.errors)).toEqual([])
    } finally {
      await context.close().catch(() => {})
    }
  })
})
