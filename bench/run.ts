// `npm run bench`: Dropfold side by side with reference servers, all started here on loopback,
// measured in the same run, printed as a markdown table of absolute figures and ratios.
// Env: BENCH_SIZE (default 1G), BENCH_RUNS (default 3, median), BENCH_BIG_SIZE (default 4G, the
// one-run memory row), BENCH_ROWS (only these row ids), BENCH_QUICK=1 (32M, 256M big, 1 run).
import { Database } from 'bun:sqlite'
import type { Subprocess } from 'bun'
import { randomFillSync } from 'node:crypto'
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { clusterReport, measureClusterRows, selectedClusterRows, stopClusterRows, type ClusterResult } from './cluster.ts'
import { measureS3Rows, s3Report, selectedS3Rows, stopS3Rows } from './s3.ts'
import { CLK_TCK, cpuTicks } from './process-cpu.ts'

const ROOT = resolve(import.meta.dir, '..')
const BENCH = import.meta.dir
const BUN = process.execPath
const PASSWORD = 'bench-password-123'
const MB = 1e6
const GiB = 1024 ** 3

function parseSize(text: string, name = 'BENCH_SIZE'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (!m) throw new Error(`${name} must be a size such as 256M or 1G, got "${text}"`)
  return Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf(m[2]!.toLowerCase() || ' '))
}

const QUICK = /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '')
const SIZE = parseSize(process.env.BENCH_SIZE || (QUICK ? '32M' : '1G'))
/** The memory row's file (issue 6: "a 4 GiB upload with 8 chunks in flight"), made only for that row. */
const BIG_SIZE = parseSize(process.env.BENCH_BIG_SIZE || (QUICK ? '256M' : '4G'), 'BENCH_BIG_SIZE')
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS || (QUICK ? 1 : 3)))
/** BENCH_ROWS=dz-small,tus-8m: only these rows (and the ceilings), when working on one of them. */
const ONLY = process.env.BENCH_ROWS ? new Set(process.env.BENCH_ROWS.split(',').map((id) => id.trim())) : null
const SMALL_EACH = 100_000
const SMALL_COUNT = Math.min(SIZE >= GiB ? 1000 : 200, Math.floor(SIZE / SMALL_EACH))
const SMALL_INFLIGHT = 8
/** A client run is killed after this long (2 MB/s plus two minutes). */
const clientTimeoutMs = (bytes: number) => 120_000 + (bytes / (2 * MB)) * 1000
/** Listing row: files seeded into one folder, timed requests per view (after warm-ups). */
const LISTING_FILES = 100_000
const LISTING_REQUESTS = 20
const LISTING_WARMUPS = 2

// ---------------------------------------------------------------- processes

type Key = 'ingest' | 'dropfold' | 'naive' | 'tus-official' | 'flask'
const LABEL: Record<Key, string> = {
  ingest: 'raw ingest (Bun)',
  dropfold: '**Dropfold**',
  naive: 'naive Bun',
  'tus-official': '@tus/server',
  flask: 'Flask (seed)',
}

interface Server {
  key: Key
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  pid: number
  base: string
  dir: string
  log: string[]
}

const servers = new Map<Key, Server>()
const clients = new Set<Subprocess>()
let tmpRoot = ''

function drain(stream: ReadableStream<Uint8Array>, log: string[], onLine?: (line: string) => void) {
  const decoder = new TextDecoder()
  let pending = ''
  void (async () => {
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true })
      const lines = pending.split('\n')
      pending = lines.pop()!
      for (const line of lines) {
        log.push(line)
        if (log.length > 40) log.shift()
        onLine?.(line)
      }
    }
  })().catch(() => {})
}

async function startServer(key: Key, cmd: string[], dir: string, ready: RegExp, env: Record<string, string> = {}): Promise<Server> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, env: { ...process.env, ...env }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const log: string[] = []
  const base = await new Promise<string>((resolveBase, reject) => {
    const timer = setTimeout(() => reject(new Error(`${key} did not start within 30 s:\n${log.join('\n')}`)), 30_000)
    const onLine = (line: string) => {
      const m = ready.exec(line)
      if (m) {
        clearTimeout(timer)
        resolveBase(m[1]!.startsWith('http') ? m[1]!.replace(/\/$/, '') : `http://127.0.0.1:${m[1]}`)
      }
    }
    drain(proc.stdout, log, onLine)
    drain(proc.stderr, log, onLine)
    void proc.exited.then((code) => reject(new Error(`${key} exited with ${code}:\n${log.join('\n')}`)))
  })
  const server = { key, proc, pid: proc.pid, base, dir, log }
  servers.set(key, server)
  return server
}

async function stopAll() {
  for (const client of clients) client.kill('SIGKILL')
  await stopClusterRows()
  await stopS3Rows()
  await Promise.all(
    [...servers.values()].map(async ({ proc }) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000)
      await proc.exited
      clearTimeout(timer)
    }),
  )
  servers.clear()
  if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true })
}

/** User and kernel time together, in clock ticks. */
function cpuTotal(pid: number): number {
  const { user, kernel } = cpuTicks(pid)
  return user + kernel
}

function peakBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : Number.NaN
}

let peakResetWorks = true
function resetPeak(pid: number) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5') // resets VmHWM to the current RSS (Linux >= 4.0)
  } catch {
    peakResetWorks = false
  }
}

