import { afterEach } from 'bun:test'
import { readdirSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import type { BrowserContext } from 'playwright-core'
import { Upload, type UploadOptions } from 'tus-js-client'
import { signIn, trackUploads, watchPage } from '../helpers/browser.ts'
import { startCluster, type Cluster, type ClusterOptions } from '../helpers/cluster.ts'
import { suiteDatabase } from '../helpers/postgres.ts'
import { S3 } from '../helpers/s3.ts'
import type { Service } from '../helpers/services.ts'
import { recordExchanges, run } from '../helpers/tus.ts'

/** For a test file whose tests each start their own cluster: stopped after the test whatever happened. */
export function clusterPerTest() {
  let cluster: Cluster | undefined
  afterEach(async () => {
    await cluster?.stop()
    cluster = undefined
  })
  return async (options: ClusterOptions = {}) => {
    cluster = await startCluster(options)
    return cluster
  }
}

export interface PlainResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/**
 * One HTTP request from a chosen loopback address (127.0.0.0/8 is all ours), so that the address
 * the server records can be told apart from nginx's own (127.0.0.1). `body` pieces are written
 * one after the other, each after `gapMs` (a slow client; `onLastPiece` is called just before the
 * last is written, once `untilLastPiece` has resolved, if given); a closed connection is answered
 * as status 0 with the error in `body`.
 */
export function requestFrom(
  localAddress: string,
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: Uint8Array[]; gapMs?: number; onLastPiece?: () => void; untilLastPiece?: () => Promise<unknown> },
): Promise<PlainResponse> {
  const target = new URL(url)
  const pieces = init.body ?? []
  const length = pieces.reduce((sum, piece) => sum + piece.length, 0)
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: target.hostname,
        port: Number(target.port),
        path: target.pathname + target.search,
        method: init.method,
        localAddress,
        headers: { ...init.headers, ...(pieces.length > 0 ? { 'content-length': String(length) } : {}) },
      },
      (response) => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (text: string) => (body += text))
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
        response.on('error', (error) => resolve({ status: 0, headers: {}, body: String(error) }))
      },
    )
    request.on('error', (error) => resolve({ status: 0, headers: {}, body: String(error) }))
    void (async () => {
      for (const [i, piece] of pieces.entries()) {
        if (i > 0 && init.gapMs) await Bun.sleep(init.gapMs)
        if (i > 0 && i === pieces.length - 1) await init.untilLastPiece?.()
        if (request.destroyed) return
        if (i === pieces.length - 1) init.onLastPiece?.()
        request.write(piece)
      }
      request.end()
    })()
  })
}

/** A multipart body as a browser or `curl -F` sends it, as bytes and its content type. */
export async function multipartBody(form: FormData) {
  const response = new Response(form)
  // Read before the body: Bun forgets it once the body has been consumed.
  const contentType = response.headers.get('content-type')!
  return { bytes: new Uint8Array(await response.arrayBuffer()), contentType }
}

/**
 * One fresh PostgreSQL database for the suite this is called in (created before its first test,
 * dropped after its last); `env()` is what makes every instance of a cluster use it. Call it in a
 * suite that needs PostgreSQL (`describeNeeding([..., POSTGRES], ...)`).
 */
export function sharedDatabase() {
  const database = suiteDatabase()
  return {
    get url() {
      return database.url
    },
    env: (): Record<string, string> => ({ DATABASE_URL: database.url }),
  }
}

/** The id of the file called `name` in the root folder, from the folder listing (filtered by that name). */
export async function fileIdNamed(cluster: Pick<Cluster, 'fetch'>, name: string): Promise<string | undefined> {
  const listing = await (await cluster.fetch(`/folders/1/view?q=${encodeURIComponent(name)}`)).text()
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`href="/files/(\\d+)"[^>]*>${escaped}<`).exec(listing)?.[1]
}

/**
 * The id of the file named `name` once it is stored: a tus final upload over 16 MiB is answered
 * (and the client done) before its partials are assembled in the background. Bounded.
 */
export async function storedFileNamed(cluster: Pick<Cluster, 'fetch'>, name: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const id = await fileIdNamed(cluster, name)
    if (id) return id
    if (Date.now() > deadline) throw new Error(`no file named ${name} was stored within ${timeoutMs} ms`)
    await Bun.sleep(100)
  }
}

/** The bytes a file downloads as through `cluster` (nginx), checked to be a 200. */
export async function download(cluster: Pick<Cluster, 'fetch'>, fileId: number | string): Promise<Uint8Array> {
  const response = await cluster.fetch(`/files/${fileId}/download`)
  if (response.status !== 200) throw new Error(`GET /files/${fileId}/download answered ${response.status}`)
  return new Uint8Array(await response.arrayBuffer())
}

