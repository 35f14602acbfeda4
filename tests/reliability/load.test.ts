import { expect, test } from 'bun:test'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import type { TestServer } from '../helpers/server.ts'
import { createLinkOverHttp, newDataDir, openDatabase, peakRssBytes, percentile, removeDataDir, sampleHealthz, spawnServer, storeProblems, type ServerProcess } from './harness.ts'

/**
 * 200 small uploads and 50 chunked ones at the same moment, all through one drop link, against
 * `bun src/main.ts` in a process of its own: every file is stored once with its SHA-256, the
 * server keeps answering /healthz (its p99 is printed), and its peak RSS stays under 300 MB.
 */

const KB = 1024
const MB = 1024 * KB
const SMALL_UPLOADS = 200
const SMALL_BYTES = 100 * KB
const CHUNKED_UPLOADS = 50
const CHUNKED_BYTES = 4 * MB
const CHUNK_BYTES = 1 * MB
const PEAK_RSS_LIMIT_BYTES = 300 * 1000 * 1000
/** Generous: the point is that /healthz keeps answering on a small, shared machine. */
const HEALTHZ_P99_LIMIT_MS = 5000

interface Source {
  name: string
  data: Uint8Array
  sha256: string
}

const sources = (prefix: string, count: number, size: number): Source[] =>
  Array.from({ length: count }, (_, i) => {
    const data = randomData(size)
    return { name: `${prefix}-${i}.bin`, data, sha256: sha256(data) }
  })

/** The link as a visitor sees it: `fetch('/upload')` goes to the link's upload endpoint with the visitor's cookie. */
async function visitorOf(server: ServerProcess, linkPath: string): Promise<Pick<TestServer, 'fetch'>> {
  const page = await fetch(server.url + linkPath)
  await page.arrayBuffer()
  expect(page.status).toBe(200)
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ')
  return {
    fetch(path, init = {}) {
      const headers = new Headers(init.headers)
      headers.set('cookie', cookie)
      return fetch(server.url + linkPath + path, { ...init, headers, redirect: 'manual' })
    },
  }
}

/** Answers 503 with Retry-After seen (a server past its memory budget may ask clients to come back). */
let busyAnswers = 0
const MAX_ATTEMPTS = 20

/** Sends a request again, as told, while the server answers 503 with Retry-After. */
async function honouringRetryAfter(send: () => Promise<Response>): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await send()
    const seconds = Number(response.headers.get('retry-after'))
    if (response.status !== 503 || !(seconds >= 0) || attempt === MAX_ATTEMPTS) return response
    busyAnswers++
    await response.arrayBuffer()
    await Bun.sleep(Math.min(seconds, 5) * 1000)
  }
}

/** A whole file in one plain multipart request (a script, or a small file from a page). */
async function uploadWhole(visitor: Pick<TestServer, 'fetch'>, source: Source): Promise<string> {
  const response = await honouringRetryAfter(() => {
    const form = new FormData()
    form.append('file', new Blob([source.data as Uint8Array<ArrayBuffer>]), source.name)
    return visitor.fetch('/upload', { method: 'POST', body: form, headers: { accept: 'application/json' } })
  })
  const body = await response.text()
  if (response.status !== 200) return `${source.name}: ${response.status} ${body}`
  const stored = JSON.parse(body).file as { sha256: string } | null
  return stored?.sha256 === source.sha256 ? '' : `${source.name}: stored as ${body}`
}

/** Dropzone's chunked protocol, one chunk after another. */
async function uploadChunked(visitor: Pick<TestServer, 'fetch'>, source: Source): Promise<string> {
  const uuid = `load-${crypto.randomUUID()}`
  const count = Math.ceil(source.data.length / CHUNK_BYTES)
  let last = ''
  for (let index = 0; index < count; index++) {
    const response = await honouringRetryAfter(() =>
      sendChunk(visitor, chunkFields(uuid, source.data.length, CHUNK_BYTES, index), chunkOf(source.data, CHUNK_BYTES, index), { fileName: source.name }),
    )
    last = await response.text()
    if (response.status !== 200) return `${source.name} chunk ${index}: ${response.status} ${last}`
  }
  const result = JSON.parse(last) as { upload: { state: string }; file: { sha256: string } | null }
  return result.upload.state === 'complete' && result.file?.sha256 === source.sha256 ? '' : `${source.name}: ended ${last}`
}

test(
  `${SMALL_UPLOADS} small and ${CHUNKED_UPLOADS} chunked uploads at once through a drop link are each stored once, /healthz keeps answering and memory stays under 300 MB`,
  async () => {
    const dataDir = newDataDir()
    const server = await spawnServer(dataDir)
    try {
      const link = await createLinkOverHttp(server, { maxFileSize: '8M', maxTotalSize: '1G', maxFiles: '1000' })
      const visitor = await visitorOf(server, link.path)
      const small = sources('small', SMALL_UPLOADS, SMALL_BYTES)
      const chunked = sources('chunked', CHUNKED_UPLOADS, CHUNKED_BYTES)

      const healthz = await sampleHealthz(server.url)
      const started = performance.now()
      const refusals = (await Promise.all([...small.map((s) => uploadWhole(visitor, s)), ...chunked.map((s) => uploadChunked(visitor, s))])).filter(Boolean)
      const elapsedMs = performance.now() - started
      const { latenciesMs, failures } = await healthz.stop()
      const peakRss = peakRssBytes(server.pid)
      const p99 = percentile(latenciesMs, 99)
      console.log(
        `load test: ${SMALL_UPLOADS} × ${SMALL_BYTES / KB} KB and ${CHUNKED_UPLOADS} × ${CHUNKED_BYTES / MB} MB in ${(elapsedMs / 1000).toFixed(1)} s; ` +
          `/healthz p50 ${percentile(latenciesMs, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...latenciesMs).toFixed(1)} ms over ${latenciesMs.length} samples; ` +
          `peak RSS ${(peakRss / 1e6).toFixed(0)} MB; ${busyAnswers} answers 503 (retried after Retry-After)`,
      )
      await server.stop()

      expect(refusals).toEqual([])
      const db = openDatabase(dataDir)
      const stored = db.query('select name, sha256 from files order by name').all() as { name: string; sha256: string }[]
      db.close()
      const expected = [...small, ...chunked].map((s) => ({ name: s.name, sha256: s.sha256 })).sort((a, b) => (a.name < b.name ? -1 : 1))
      expect(stored).toEqual(expected)
      expect(storeProblems(dataDir)).toEqual([])
      expect(failures).toEqual([])
      expect(latenciesMs.length).toBeGreaterThan(0)
      expect(p99).toBeLessThan(HEALTHZ_P99_LIMIT_MS)
      expect(peakRss).toBeLessThan(PEAK_RSS_LIMIT_BYTES)
    } finally {
      await server.kill()
      removeDataDir(dataDir)
    }
  },
  60_000,
)
