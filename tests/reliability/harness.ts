import { Database } from 'bun:sqlite'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { sha256 } from '../helpers/data.ts'
import { blobPath, login, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'

/**
 * The reliability tests run Dropfold the way it runs in production: `bun src/main.ts` as a child
 * process, so it can be killed with SIGKILL and its memory read from /proc.
 */

const PROJECT_ROOT = resolve(import.meta.dir, '../..')
/** A server that has not said where it listens by then is stuck. */
const START_TIMEOUT_MS = 30_000

export interface ServerProcess extends Pick<TestServer, 'url' | 'dataDir' | 'cookie' | 'fetch'> {
  pid: number
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string
  /** SIGKILL: no chance to finish anything. Resolves once the process is gone. */
  kill(): Promise<void>
  /** SIGTERM, the way an operator stops it. Resolves once the process is gone. */
  stop(): Promise<void>
}

export const newDataDir = () => mkdtempSync(join(tmpdir(), 'dropfold-reliability-'))
export const removeDataDir = (dataDir: string) => rmSync(dataDir, { recursive: true, force: true })

/** Starts `bun src/main.ts` on a free port with `dataDir` and signs in as the admin. */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = Bun.spawn([process.execPath, 'src/main.ts'], {
    cwd: PROJECT_ROOT,
    env: { PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_PASSWORD: TEST_PASSWORD, UV_THREADPOOL_SIZE: '16', ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let output = ''
  const listening = Promise.withResolvers<string>()
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder()
    for await (const piece of stream) {
      output += decoder.decode(piece, { stream: true })
      const url = /running at (http:\/\/\S+)/.exec(output)?.[1]
      if (url) listening.resolve(url)
    }
  }
  void collect(child.stdout)
  void collect(child.stderr)
  void child.exited.then((code) => listening.reject(new Error(`the server exited (${code}) before listening:\n${output}`)))
  const timer = setTimeout(() => {
    child.kill('SIGKILL')
    listening.reject(new Error(`the server did not listen within ${START_TIMEOUT_MS} ms:\n${output}`))
  }, START_TIMEOUT_MS)
  const url = await listening.promise.finally(() => clearTimeout(timer))
  const ended = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await child.exited
  }
  const server: ServerProcess = {
    url,
    dataDir,
    pid: child.pid,
    cookie: '',
    output: () => output,
    fetch(path, init = {}) {
      const headers = new Headers(init.headers)
      if (server.cookie && !headers.has('cookie')) headers.set('cookie', server.cookie)
      return fetch(url + path, { ...init, headers, redirect: 'manual' })
    },
    kill: () => ended('SIGKILL'),
    stop: () => ended('SIGTERM'),
  }
  try {
    server.cookie = await login(url, TEST_PASSWORD)
  } catch (error) {
    await server.kill()
    throw error
  }
  return server
}

/** The most memory the process has held (VmHWM), in bytes. */
export function peakRssBytes(pid: number): number {
  const kib = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  if (!kib) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Number(kib) * 1024
}

/** Opens the server's database read-only (the server may be stopped, killed or running). */
export function openDatabase(dataDir: string): Database {
  return new Database(join(dataDir, 'dropfold.sqlite'), { readonly: true })
}

/**
 * What must hold in the store whatever happened to the server: every blob counts exactly the
 * file rows that point at it and its bytes are on disk under its hash, every file's blob exists.
 * Returns the problems found (empty when all holds).
 */
export function storeProblems(dataDir: string): string[] {
  const db = openDatabase(dataDir)
  try {
    const problems: string[] = []
    const blobs = db
      .query('select b.sha256, b.size_bytes as size, b.ref_count as refCount, (select count(*) from files f where f.sha256 = b.sha256) as fileRows from blobs b')
      .all() as { sha256: string; size: number; refCount: number; fileRows: number }[]
    for (const blob of blobs) {
      const name = blob.sha256.slice(0, 12)
      if (blob.refCount !== blob.fileRows) problems.push(`blob ${name}: ref_count ${blob.refCount}, but ${blob.fileRows} file rows point at it`)
      const path = blobPath({ dataDir }, blob.sha256)
      if (!existsSync(path)) {
        problems.push(`blob ${name}: no file at ${path}`)
        continue
      }
      if (statSync(path).size !== blob.size) problems.push(`blob ${name}: ${statSync(path).size} bytes on disk, ${blob.size} recorded`)
      else if (sha256(readFileSync(path)) !== blob.sha256) problems.push(`blob ${name}: the bytes on disk do not hash to its name`)
    }
    const strays = db.query('select f.id, f.sha256 from files f left join blobs b on b.sha256 = f.sha256 where b.sha256 is null').all() as { id: number; sha256: string }[]
    for (const file of strays) problems.push(`file ${file.id}: its blob ${file.sha256.slice(0, 12)} has no row`)
    const misfits = db.query('select f.id from files f join blobs b on b.sha256 = f.sha256 where f.size_bytes != b.size_bytes').all() as { id: number }[]
    for (const file of misfits) problems.push(`file ${file.id}: its size differs from its blob's`)
    const twins = db.query('select upload_id as uploadId, count(*) as n from files where upload_id is not null group by upload_id having n > 1').all() as { uploadId: string; n: number }[]
    for (const twin of twins) problems.push(`upload ${twin.uploadId}: ${twin.n} file rows`)
    return problems
  } finally {
    db.close()
  }
}

/** A small, fast PRNG (mulberry32): a seed replays the same data, order and crash point. */
export function seededRandom(seed: number) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    /** A whole number in [min, max]. */
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    /** `size` bytes of seeded noise. */
    bytes(size: number) {
      const words = new Uint32Array(Math.ceil(size / 4))
      for (let i = 0; i < words.length; i++) words[i] = (next() * 4294967296) >>> 0
      return new Uint8Array(words.buffer, 0, size)
    },
    shuffle<T>(items: T[]): T[] {
      const out = [...items]
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1))
        ;[out[i], out[j]] = [out[j]!, out[i]!]
      }
      return out
    },
  }
}
export type SeededRandom = ReturnType<typeof seededRandom>