/** Starts a tus upload and aborts it (without terminating it) once `fraction` of its bytes went out. */
export async function uploadAbortedAt(fraction: number, data: Buffer, options: UploadOptions) {
  const record = recordExchanges()
  const { promise: aborted, resolve } = Promise.withResolvers<void>()
  let aborting = false
  const upload: Upload = new Upload(data, {
    ...options,
    ...record.hooks,
    onProgress(sent) {
      if (aborting || sent < fraction * data.length) return
      aborting = true
      void upload.abort().then(resolve)
    },
  })
  void run(upload).catch(() => {})
  await aborted
  return { upload, exchanges: record.exchanges }
}

/** Resumes the upload of `data` found in the URL storage of `options` with a fresh Upload, and waits until it is done. */
export async function resumeStored(data: Buffer, options: UploadOptions) {
  const record = recordExchanges()
  const upload = new Upload(data, { ...options, ...record.hooks })
  const [previous] = await upload.findPreviousUploads()
  if (!previous) throw new Error('tus-js-client found no previous upload to resume')
  await run(upload, previous)
  return { upload, exchanges: record.exchanges }
}

/**
 * In a fresh page of `context`: signs in through `url`, chooses the file at `path` in the upload
 * area, and waits for Dropzone's success link (its href is the download).
 */
export async function uploadInBrowser(context: BrowserContext, url: string, path: string, timeoutMs = 50_000) {
  const page = await context.newPage()
  const watch = watchPage(page)
  await signIn(page, url)
  const uploads = trackUploads(page)
  await page.setInputFiles('input.dz-hidden-input', path)
  const link = page.locator('.dz-preview.dz-success .dz-status a')
  const refusal = page.locator('.dz-preview.dz-error .dz-error-message')
  await link.or(refusal).first().waitFor({ timeout: timeoutMs })
  if (await refusal.count()) throw new Error(`the upload failed in the page: ${await refusal.first().textContent()}`)
  return { page, watch, uploads, href: (await link.getAttribute('href'))! }
}

/** The local ports of the TCP connections process `pid` has open to `port` (read from `ss`, as root or as the process's user). */
export async function connectionsOf(pid: number, port: number): Promise<number[]> {
  const ss = Bun.spawn(['ss', '-tnpH', 'state', 'established', `( dport = :${port} )`], { stdout: 'pipe', stderr: 'ignore' })
  const text = await new Response(ss.stdout).text()
  await ss.exited
  return text
    .split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => Number(/:(\d+)\s+\S+:\d+\s/.exec(line)?.[1]))
    .filter((local) => Number.isInteger(local))
}

/**
 * The storages the cluster scenarios run on, each with what it needs beyond the scenario's own
 * services: one DATA_DIR shared by every instance, or S3 with a DATA_DIR of each instance's own
 * (nothing shared but PostgreSQL and the bucket). A suite is written once, in a loop over these.
 */
export const CLUSTER_STORAGES: { storage: 'local' | 's3'; name: string; needs: Service[] }[] = [
  { storage: 'local', name: 'one shared DATA_DIR', needs: [] },
  { storage: 's3', name: 'an S3 bucket and a DATA_DIR each', needs: [S3] },
]

/**
 * What the cluster's storage holds: `contents`, the stored copies of file contents (blob files
 * on the local disk; in the bucket, the objects holding a blob's bytes: adopted uploads' objects
 * and blobs written whole), and `staged`, what is left of unfinished uploads.
 */
export async function storedCopies(cluster: Cluster): Promise<{ contents: number; staged: number }> {
  if (cluster.bucket) {
    const objects = await cluster.bucket.objects()
    return {
      contents: objects.filter((o) => o.key.startsWith('objects/') || (o.key.startsWith('blobs/') && o.size > 0)).length,
      staged: objects.filter((o) => o.key.startsWith('staging/')).length + (await cluster.bucket.multipartUploads()).length,
    }
  }
  const files = (dir: string): string[] => {
    try {
      return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
    } catch {
      return []
    }
  }
  // Blob files are named by their SHA-256 (the blob directory also holds a LAYOUT marker).
  const blobs = files(join(cluster.dataDir, 'blobs')).filter((path) => /\/[0-9a-f]{64}$/.test(path))
  return { contents: blobs.length, staged: files(join(cluster.dataDir, 'staging')).length }
}
