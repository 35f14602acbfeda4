import { afterEach, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnServer, type ServerProcess } from '../helpers/processes.ts'
import { login, startTestServer, TEST_PASSWORD } from '../helpers/server.ts'

/** A tus final upload of large partials is answered at once and assembled in the background, surviving a crash. */

const TUS = { 'tus-resumable': '1.0.0' }
const MIB = 1024 * 1024
type Fetch = (path: string, init?: RequestInit) => Promise<Response>

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Bytes that differ from one partial to the next, so that a part out of order shows in the hash. */
const bytesOf = (mib: number, seed: number) => new Uint8Array(mib * MIB).map((_, i) => (i * 7 + seed) % 251)
const sha256 = (...pieces: Uint8Array[]) => {
  const hasher = new Bun.CryptoHasher('sha256')
  for (const piece of pieces) hasher.update(piece)
  return hasher.digest('hex')
}

async function finishedPartial(fetch: Fetch, bytes: Uint8Array) {
  const created = await fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-length': String(bytes.length), 'upload-concat': 'partial' } })
  expect(created.status).toBe(201)
  const location = created.headers.get('location')!
  const patched = await fetch(location, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, body: bytes as Uint8Array<ArrayBuffer> })
  expect(patched.status).toBe(204)
  return location
}

const postFinal = (fetch: Fetch, partials: string[]) =>
  fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-concat': `final;${partials.join(' ')}`, 'upload-metadata': `filename ${btoa('joined.bin')}` } })

/** HEADs the upload until it is a file (bounded), returning every offset seen on the way and the file's URL. */
async function untilFile(fetch: Fetch, location: string, onOffset: (offset: number) => boolean | void = () => {}) {
  const offsets: number[] = []
  for (let attempt = 0; attempt < 6000; attempt++) {
    const head = await fetch(location, { method: 'HEAD', headers: TUS })
    expect(head.status).toBe(200)
    const offset = Number(head.headers.get('upload-offset'))
    offsets.push(offset)
    const fileUrl = head.headers.get('dropfold-file-url')
    if (fileUrl) return { offsets, fileUrl }
    if (onOffset(offset)) return { offsets, fileUrl: null }
    await Bun.sleep(10)
  }
  throw new Error(`not a file after 6000 looks; offsets ${offsets.slice(-5)}`)
}

async function downloadedSha256(fetch: Fetch, fileUrl: string) {
  const answer = await fetch(fileUrl)
  expect(answer.status).toBe(200)
  return sha256(new Uint8Array(await answer.arrayBuffer()))
}

test('a final upload of large partials is answered before its bytes are assembled, and HEAD follows the assembly to the complete file', async () => {
  const server = await startTestServer({ MAX_CHUNK_SIZE: '512M' })
  cleanups.push(() => server.stop())
  const parts = [bytesOf(24, 1), bytesOf(24, 2), bytesOf(1, 3)]
  const partials = []
  for (const part of parts) partials.push(await finishedPartial(server.fetch, part))
  const final = await postFinal(server.fetch, partials)
  expect(final.status).toBe(201)
  // Answered before a single byte was recorded: the copy runs after the answer.
  expect(final.headers.get('upload-offset')).toBe('0')
  expect(final.headers.get('dropfold-file-url')).toBeNull()
  const { offsets, fileUrl } = await untilFile(server.fetch, final.headers.get('location')!)
  expect(offsets).toEqual([...offsets].sort((a, b) => a - b))
  expect(offsets.at(-1)).toBe(49 * MIB)
  expect(await downloadedSha256(server.fetch, fileUrl!)).toBe(sha256(...parts))
  // The partials are used up.
  for (const partial of partials) expect((await server.fetch(partial, { method: 'HEAD', headers: TUS })).status).toBe(404)
  expect(server.logs.filter((line) => line.includes('assembly'))).toEqual([])
})

test('a server killed in the middle of an assembly finishes it after a restart, with the right bytes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropfold-concat-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const launch = async () => {
    const child: ServerProcess = spawnServer({ DATA_DIR: dataDir, MAX_CHUNK_SIZE: '512M' })
    cleanups.push(async () => {
      child.proc.kill('SIGKILL')
      await child.proc.exited
    })
    const url = await child.started
    const cookie = await login(url, TEST_PASSWORD)
    const fetchAt: Fetch = (path, init = {}) => fetch(new URL(path, url), { ...init, headers: { ...(init.headers as Record<string, string>), cookie } })
    return { child, fetch: fetchAt }
  }
  const first = await launch()
  const parts = [bytesOf(128, 1), bytesOf(128, 2)]
  const partials = []
  for (const part of parts) partials.push(await finishedPartial(first.fetch, part))
  const final = await postFinal(first.fetch, partials)
  expect(final.status).toBe(201)
  const location = final.headers.get('location')!
  // Killed once part of the bytes are assembled, not all.
  const cut = await untilFile(first.fetch, location, (offset) => offset > 0 && offset < 256 * MIB)
  expect(cut.fileUrl).toBeNull()
  first.child.proc.kill('SIGKILL')
  await first.child.proc.exited
  const second = await launch()
  const { offsets, fileUrl } = await untilFile(second.fetch, location)
  expect(offsets[0]).toBeGreaterThan(0)
  expect(offsets.at(-1)).toBe(256 * MIB)
  expect(await downloadedSha256(second.fetch, fileUrl!)).toBe(sha256(...parts))
  for (const partial of partials) expect((await second.fetch(partial, { method: 'HEAD', headers: TUS })).status).toBe(404)
})