async function sh(cmd: string[]): Promise<{ ms: number; out: string }> {
  const started = performance.now()
  const proc = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'pipe' })
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  const ms = performance.now() - started
  if (code !== 0) throw new Error(`${cmd.join(' ')} failed (${code}): ${err}`)
  return { ms, out }
}

async function sha256File(path: string): Promise<string> {
  return (await sh(['sha256sum', path])).out.split(' ')[0]!
}

// ---------------------------------------------------------------- client runs

interface ClientOut {
  ms: number
  bytes: number
  files: number
  uploads: { key: string; expected?: string; reported?: string }[]
}

async function runClient(args: Record<string, unknown> & { size: number }): Promise<ClientOut> {
  const proc = Bun.spawn([BUN, join(BENCH, 'client.ts'), JSON.stringify(args)], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
  clients.add(proc)
  const timer = setTimeout(() => proc.kill('SIGKILL'), clientTimeoutMs(args.size))
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    const line = out.trim().split('\n').pop() ?? ''
    let json: (ClientOut & { error?: string }) | null = null
    try {
      json = JSON.parse(line)
    } catch {}
    if (!json) throw new Error(`client gave no result (exit ${proc.exitCode ?? proc.signalCode}): ${(err || out).slice(-400)}`)
    if (json.error) throw new Error(json.error.split('\n')[0])
    return json
  } finally {
    clearTimeout(timer)
    clients.delete(proc)
  }
}

// ---------------------------------------------------------------- scenarios

type Mode = 'ingest' | 'dz' | 'tus-single' | 'tus-chunks' | 'tus-concat' | 'dz-small' | 'tus-small' | 'listing'
interface Group {
  id: string
  label: string
  mode: Mode
  /** 'ms' (listing): milliseconds per request, lower is better. */
  unit: 'MB/s' | 'files/s' | 'ms'
  servers: Key[]
  opts: Record<string, unknown>
  /** References whose file ends up wrong here are expected (Flask with chunks in flight). */
  note?: string
  /** 'big': uploads the BENCH_BIG_SIZE file made just for this row instead of the test file. */
  input?: 'big'
  /** Runs of this row when not BENCH_RUNS. */
  runs?: number
}

/** The file a row uploads. */
interface Input {
  file: string
  size: number
  sha: string
}