/** The p-th percentile (0–100) of some numbers. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN
}

/** `/healthz` asked every ~20 ms by a process of its own (see healthz-sampler.ts), from its first answer until `stop()`. */
export async function sampleHealthz(url: string) {
  const sampler = Bun.spawn([process.execPath, join(import.meta.dir, 'healthz-sampler.ts'), url], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' })
  const reader = sampler.stdout.getReader()
  const decoder = new TextDecoder()
  let text = ''
  const readUntil = async (done: () => boolean) => {
    while (!done()) {
      const { value, done: ended } = await reader.read()
      if (ended) return
      text += decoder.decode(value, { stream: true })
    }
  }
  await readUntil(() => text.includes('ready\n'))
  if (!text.includes('ready\n')) throw new Error(`the /healthz sampler ended before its first answer: ${text}`)
  return {
    async stop(): Promise<{ latenciesMs: number[]; failures: string[] }> {
      await sampler.stdin.end()
      await readUntil(() => false)
      await sampler.exited
      return JSON.parse(text.slice(text.indexOf('ready\n') + 'ready\n'.length))
    },
  }
}

/**
 * Creates a drop link through the admin's form and reads its address from the page the form
 * leads to (as the admin would copy it), so it works whatever the database keeps of the token.
 */
export async function createLinkOverHttp(server: ServerProcess, fields: Record<string, string>): Promise<{ path: string }> {
  const created = await server.fetch('/links', { method: 'POST', body: new URLSearchParams({ folder: '1', label: 'Load test', ...fields }) })
  let text = await created.text()
  const location = created.headers.get('location')
  if (created.status === 303 && location) {
    // The address may be shown once, in the message the next page carries (a flash cookie).
    const flash = created.headers.getSetCookie().map((cookie) => cookie.split(';')[0]!)
    text += await (await server.fetch(location, { headers: { cookie: [server.cookie, ...flash].join('; ') } })).text()
  } else if (created.status !== 200) {
    throw new Error(`creating a link answered ${created.status}: ${text}`)
  }
  const token = /\/d\/([A-Za-z0-9_-]{20,})/.exec(text)?.[1]
  if (!token) throw new Error(`no link address after creating a link (${created.status} ${location ?? ''})`)
  return { path: `/d/${token}` }
}