const sizeText = (bytes: number) => (bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${+(bytes / (1024 ** 2)).toFixed(1)} MiB`)

const MiB = 1024 ** 2
const CHUNK_1MB = 1_000_000
const groups: Group[] = [
  { id: 'ingest', label: 'ceiling: raw HTTP ingest, one streamed POST', mode: 'ingest', unit: 'MB/s', servers: ['ingest'], opts: {} },
  { id: 'dz1m-1', label: 'Dropzone, 1 MB chunks, 1 in flight', mode: 'dz', unit: 'MB/s', servers: ['dropfold', 'naive', 'flask'], opts: { chunk: CHUNK_1MB, inflight: 1 } },
  { id: 'dz1m-4', label: 'Dropzone, 1 MB chunks, 4 in flight', mode: 'dz', unit: 'MB/s', servers: ['dropfold', 'naive', 'flask'], opts: { chunk: CHUNK_1MB, inflight: 4 } },
  { id: 'dz8m-1', label: 'Dropzone, 8 MiB chunks, 1 in flight', mode: 'dz', unit: 'MB/s', servers: ['dropfold', 'naive', 'flask'], opts: { chunk: 8 * MiB, inflight: 1 } },
  { id: 'dz8m-4', label: 'Dropzone, 8 MiB chunks, 4 in flight', mode: 'dz', unit: 'MB/s', servers: ['dropfold', 'naive', 'flask'], opts: { chunk: 8 * MiB, inflight: 4 } },
  { id: 'tus-single', label: 'tus, one streamed PATCH', mode: 'tus-single', unit: 'MB/s', servers: ['dropfold', 'tus-official'], opts: {} },
  { id: 'tus-8m', label: 'tus, 8 MiB PATCHes', mode: 'tus-chunks', unit: 'MB/s', servers: ['dropfold', 'tus-official'], opts: { chunk: 8 * MiB } },
  { id: 'tus-concat', label: 'tus concatenation, 3 parallel partials', mode: 'tus-concat', unit: 'MB/s', servers: ['dropfold'], opts: { parts: 3 } },
  { id: 'dz-small', label: `${SMALL_COUNT} files of 100 KB, Dropzone, ${SMALL_INFLIGHT} in flight`, mode: 'dz-small', unit: 'files/s', servers: ['dropfold', 'naive', 'flask'], opts: { count: SMALL_COUNT, each: SMALL_EACH, inflight: SMALL_INFLIGHT } },
  { id: 'tus-small', label: `${SMALL_COUNT} files of 100 KB, tus POST+PATCH, ${SMALL_INFLIGHT} in flight`, mode: 'tus-small', unit: 'files/s', servers: ['dropfold', 'tus-official'], opts: { count: SMALL_COUNT, each: SMALL_EACH, inflight: SMALL_INFLIGHT } },
  { id: 'big', label: `memory: ${sizeText(BIG_SIZE)} file, Dropzone, 8 MiB chunks, 8 in flight (1 run)`, mode: 'dz', unit: 'MB/s', servers: ['dropfold', 'naive'], opts: { chunk: 8 * MiB, inflight: 8 }, input: 'big', runs: 1 },
  { id: 'listing', label: `listing: first page of a folder with ${LISTING_FILES.toLocaleString('en-US')} files`, mode: 'listing', unit: 'ms', servers: ['dropfold'], opts: {} },
]

interface Result {
  group: Group
  key: Key
  rates: number[] // MB/s or files/s per run; for 'ms' rows, ms per request
  ms: number[]
  mbps: number[]
  runsOk: number
  runsCorrupt: number
  error?: string
  skipped?: string
  ticks: number
  bytes: number
  peak: number
}

const results: Result[] = []
const skipped: string[] = []
let fileSha = ''
let testFile = ''

function pathFor(key: Key, keyOrUrl: string): string {
  const server = servers.get(key)!
  const id = keyOrUrl.split('/').pop()!
  return join(server.dir, id)
}

/** Returns [good, corrupt] counts for one client result; removes what the reference servers wrote. */
async function verify(key: Key, group: Group, out: ClientOut, fileSha: string): Promise<{ good: number; bad: number }> {
  if (key === 'ingest') return { good: 1, bad: 0 }
  let good = 0
  let bad = 0
  const small = group.mode === 'dz-small' || group.mode === 'tus-small'
  let db: Database | null = null
  try {
    if (key === 'dropfold') db = new Database(join(servers.get('dropfold')!.dir, 'dropfold.sqlite'), { readonly: true })
    for (const upload of out.uploads) {
      const expected = small ? upload.expected! : fileSha
      let actual = upload.reported
      if (key === 'dropfold' && actual === undefined) {
        const id = upload.key.split('/').pop()!
        const row = db!.query('SELECT u.state AS state, f.sha256 AS sha256 FROM uploads u LEFT JOIN files f ON f.id = u.file_id WHERE u.id = ?').get(id) as
          | { state: string; sha256: string | null }
          | null
        actual = row?.state === 'complete' ? (row.sha256 ?? undefined) : undefined
      } else if (key !== 'dropfold') {
        const path = pathFor(key, upload.key)
        actual = small ? new Bun.CryptoHasher('sha256').update(await Bun.file(path).arrayBuffer()).digest('hex') : await sha256File(path)
        await rm(path, { force: true })
        await rm(`${path}.json`, { force: true })
      }
      if (actual === expected) good++
      else bad++
    }
  } finally {
    db?.close()
  }
  return { good: bad === 0 ? 1 : 0, bad: bad === 0 ? 0 : 1 }
}

/**
 * Each run of a small-file row sends other bytes than the runs before it (all servers of a run
 * get the same ones): a content-addressed store would otherwise find the files of its second
 * run already stored, which measures deduplication, not uploading.
 */
let smallRunsSoFar = 0
const smallWindows = new Map<string, number>()
function smallFilesWindow(group: Group, run: number, inputSize: number): number | undefined {
  const { count, each } = group.opts as { count?: number; each?: number }
  if (!count || !each) return undefined
  const key = `${group.id}:${run}`
  let window = smallWindows.get(key)
  if (window === undefined) smallWindows.set(key, (window = smallRunsSoFar++))
  const span = count * each
  const windows = Math.max(1, Math.floor(inputSize / span))
  if (smallRunsSoFar > windows) console.error(`note: only ${windows} distinct windows of small files fit in the test file; runs repeat bytes`)
  return (window % windows) * span
}

async function measureGroup(group: Group, cookie: string, input: Input) {
  const runs = group.runs ?? RUNS
  const active = group.servers.filter((key) => {
    if (servers.has(key)) return true
    return false
  })
  const rows = new Map<Key, Result>()
  for (const key of active) {
    rows.set(key, { group, key, rates: [], ms: [], mbps: [], runsOk: 0, runsCorrupt: 0, ticks: 0, bytes: 0, peak: 0 })
    resetPeak(servers.get(key)!.pid)
  }
  for (let run = 0; run < runs; run++) {
    // Rotate the order every run so no server always goes first after a quiet pause.
    const order = active.map((_, i) => active[(i + run) % active.length]!)
    for (const key of order) {
      const row = rows.get(key)!
      if (row.error) continue
      const server = servers.get(key)!
      const tag = `${group.id}-${key}-r${run}-${Math.random().toString(36).slice(2, 8)}`
      const path = key === 'dropfold' ? (group.mode.startsWith('tus') ? '/tus/' : '/upload') : key === 'tus-official' ? '/files' : '/upload'
      const args = {
        mode: group.mode, kind: key, base: server.base, path, file: input.file, size: input.size, cookie: key === 'dropfold' ? cookie : undefined, tag,
        first: smallFilesWindow(group, run, input.size), ...group.opts,
      }
      const before = cpuTotal(server.pid)
      try {
        const out = await runClient(args)
        row.ticks += cpuTotal(server.pid) - before
        row.bytes += out.bytes
        row.ms.push(out.ms)
        row.mbps.push(out.bytes / MB / (out.ms / 1000))
        row.rates.push(group.unit === 'files/s' ? out.files / (out.ms / 1000) : out.bytes / MB / (out.ms / 1000))
        const { good, bad } = await verify(key, group, out, input.sha)
        row.runsOk += good
        row.runsCorrupt += bad
      } catch (error) {
        row.error = String((error as Error).message ?? error).slice(0, 160)
      }
      process.stderr.write(`  ${group.id.padEnd(11)} ${key.padEnd(13)} run ${run + 1}/${runs}: ${row.error ? `FAILED ${row.error}` : `${row.rates.at(-1)!.toFixed(1)} ${group.unit}`}\n`)
    }
  }
  for (const [key, row] of rows) {
    row.peak = peakBytes(servers.get(key)!.pid)
    results.push(row)
  }
}

// ---------------------------------------------------------------- report helpers

const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '—')
const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—')
const find = (groupId: string, key: Key) => results.find((r) => r.group.id === groupId && r.key === key)
const usable = (r: Result | undefined) => r && !r.error && r.rates.length > 0 && r.runsCorrupt === 0
/** Flask appends in arrival order: its results only count where one chunk of a file is in flight. */
const flaskSafe = (g: Group) => g.mode === 'dz-small' || g.opts.inflight === 1
const rate = (r: Result | undefined) => (r && r.rates.length ? median(r.rates) : Number.NaN)

/** Writes `size` fresh random bytes to `path`; returns their SHA-256 (hex), hashed on the way out. */
async function createTestFile(path: string, size: number): Promise<string> {
  const block = Buffer.allocUnsafe(8 * MiB)
  const hasher = new Bun.CryptoHasher('sha256')
  const fd = openSync(path, 'w')
  try {
    for (let done = 0; done < size; done += block.length) {
      randomFillSync(block)
      const part = block.subarray(0, Math.min(block.length, size - done))
      hasher.update(part)
      for (let written = 0; written < part.length; ) written += writeSync(fd, part, written, part.length - written)
    }
  } finally {
    closeSync(fd)
  }
  return hasher.digest('hex')
}

/** Free bytes on the file system holding `path`, as `df` reports them. */
async function freeBytes(path: string): Promise<number> {
  const lines = (await sh(['df', '-Pk', path])).out.trim().split('\n')
  return Number(lines.at(-1)!.trim().split(/\s+/)[3]) * 1024
}

/**
 * Writes a fresh random file of BENCH_BIG_SIZE bytes for a memory row, only if the disk has room
 * for it and two copies (Dropfold's stored one and a reference's); null, with the reason among
 * the notes under the table, when not.
 */
async function makeBigFile(label: string): Promise<{ file: string; sha: string; remove(): Promise<void> } | null> {
  const free = await freeBytes(tmpRoot)
  // Plus headroom, as Dropfold refuses uploads that would leave less than MIN_FREE_SPACE (256 MiB) free.
  const needed = 3 * BIG_SIZE + 512 * MiB
  if (free < needed) {
    const why = `${label} skipped: ${fmt(free / GiB)} GiB free in ${tmpRoot}, it needs ${fmt(needed / GiB)} GiB (3 × ${sizeText(BIG_SIZE)} + 512 MiB); set BENCH_BIG_SIZE lower or free some space.`
    skipped.push(why)
    process.stderr.write(`  ${why}\n`)
    return null
  }
  const file = join(tmpRoot, 'big.bin')
  const remove = () => rm(file, { force: true })
  process.stderr.write(`  writing ${sizeText(BIG_SIZE)} of random bytes for "${label}" (${fmt(free / GiB)} GiB free)... `)
  const started = performance.now()
  try {
    const sha = await createTestFile(file, BIG_SIZE)
    process.stderr.write(`${fmt((performance.now() - started) / 1000)} s\n`)
    return { file, sha, remove }
  } catch (error) {
    await remove()
    const why = `${label} skipped: writing its file failed: ${String((error as Error).message ?? error).slice(0, 160)}`
    skipped.push(why)
    process.stderr.write(`failed\n  ${why}\n`)
    return null
  }
}

/** The memory row: makes the big random file (only if the disk has room), uploads it once per server, deletes it. */
async function measureBig(group: Group, cookie: string) {
  const big = await makeBigFile(group.label)
  if (!big) return
  try {
    await measureGroup(group, cookie, { file: big.file, size: BIG_SIZE, sha: big.sha })
  } finally {
    await big.remove()
  }
}

// ---------------------------------------------------------------- listing row

const LISTING_SHA = 'ab'.repeat(32)
const LISTING_BASE_TIME = Date.UTC(2024, 0, 1)
/** The same synthetic folder as tests/library/big-folder.test.ts. */
const listingName = (i: number) => `file-${String(i).padStart(6, '0')}.bin`
/** Sizes in an order unrelated to names and ids. */
const listingSize = (i: number) => (i * 7919) % 1_000_003
/** Upload times in an order unrelated to ids (some equal, so the id tie-break matters). */
const listingTime = (i: number) => LISTING_BASE_TIME + ((i * 4099) % 50_000) * 1000

interface ListingView {
  label: string
  query: string
  /** Order of file numbers 1..LISTING_FILES (ids grow with them) the server should list. */
  compare: (a: number, b: number) => number
  filter?: string
  offset?: number
}

const LISTING_VIEWS: ListingView[] = [
  { label: 'newest first (default)', query: '', compare: (a, b) => listingTime(b) - listingTime(a) || b - a },
  { label: 'largest first', query: 'sort=size', compare: (a, b) => listingSize(b) - listingSize(a) || b - a },
  { label: 'name filter "-099" (1,000 match)', query: 'sort=name&q=-099', compare: (a, b) => a - b, filter: '-099' },
  { label: 'by name, page 500 of 1000', query: 'sort=name&page=500', compare: (a, b) => a - b, offset: 49_900 },
]

/**
 * Seeds a new folder with LISTING_FILES rows straight into Dropfold's SQLite file (WAL, so the
 * running server sees them at once; like tests/library/big-folder.test.ts, all files share one
 * blob row whose bytes are never read), then times GET /folders/<id> as the admin, per view.
 */
async function measureListing(group: Group, cookie: string, dropfold: Server) {
  const started = performance.now()
  const sqlite = new Database(join(dropfold.dir, 'dropfold.sqlite'))
  let folderId: number
  try {
    sqlite.exec('PRAGMA busy_timeout = 10000')
    folderId = sqlite.transaction(() => {
      const folder = sqlite
        .query('insert into folders (parent_id, name, created_at) values (1, ?, ?) returning id')
        .get(`bench-listing-${Date.now()}`, Date.now()) as { id: number }
      sqlite.query('insert into blobs (sha256, size_bytes, ref_count, created_at) values (?, 1, 0, ?) on conflict (sha256) do nothing').run(LISTING_SHA, LISTING_BASE_TIME)
      sqlite.query('update blobs set ref_count = ref_count + ? where sha256 = ?').run(LISTING_FILES, LISTING_SHA)
      const insert = sqlite.query('insert into files (folder_id, name, size_bytes, sha256, mime_type, created_at) values (?, ?, ?, ?, ?, ?)')
      for (let i = 1; i <= LISTING_FILES; i++) insert.run(folder.id, listingName(i), listingSize(i), LISTING_SHA, 'application/octet-stream', listingTime(i))
      return folder.id
    })()
  } finally {
    sqlite.close()
  }
  process.stderr.write(`  ${group.id.padEnd(11)} seeded folder ${folderId} with ${LISTING_FILES} files in ${fmt((performance.now() - started) / 1000)} s\n`)

  const pid = dropfold.pid
  const views = LISTING_VIEWS.map((view) => {
    const ids = Array.from({ length: LISTING_FILES }, (_, k) => k + 1).filter((i) => listingName(i).includes(view.filter ?? ''))
    const page = ids.sort(view.compare).slice(view.offset ?? 0, (view.offset ?? 0) + 100).map(listingName)
    const row: Result = { group: { ...group, label: `${group.label}, ${view.label}` }, key: 'dropfold', rates: [], ms: [], mbps: [], runsOk: 0, runsCorrupt: 0, ticks: 0, bytes: 0, peak: 0 }
    return { view, first: page[0]!, last: page.at(-1)!, row }
  })
  resetPeak(pid)
  // Rounds: every view once per round, so noise from the shared machine spreads over all views.
  for (let round = 0; round < LISTING_WARMUPS + LISTING_REQUESTS; round++) {
    for (const { view, first, last, row } of views) {
      if (row.error) continue
      const url = `${dropfold.base}/folders/${folderId}${view.query ? `?${view.query}` : ''}`
      try {
        const before = cpuTotal(pid)
        const t0 = performance.now()
        const res = await fetch(url, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' })
        const body = await res.text()
        const ms = performance.now() - t0
        const ticks = cpuTotal(pid) - before
        // The page must be the folder's, with 100 file rows (one checkbox each) from the expected first to the expected last.
        const rowsShown = (body.match(/name="ids"/g) ?? []).length
        const at = body.indexOf(`>${first}<`)
        const ok = res.status === 200 && rowsShown === 100 && at >= 0 && body.indexOf(`>${last}<`) > at
        if (!ok) throw new Error(`GET ${url}: HTTP ${res.status}, ${rowsShown} file rows, ${first} ${at >= 0 ? 'shown' : 'missing'}, ${last} ${body.includes(`>${last}<`) ? 'shown' : 'missing'}`)
        if (round < LISTING_WARMUPS) continue
        row.ms.push(ms)
        row.rates.push(ms)
        row.ticks += ticks
        row.runsOk++
      } catch (error) {
        row.error = String((error as Error).message ?? error).slice(0, 160)
      }
    }
  }
  const peak = peakBytes(pid)
  for (const { view, row } of views) {
    row.peak = peak
    results.push(row)
    process.stderr.write(`  ${group.id.padEnd(11)} ${view.label.padEnd(34)} ${row.error ? `FAILED ${row.error}` : `median ${fmt(median(row.ms))} ms over ${row.ms.length} requests`}\n`)
  }
}

// ---------------------------------------------------------------- main

async function main() {
  const startedAt = new Date()
  const uptimeBefore = (await sh(['uptime'])).out.trim()
  tmpRoot = await mkdtemp(join(tmpdir(), 'dropfold-bench-'))
  testFile = join(tmpRoot, 'test.bin')
  process.stderr.write(`bench: ${SIZE} bytes x ${RUNS} run(s), temp dir ${tmpRoot}\n`)
  const writtenSha = await createTestFile(testFile, SIZE)

  // Disk and hash ceilings.
  const ddMs: number[] = []
  const shaMs: number[] = []
  const sslMs: number[] = []
  // coreutils sha256sum may not use the CPU's SHA instructions; openssl (like Bun's hasher) does.
  const hasOpenssl = Bun.spawnSync(['openssl', 'version'], { stderr: 'pipe' }).exitCode === 0
  for (let run = 0; run < RUNS; run++) {
    const out = join(tmpRoot, 'dd.out')
    ddMs.push((await sh(['dd', `if=${testFile}`, `of=${out}`, 'bs=8M', 'conv=fdatasync', 'status=none'])).ms)
    await rm(out, { force: true })
    const sha = await sh(['sha256sum', testFile])
    shaMs.push(sha.ms)
    fileSha = sha.out.split(' ')[0]!
    if (hasOpenssl) {
      const ssl = await sh(['openssl', 'dgst', '-sha256', '-r', testFile])
      if (ssl.out.split(' ')[0] !== fileSha) throw new Error('openssl and sha256sum disagree')
      sslMs.push(ssl.ms)
    }
  }
  if (fileSha !== writtenSha) throw new Error('sha256sum disagrees with the SHA-256 of the bytes written')
  const sslMbps = SIZE / MB / (median(sslMs) / 1000)
  const ddMbps = SIZE / MB / (median(ddMs) / 1000)
  const shaMbps = SIZE / MB / (median(shaMs) / 1000)
  process.stderr.write(`  dd fdatasync ${fmt(ddMbps)} MB/s, sha256sum ${fmt(shaMbps)} MB/s, openssl ${fmt(sslMbps)} MB/s\n`)

  // Servers.
  const dir = async (name: string) => {
    const path = join(tmpRoot, name)
    await mkdir(path, { recursive: true })
    return path
  }
  await startServer('ingest', [BUN, join(BENCH, 'ingest-server.ts')], '', /^LISTENING (\d+)/)
  const dropfold = await startServer('dropfold', [BUN, 'src/main.ts'], await dir('dropfold'), /running at (http:\/\/\S+)/, {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: join(tmpRoot, 'dropfold'),
    ADMIN_PASSWORD: PASSWORD,
    MAX_CHUNK_SIZE: '64M',
    // As `npm start` runs it (the references run with Bun's defaults).
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
  })
  await startServer('naive', [BUN, join(BENCH, 'naive-server.ts'), await dir('naive')], join(tmpRoot, 'naive'), /^LISTENING (\d+)/)
  await startServer('tus-official', ['node', join(BENCH, 'tus-official.mjs'), await dir('tus')], join(tmpRoot, 'tus'), /^LISTENING (\d+)/)
  const flaskCheck = Bun.spawnSync(['python3', '-c', 'import flask'], { stderr: 'pipe' })
  if (flaskCheck.exitCode === 0) {
    await startServer('flask', ['python3', join(BENCH, 'flask_seed.py'), await dir('flask')], join(tmpRoot, 'flask'), /^LISTENING (\d+)/)
  } else {
    skipped.push('Flask rows skipped: `python3 -c "import flask"` failed (install with `apt-get install python3-flask`).')
  }
  skipped.push('@tus/server concatenation skipped: @tus/file-store does not implement the concatenation extension.')

  const login = await fetch(`${dropfold.base}/login`, { method: 'POST', body: new URLSearchParams({ password: PASSWORD }), redirect: 'manual' })
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('dropfold_session='))
  if (!cookie) throw new Error(`Dropfold login failed: HTTP ${login.status}`)

  for (const group of groups) {
    if (group.mode === 'dz-small' || group.mode === 'tus-small') {
      if (SMALL_COUNT < 1) continue
    }
    if (ONLY && !ONLY.has(group.id) && group.mode !== 'ingest') continue
    if (group.mode === 'listing') await measureListing(group, cookie, dropfold)
    else if (group.input === 'big') await measureBig(group, cookie)
    else await measureGroup(group, cookie, { file: testFile, size: SIZE, sha: fileSha })
  }

  // Issue 15's rows (opt-in): PostgreSQL, one and three instances, nginx; a SQLite instance beside them.
  const rowContext = { runClient, tmpRoot, testFile, size: SIZE, sha: fileSha, runs: RUNS, bigSize: BIG_SIZE, makeBigFile, notes: skipped }
  const clusterResults: ClusterResult[] = await measureClusterRows(rowContext, selectedClusterRows(ONLY))
  // Issue 16's rows (opt-in): Dropfold on S3 (Ceph RGW) beside a direct upload and @tus/s3-store.
  const s3Results = await measureS3Rows(rowContext, selectedS3Rows(ONLY))

  // Outside all measurements: download one tus-stored file through Dropfold and check it end to end.
  let downloadCheck = 'not run'
  {
    const db = new Database(join(dropfold.dir, 'dropfold.sqlite'), { readonly: true })
    const row = db.query("SELECT file_id AS id FROM uploads WHERE protocol = 'tus' AND state = 'complete' AND total_bytes = ? ORDER BY rowid DESC LIMIT 1").get(SIZE) as { id: number } | null
    db.close()
    if (row) {
      const res = await fetch(`${dropfold.base}/files/${row.id}/download`, { headers: { cookie } })
      const hasher = new Bun.CryptoHasher('sha256')
      for await (const chunk of res.body!) hasher.update(chunk)
      downloadCheck = hasher.digest('hex') === fileSha ? 'download matches' : 'DOWNLOAD MISMATCH'
    }
  }
  const uptimeAfter = (await sh(['uptime'])).out.trim()

  // ------------------------------------------------------------ report
  const ingest = find('ingest', 'ingest')
  const ingestMbps = rate(ingest)
  const ceiling = Math.min(ingestMbps, ddMbps)
  const refs: Key[] = ['naive', 'tus-official', 'flask']
  const lines: string[] = []
  const p = (s = '') => lines.push(s)
  p(`## Dropfold benchmark, ${startedAt.toISOString()}`)
  p()
  p(`File ${fmt(SIZE / MiB, 0)} MiB, ${RUNS} run(s) per row (median; the memory row: one run of a ${sizeText(BIG_SIZE)} file), nproc ${navigator.hardwareConcurrency}, Bun ${Bun.version}, node ${(await sh(['node', '--version'])).out.trim()}.`)
  p(`Load before: \`${uptimeBefore}\``)
  p(`Load after:  \`${uptimeAfter}\``)
  p()
  p(`Ceiling = min(raw ingest ${fmt(ingestMbps)} MB/s, dd fdatasync ${fmt(ddMbps)} MB/s) = **${fmt(ceiling)} MB/s**. MB = 10^6 bytes.`)
  p()
  p('| row | server | throughput | × ceiling | × naive Bun | × @tus/server | × Flask | peak RSS MB | CPU s/GiB | check |')
  p('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  p(`| ceiling: dd bs=8M conv=fdatasync | dd | ${fmt(ddMbps)} MB/s | ${ratio(ddMbps / ceiling)} | | | | | | |`)
  p(`| ceiling: sha256sum | sha256sum | ${fmt(shaMbps)} MB/s | ${ratio(shaMbps / ceiling)} | | | | | | |`)
  if (hasOpenssl) p(`| ceiling: openssl dgst -sha256 | openssl | ${fmt(sslMbps)} MB/s | ${ratio(sslMbps / ceiling)} | | | | | | |`)
  for (const r of results) {
    const perSec = rate(r)
    const mbps = median(r.mbps)
    const cells: string[] = []
    for (const ref of refs) {
      const other = find(r.group.id, ref)
      if (r.key !== 'dropfold' || !other) cells.push('')
      else if (!usable(other)) cells.push(other.error ? 'ref failed' : 'ref corrupt')
      else if (ref === 'flask' && !flaskSafe(r.group)) cells.push('n/a (unsafe)')
      else cells.push(ratio(perSec / rate(other)))
    }
    const perRequest = r.group.unit === 'ms'
    const check = r.error
      ? `FAILED: ${r.error}`
      : r.runsCorrupt > 0
        ? `**corrupt** (${r.runsCorrupt}/${r.runsCorrupt + r.runsOk} runs)`
        : `ok ${r.runsOk}/${r.runsOk}${perRequest ? ' requests' : ''}`
    const throughput = perRequest
      ? `${fmt(perSec)} ms (min ${fmt(Math.min(...r.ms))}, max ${fmt(Math.max(...r.ms))})`
      : r.group.unit === 'files/s'
        ? `${fmt(perSec)} files/s (${fmt(mbps)} MB/s)`
        : `${fmt(perSec)} MB/s`
    const toCeiling = r.group.unit === 'MB/s' ? ratio(mbps / ceiling) : ''
    // A listing row moves no bytes: its CPU cell is server CPU per request instead.
    const cpu = perRequest
      ? r.runsOk > 0 ? `${fmt((r.ticks / CLK_TCK / r.runsOk) * 1000)} ms/request` : '—'
      : r.bytes > 0 ? fmt(r.ticks / CLK_TCK / (r.bytes / GiB), 2) : '—'
    p(`| ${r.group.label} | ${LABEL[r.key]} | ${throughput} | ${toCeiling} | ${cells.join(' | ')} | ${fmt(r.peak / MB, 0)} | ${cpu} | ${check} |`)
  }
  p()
  const single = find('tus-single', 'dropfold')
  const singleMs = single ? median(single.ms) : Number.NaN
  const ingestMs = ingest ? median(ingest.ms) : Number.NaN
  p(`Finalisation: Dropfold's tus single-PATCH upload (create, stream, fdatasync, SHA-256, store) takes ${fmt(singleMs, 0)} ms, ` +
    `${ratio(singleMs / ingestMs)} the raw ingest time (${fmt(ingestMs, 0)} ms); sha256sum of the file alone takes ${fmt(median(shaMs), 0)} ms` +
    (hasOpenssl ? `, openssl dgst -sha256 ${fmt(median(sslMs), 0)} ms` : '') + `, dd with fdatasync ${fmt(median(ddMs), 0)} ms.`)
  p(`End-to-end check: a tus-uploaded file downloaded via GET /files/<id>/download: ${downloadCheck}.`)
  for (const note of skipped) p(`- ${note}`)
  if (!peakResetWorks) p('- Peak RSS could not be reset between rows (/proc/<pid>/clear_refs); figures are cumulative since server start.')
  p()

  // Targets.
  const mark = (ok: boolean | null) => (ok === null ? 'N/A' : ok ? 'PASS' : 'FAIL')
  const singleRatio = rate(single) / ceiling
  p('| target | result | status |')
  p('| --- | --- | --- |')
  p(`| single large upload ≥ 70% of ceiling | tus single PATCH ${fmt(rate(single))} MB/s = ${fmt(singleRatio * 100, 0)}% | ${mark(usable(single) ? singleRatio >= 0.7 : null)} |`)
  const dz84 = find('dz8m-4', 'dropfold')
  const dz84Ratio = rate(dz84) / ceiling
  p(`| single large upload ≥ 70% of ceiling | Dropzone 8 MiB × 4 in flight ${fmt(rate(dz84))} MB/s = ${fmt(dz84Ratio * 100, 0)}% | ${mark(usable(dz84) ? dz84Ratio >= 0.7 : null)} |`)
  // What finalising adds: the single PATCH's time beyond the durable write of the same bytes.
  const finalisingMs = singleMs - median(ddMs)
  p(`| finalisation ≤ 1.2× sha256sum, or near zero | tus single PATCH ${fmt(singleMs, 0)} ms − dd ${fmt(median(ddMs), 0)} ms = ${fmt(finalisingMs, 0)} ms vs sha256sum ${fmt(median(shaMs), 0)} ms (${ratio(finalisingMs / median(shaMs))}) | ${mark(usable(single) ? finalisingMs <= 1.2 * median(shaMs) : null)} |`)
  const vs = (ref: Key) =>
    results
      .filter((r) => r.key === 'dropfold')
      .map((r) => ({ r, other: find(r.group.id, ref) }))
      .filter(({ other }) => usable(other))
      .map(({ r, other }) => ({ label: r.group.label, x: usable(r) ? rate(r) / rate(other) : 0 }))
  const flask = vs('flask').filter((f) => flaskSafe(groups.find((g) => g.label === f.label)!))
  const flaskMin = flask.length ? Math.min(...flask.map((f) => f.x)) : Number.NaN
  p(`| ≥ 2× Flask (its sequential rows and small files) | min ${ratio(flaskMin)} over ${flask.length} rows${flask.filter((f) => f.x < 2).map((f) => `; ${f.label}: ${ratio(f.x)}`).join('')} | ${mark(flask.length ? flaskMin >= 2 : null)} |`)
  const shared = [...vs('tus-official'), ...vs('naive').map((v) => ({ ...v, label: `${v.label} vs naive` }))]
  const slower = shared.filter((s) => s.x <= 1)
  const sharedMin = shared.length ? Math.min(...shared.map((s) => s.x)) : Number.NaN
  p(`| faster than @tus/server and naive Bun on every shared row | min ${ratio(sharedMin)} over ${shared.length} rows${slower.map((s) => `; slower: ${s.label} ${ratio(s.x)}`).join('')} | ${mark(shared.length ? slower.length === 0 : null)} |`)
  // Issue 6: "peak memory under 200 MB during the 4 GiB upload": the memory row's Dropfold peak.
  const bigGroup = groups.find((g) => g.id === 'big')!
  const big = find('big', 'dropfold')
  const bigResult = big
    ? `Dropfold VmHWM ${fmt(big.peak / MB, 0)} MB${usable(big) ? '' : ' (the upload failed)'}`
    : skipped.some((note) => note.startsWith(bigGroup.label))
      ? 'skipped (see the note above)'
      : 'not run (BENCH_ROWS)'
  p(`| peak memory < 200 MB during the ${sizeText(BIG_SIZE)} upload (memory row) | ${bigResult} | ${mark(big && usable(big) ? big.peak < 200 * MB : null)} |`)
  // And on every row Dropfold ran: upload rows, the memory row, the listing (its views share one peak).
  const peakByRow = new Map<string, number>()
  for (const r of results.filter((x) => x.key === 'dropfold')) peakByRow.set(r.group.id, r.peak)
  const peaks = [...peakByRow].map(([id, peak]) => ({ id, peak }))
  const maxPeak = peaks.length ? Math.max(...peaks.map((x) => x.peak)) : Number.NaN
  const over = peaks.filter((x) => x.peak >= 200 * MB)
  p(
    `| peak memory < 200 MB on every row | Dropfold max VmHWM ${fmt(maxPeak / MB, 0)} MB over ${peaks.length} rows${peaks.length ? ` (${peaks.map((x) => x.id).join(', ')})` : ''}` +
      (over.length ? `; over: ${over.map((x) => `${x.id} ${fmt(x.peak / MB, 0)} MB`).join(', ')}` : '') +
      ` | ${mark(peaks.length ? maxPeak < 200 * MB : null)} |`,
  )
  p()
  lines.push(...clusterReport(clusterResults))
  lines.push(...s3Report(s3Results))
  console.log(lines.join('\n'))
}

let stopping = false
const onSignal = (signal: string) => {
  if (stopping) return
  stopping = true
  process.stderr.write(`bench: ${signal}, cleaning up\n`)
  void stopAll().finally(() => process.exit(130))
}
process.on('SIGINT', () => onSignal('SIGINT'))
process.on('SIGTERM', () => onSignal('SIGTERM'))

try {
  await main()
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  stopping = true
  await stopAll()
}
