// Issue 15's rows of `npm run bench`: Dropfold on PostgreSQL, one instance and three behind nginx,
// each beside a SQLite instance measured in the same run. Opt-in (BENCH_PG=1, or their ids in
// BENCH_ROWS): they start a private PostgreSQL cluster (.ci/services/postgres.sh, durable
// defaults: fsync and synchronous_commit on) and nginx with the deployed configuration
// (tests/helpers/cluster.ts, as the cluster tests run it).
import { Database } from 'bun:sqlite'
import { SQL } from 'bun'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { nginxMissing, startCluster, type Cluster } from '../tests/helpers/cluster.ts'
import { spawnServer } from '../tests/helpers/processes.ts'
import { login, TEST_PASSWORD } from '../tests/helpers/server.ts'
import { CLK_TCK, cpuTicks } from './process-cpu.ts'

const ROOT = resolve(import.meta.dir, '..')
const MB = 1e6
const GiB = 1024 ** 3
const MiB = 1024 ** 2
const SMALL_COUNT = 1000
const SMALL_EACH = 100_000

export const CLUSTER_ROW_IDS = ['pg-dz8m-4', 'pg-small', 'pg-big'] as const
type RowId = (typeof CLUSTER_ROW_IDS)[number]

/** What run.ts lends these rows. */
export interface ClusterContext {
  runClient(args: Record<string, unknown> & { size: number }): Promise<{ ms: number; bytes: number; files: number; uploads: { key: string; expected?: string; reported?: string }[] }>
  tmpRoot: string
  testFile: string
  size: number
  sha: string
  runs: number
  bigSize: number
  /** Writes the memory row's file when there is room; null (with the reason pushed to notes) when not. */
  makeBigFile(label: string): Promise<{ file: string; sha: string; remove(): Promise<void> } | null>
  notes: string[]
}

type SetupId = 'sqlite' | 'pg-1' | 'pg-1-nginx' | 'pg-3-nginx'
const SETUP_LABEL: Record<SetupId, string> = {
  sqlite: 'SQLite, 1 instance',
  'pg-1': 'PostgreSQL, 1 instance',
  'pg-1-nginx': 'PostgreSQL, 1 instance behind nginx',
  'pg-3-nginx': 'PostgreSQL, 3 instances behind nginx',
}

interface Setup {
  id: SetupId
  base: string
  cookie: string
  /** The Dropfold processes. */
  pids: number[]
  /** nginx's master (its worker is its child), when behind nginx. */
  nginxPid?: number
  /** The database this setup's instances use (PostgreSQL), or the SQLite file. */
  database: { pg: string } | { sqlite: string }
}

interface Row {
  id: RowId
  label: string
  mode: 'dz' | 'dz-small' | 'tus-single'
  opts: Record<string, unknown>
  setups: SetupId[]
  big?: boolean
}

/** What every row of a setup adds up over its runs (these rows' and the S3 rows' Totals extend it). */
export interface RunTotals {
  rates: number[]
  ok: number
  corrupt: number
  error?: string
  bytes: number
}

interface Totals extends RunTotals {
  uploads: number
  chunks: number
  instanceTicks: number
  nginxTicks: number
  pgTicks: number
  statements: number
  rows: number
  statementWal: number
  wal: number
  rchar: number
  /** The same per instance, in the order of the setup's pids. */
  rcharEach: number[]
  peak: number
  /** Calls per statement text (PostgreSQL, one instance reached directly): where the round trips go. */
  byQuery: Map<string, number>
}

// ---------------------------------------------------------------- processes and counters

function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name))
    } catch {} // gone meanwhile
  }
  return out
}

/** CPU ticks of a process and its children now alive (PostgreSQL's backends, nginx's worker). */
function treeTicks(pid: number | undefined): number {
  if (pid === undefined) return 0
  let sum = 0
  for (const p of [pid, ...childrenOf(pid)]) {
    try {
      const { user, kernel } = cpuTicks(p)
      sum += user + kernel
    } catch {}
  }
  return sum
}

export const ticksOf = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuTicks(pid).user + cpuTicks(pid).kernel, 0)

/** Bytes the process passed through read()/pread() (files, pipes; not sockets, which Bun reads with recv). */
const rcharOf = (pids: number[]) => pids.reduce((sum, pid) => sum + Number(/rchar:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0), 0)

export const peakOf = (pids: number[]) => Math.max(...pids.map((pid) => Number(/VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024))
export const resetPeaks = (pids: number[]) => pids.forEach((pid) => writeFileSync(`/proc/${pid}/clear_refs`, '5'))

interface Postgres {
  url: string
  dir: string
  postmaster: number
  admin: SQL
}

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'

async function startPostgres(): Promise<Postgres> {
  const started = Bun.spawnSync(['bash', join(ROOT, '.ci/services/postgres.sh'), 'start'], { stderr: 'pipe' })
  if (started.exitCode !== 0) throw new Error(`PostgreSQL did not start: ${started.stderr.toString().slice(-400)}`)
  const out = started.stdout.toString()
  const dir = /PG_TEST_DIR=(\S+)/.exec(out)![1]!
  const url = /TEST_DATABASE_URL=(\S+)/.exec(out)![1]!
  const postmaster = Number(readFileSync(join(dir, 'data/postmaster.pid'), 'utf8').split('\n')[0])
  const admin = new SQL(url, { max: 1 })
  await admin.unsafe('create extension if not exists pg_stat_statements')
  return { url, dir, postmaster, admin }
}

async function stopPostgres(pg: Postgres) {
  await pg.admin.close().catch(() => {})
  Bun.spawnSync(['bash', join(ROOT, '.ci/services/postgres.sh'), 'stop', pg.dir], { stderr: 'pipe' })
}

async function createDatabase(pg: Postgres, name: string): Promise<string> {
  await pg.admin.unsafe(`create database ${name}`)
  const url = new URL(pg.url)
  url.pathname = `/${name}`
  return url.toString()
}

/** Statements, rows and WAL bytes pg_stat_statements counted for one database, and the cluster's WAL position. */
async function pgCounters(pg: Postgres, database: string) {
  const [row] = await pg.admin.unsafe(
    `select coalesce(sum(calls), 0)::text as calls, coalesce(sum(rows), 0)::text as rows, coalesce(sum(wal_bytes), 0)::text as wal,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text as lsn
     from pg_stat_statements where dbid = (select oid from pg_database where datname = $1)`,
    [database],
  )
  return { statements: Number(row.calls), rows: Number(row.rows), statementWal: Number(row.wal), wal: Number(row.lsn) }
}

/** Calls so far per statement text in one database. */
async function callsByQuery(pg: Postgres, database: string): Promise<Map<string, number>> {
  const rows = await pg.admin.unsafe(
    `select query, sum(calls)::text as calls from pg_stat_statements where dbid = (select oid from pg_database where datname = $1) group by query`,
    [database],
  )
  return new Map(rows.map((row: { query: string; calls: string }) => [row.query.replace(/\s+/g, ' '), Number(row.calls)]))
}

// ---------------------------------------------------------------- rows

function rowsFor(ctx: ClusterContext): Row[] {
  const all: SetupId[] = ['sqlite', 'pg-1', 'pg-1-nginx', 'pg-3-nginx']
  return [
    { id: 'pg-dz8m-4', label: 'Dropzone, 8 MiB chunks, 4 in flight', mode: 'dz', opts: { chunk: 8 * MiB, inflight: 4 }, setups: all },
    { id: 'pg-small', label: `${SMALL_COUNT} files of 100 KB, Dropzone, 8 in flight`, mode: 'dz-small', opts: { count: SMALL_COUNT, each: SMALL_EACH, inflight: 8 }, setups: all },
    { id: 'pg-big', label: `memory: ${ctx.bigSize / GiB} GiB file, tus one streamed PATCH (1 run)`, mode: 'tus-single', opts: {}, setups: ['sqlite', 'pg-1'], big: true },
    { id: 'pg-big', label: `memory: ${ctx.bigSize / GiB} GiB file, Dropzone, 8 MiB chunks, 4 in flight (1 run)`, mode: 'dz', opts: { chunk: 8 * MiB, inflight: 4 }, setups: ['sqlite', 'pg-1'], big: true },
  ]
}

/** Which opt-in rows of `ids` were asked for: all of them when the variable `all` is 1, else those BENCH_ROWS names. */
export function selectedOptIn(all: string, ids: readonly string[], only: Set<string> | null): Set<string> {
  if (/^(1|true|yes)$/i.test(process.env[all] ?? '')) return new Set(ids)
  return new Set(ids.filter((id) => only?.has(id)))
}

/** Which of these rows were asked for: BENCH_PG=1 all of them, else those BENCH_ROWS names. */
export const selectedClusterRows = (only: Set<string> | null) => selectedOptIn('BENCH_PG', CLUSTER_ROW_IDS, only)

const cleanups: (() => Promise<unknown>)[] = []
/** Stops everything these rows started (run.ts calls it on every exit). */
export async function stopClusterRows() {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
}

/** Why these rows cannot run here, or null. */
function missingServices(): string | null {
  const missing = [nginxMissing(), existsSync(join(PG_BIN, 'initdb')) ? null : `PostgreSQL's initdb was not found in ${PG_BIN} (apt-get install postgresql-15, or set PG_BIN)`].filter(Boolean)
  return missing.length ? missing.join('; ') : null
}

async function startSetups(ctx: ClusterContext, pg: Postgres): Promise<Map<SetupId, Setup>> {
  const env = { MAX_CHUNK_SIZE: '64M', UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' }
  const setups = new Map<SetupId, Setup>()
  // SQLite: one fresh instance of its own, as the main table's Dropfold runs.
  const sqliteDir = mkdtempSync(join(ctx.tmpRoot, 'sqlite-'))
  const sqlite = spawnServer({ ...env, DATA_DIR: sqliteDir })
  cleanups.push(async () => (sqlite.proc.kill('SIGKILL'), await sqlite.proc.exited))
  const sqliteUrl = await sqlite.started
  setups.set('sqlite', { id: 'sqlite', base: sqliteUrl, cookie: await login(sqliteUrl, TEST_PASSWORD), pids: [sqlite.proc.pid], database: { sqlite: join(sqliteDir, 'dropfold.sqlite') } })
  // One instance on PostgreSQL, reached directly and through nginx (one database and DATA_DIR).
  const one: Cluster = await startCluster({ instances: 1, env: { ...env, DATABASE_URL: await createDatabase(pg, 'bench_one') } })
  cleanups.push(one.stop)
  const instance = one.instances[0]!
  setups.set('pg-1', { id: 'pg-1', base: instance.url, cookie: one.cookie, pids: [instance.pid], database: { pg: 'bench_one' } })
  setups.set('pg-1-nginx', { id: 'pg-1-nginx', base: one.url, cookie: one.cookie, pids: [instance.pid], nginxPid: one.nginxPid, database: { pg: 'bench_one' } })
  const three: Cluster = await startCluster({ instances: 3, env: { ...env, DATABASE_URL: await createDatabase(pg, 'bench_three') } })
  cleanups.push(three.stop)
  setups.set('pg-3-nginx', { id: 'pg-3-nginx', base: three.url, cookie: three.cookie, pids: three.instances.map((i) => i.pid), nginxPid: three.nginxPid, database: { pg: 'bench_three' } })
  return setups
}

const RECORDED_SHA_SQL = 'SELECT u.state AS state, f.sha256 AS sha256 FROM uploads u LEFT JOIN files f ON f.id = u.file_id WHERE u.id = '

/** The SHA-256 a Dropfold on SQLite recorded for a tus upload (its URL), once complete. */
export function sqliteRecordedSha(file: string, key: string): string | undefined {
  const db = new Database(file, { readonly: true })
  try {
    const row = db.query(`${RECORDED_SHA_SQL}?`).get(key.split('/').pop()!) as { state: string; sha256: string | null } | null
    return row?.state === 'complete' ? (row.sha256 ?? undefined) : undefined
  } finally {
    db.close()
  }
}

/** The SHA-256 Dropfold recorded for a tus upload (the client only learns it for Dropzone). */
async function recordedSha(setup: Setup, pg: Postgres, key: string): Promise<string | undefined> {
  const id = key.split('/').pop()!
  const sql = RECORDED_SHA_SQL
  if ('sqlite' in setup.database) return sqliteRecordedSha(setup.database.sqlite, key)
  const url = new URL(pg.url)
  url.pathname = `/${setup.database.pg}`
  const db = new SQL(url.toString(), { max: 1 })
  try {
    const [row] = await db.unsafe(`${sql}$1`, [id])
    return row?.state === 'complete' ? (row.sha256 ?? undefined) : undefined
  } finally {
    await db.close()
  }
}

// ---------------------------------------------------------------- measuring

export interface ClusterResult {
  row: Row
  setup: SetupId
  totals: Totals
}

/**
 * The file a row uploads: the test file, or for a memory row (`big`) a file of BENCH_BIG_SIZE
 * written now (remove it after the row). Null, with the reason in ctx.notes, when the row cannot
 * run: no room for the big file, or a small-file row on a test file too small to cut its files from.
 */
export async function rowInput(ctx: ClusterContext, row: { label: string; big?: boolean }, small: boolean, rows: string) {
  if (small && ctx.size < SMALL_COUNT * SMALL_EACH) {
    ctx.notes.push(`${row.label} (${rows}) skipped: BENCH_SIZE is under the ${(SMALL_COUNT * SMALL_EACH) / MB} MB its files are cut from.`)
    return null
  }
  if (!row.big) return { input: { file: ctx.testFile, size: ctx.size, sha: ctx.sha }, big: null }
  const big = await ctx.makeBigFile(row.label)
  return big ? { input: { file: big.file, size: ctx.bigSize, sha: big.sha }, big } : null
}

/** Runs the selected rows; returns their results (empty when skipped, with the reason in ctx.notes). */
export async function measureClusterRows(ctx: ClusterContext, selected: Set<string>): Promise<ClusterResult[]> {
  if (selected.size === 0) {
    ctx.notes.push('PostgreSQL and nginx rows (issue 15) not run: they are opt-in, `BENCH_PG=1` or `BENCH_ROWS=pg-dz8m-4,pg-small,pg-big`.')
    return []
  }
  const missing = missingServices()
  if (missing) {
    ctx.notes.push(`PostgreSQL and nginx rows skipped: ${missing}.`)
    process.stderr.write(`  PostgreSQL and nginx rows skipped: ${missing}\n`)
    return []
  }
  const pg = await startPostgres()
  cleanups.push(() => stopPostgres(pg))
  const setups = await startSetups(ctx, pg)
  const results: ClusterResult[] = []
  // Small files: each run on one database gets other bytes than the runs before it there (pg-1
  // and pg-1-nginx share one), or it would find them stored: deduplication, not uploading.
  const windowsUsed = new Map<string, number>()
  const smallWindow = (database: string, size: number) => {
    const windows = Math.max(1, Math.floor(size / (SMALL_COUNT * SMALL_EACH)))
    const used = windowsUsed.get(database) ?? 0
    windowsUsed.set(database, used + 1)
    if (used >= windows) ctx.notes.push(`Small files on ${database}: only ${windows} distinct sets of files fit in the test file; run ${used + 1} repeats one (deduplicated). Use a larger BENCH_SIZE or fewer BENCH_RUNS.`)
    return (used % windows) * SMALL_COUNT * SMALL_EACH
  }
  for (const row of rowsFor(ctx).filter((r) => selected.has(r.id))) {
    const chosen = await rowInput(ctx, row, row.mode === 'dz-small', 'PostgreSQL rows')
    if (!chosen) continue
    const { input, big } = chosen
    try {
      const runs = row.big ? 1 : ctx.runs
      const totals = new Map<SetupId, Totals>()
      for (const id of row.setups) {
        totals.set(id, { rates: [], ok: 0, corrupt: 0, bytes: 0, uploads: 0, chunks: 0, instanceTicks: 0, nginxTicks: 0, pgTicks: 0, statements: 0, rows: 0, statementWal: 0, wal: 0, rchar: 0, rcharEach: [], peak: 0, byQuery: new Map() })
        resetPeaks(setups.get(id)!.pids)
      }
      for (let run = 0; run < runs; run++) {
        const order = row.setups.map((_, i) => row.setups[(i + run) % row.setups.length]!)
        for (const id of order) {
          const t = totals.get(id)!
          if (t.error) continue
          const setup = setups.get(id)!
          const database = 'pg' in setup.database ? setup.database.pg : null
          const first = row.mode === 'dz-small' ? smallWindow(database ?? 'sqlite', input.size) : undefined
          const before = {
            instance: ticksOf(setup.pids), nginx: treeTicks(setup.nginxPid), pg: treeTicks(pg.postmaster), rchar: setup.pids.map((pid) => rcharOf([pid])),
            counters: database ? await pgCounters(pg, database) : null,
            calls: id === 'pg-1' ? await callsByQuery(pg, 'bench_one') : null,
          }
          try {
            const out = await ctx.runClient({
              mode: row.mode, kind: 'dropfold', base: setup.base, path: row.mode === 'tus-single' ? '/tus/' : '/upload', file: input.file, size: input.size,
              cookie: setup.cookie, tag: `${row.id}-${id}-r${run}-${Math.random().toString(36).slice(2, 8)}`, first, ...row.opts,
            })
            t.instanceTicks += ticksOf(setup.pids) - before.instance
            t.nginxTicks += treeTicks(setup.nginxPid) - before.nginx
            t.pgTicks += treeTicks(pg.postmaster) - before.pg
            setup.pids.forEach((pid, i) => {
              const read = rcharOf([pid]) - before.rchar[i]!
              t.rchar += read
              t.rcharEach[i] = (t.rcharEach[i] ?? 0) + read
            })
            if (database && before.counters) {
              const after = await pgCounters(pg, database)
              t.statements += after.statements - before.counters.statements
              t.rows += after.rows - before.counters.rows
              t.statementWal += after.statementWal - before.counters.statementWal
              t.wal += after.wal - before.counters.wal
            }
            if (before.calls) {
              for (const [query, calls] of await callsByQuery(pg, 'bench_one')) {
                const delta = calls - (before.calls.get(query) ?? 0)
                if (delta > 0) t.byQuery.set(query, (t.byQuery.get(query) ?? 0) + delta)
              }
            }
            t.bytes += out.bytes
            t.uploads += out.uploads.length
            t.chunks += row.mode === 'dz' ? Math.ceil(input.size / (row.opts.chunk as number)) : row.mode === 'dz-small' ? out.files : 1
            t.rates.push(row.mode === 'dz-small' ? out.files / (out.ms / 1000) : out.bytes / MB / (out.ms / 1000))
            let good = true
            for (const upload of out.uploads) {
              const expected = upload.expected ?? input.sha
              const actual = upload.reported ?? (await recordedSha(setup, pg, upload.key))
              if (actual !== expected) good = false
            }
            if (good) t.ok++
            else t.corrupt++
          } catch (error) {
            t.error = String((error as Error).message ?? error).slice(0, 160)
          }
          process.stderr.write(`  ${row.id.padEnd(11)} ${id.padEnd(13)} run ${run + 1}/${runs}: ${t.error ? `FAILED ${t.error}` : `${t.rates.at(-1)!.toFixed(1)} ${row.mode === 'dz-small' ? 'files/s' : 'MB/s'}`}\n`)
        }
      }
      for (const id of row.setups) {
        const t = totals.get(id)!
        t.peak = peakOf(setups.get(id)!.pids)
        results.push({ row, setup: id, totals: t })
      }
    } finally {
      await big?.remove()
    }
  }
  return results
}

// ---------------------------------------------------------------- report

export const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1]! : (s[(s.length >> 1) - 1]! + s[s.length >> 1]!) / 2
}
export const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '—')

/** The rows' table and their targets, as markdown lines. */
export function clusterReport(results: ClusterResult[]): string[] {
  if (results.length === 0) return []
  const lines: string[] = []
  const p = (s = '') => lines.push(s)
  const find = (row: Row, setup: SetupId) => results.find((r) => r.row === row && r.setup === setup)
  const usable = (r: ClusterResult | undefined) => !!r && !r.totals.error && r.totals.rates.length > 0 && r.totals.corrupt === 0
  const rate = (r: ClusterResult | undefined) => (r ? median(r.totals.rates) : Number.NaN)
  p('### PostgreSQL and several instances (issue 15)')
  p()
  p('Server CPU: Dropfold = all its instances together, nginx = master and worker, PostgreSQL = postmaster and every backend (`/proc/<pid>/stat`, utime + stime). ' +
    'Statements: `pg_stat_statements` calls in that database during the row (BEGIN and COMMIT count as statements; the driver sends one statement per round trip, so this is the round-trip count), ' +
    'with the rows they returned or changed and the WAL they wrote; WAL total: `pg_current_wal_lsn()` moved (checkpoints included). ' +
    'Bytes read: `rchar` of the instances (`/proc/<pid>/io`: file reads, the SHA-256 read-back among them; sockets are read with recv and do not count).')
  p()
  p('| row | setup | throughput | × SQLite | Dropfold CPU s/GiB | nginx CPU s/GiB | PostgreSQL CPU s/GiB | CPU ms per upload (Dropfold / nginx / PG) | statements per chunk | rows per chunk | WAL KB per upload (statements / total) | bytes read per upload | peak RSS MB (max instance) | check |')
  p('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  for (const r of results) {
    const t = r.totals
    const small = r.row.mode === 'dz-small'
    const base = find(r.row, 'sqlite')
    const perGiB = (ticks: number) => (t.bytes > 0 ? fmt(ticks / CLK_TCK / (t.bytes / GiB), 2) : '—')
    const perUpload = (ticks: number) => fmt((ticks / CLK_TCK / t.uploads) * 1000, 2)
    const pgSetup = r.setup !== 'sqlite'
    const check = t.error ? `FAILED: ${t.error}` : t.corrupt ? `**corrupt** (${t.corrupt}/${t.corrupt + t.ok} runs)` : `ok ${t.ok}/${t.ok}`
    p(`| ${r.row.label} | ${SETUP_LABEL[r.setup]} | ${fmt(rate(r))} ${small ? 'files/s' : 'MB/s'} | ${r.setup === 'sqlite' || !usable(base) ? '' : `${(rate(r) / rate(base)).toFixed(2)}×`} | ` +
      `${perGiB(t.instanceTicks)} | ${r.setup.endsWith('nginx') ? perGiB(t.nginxTicks) : ''} | ${pgSetup ? perGiB(t.pgTicks) : ''} | ` +
      `${small ? `${perUpload(t.instanceTicks)} / ${r.setup.endsWith('nginx') ? perUpload(t.nginxTicks) : '–'} / ${pgSetup ? perUpload(t.pgTicks) : '–'}` : ''} | ` +
      `${pgSetup ? fmt(t.statements / t.chunks, 2) : ''} | ${pgSetup ? fmt(t.rows / t.chunks, 2) : ''} | ` +
      `${pgSetup ? `${fmt(t.statementWal / t.uploads / 1024)} / ${fmt(t.wal / t.uploads / 1024)}` : ''} | ${fmt(t.rchar / t.uploads / MB, 2)} MB${t.rcharEach.length > 1 ? ` (${t.rcharEach.map((x) => fmt(x / t.uploads / MB, 0)).join(' + ')})` : ''} | ${fmt(t.peak / MB, 0)} | ${check} |`)
  }
  p()
  for (const r of results.filter((x) => x.setup === 'pg-1' && x.totals.byQuery.size > 0)) {
    const t = r.totals
    p(`Statements per chunk, ${r.row.label}, ${SETUP_LABEL[r.setup]} (${t.chunks} chunks, ${t.uploads} uploads):`)
    for (const [query, calls] of [...t.byQuery].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
      p(`- ${fmt(calls / t.chunks, 2)}: \`${query.length > 150 ? `${query.slice(0, 150)}…` : query}\``)
    }
    p()
  }
  const mark = (ok: boolean | null) => (ok === null ? 'N/A' : ok ? 'PASS' : 'FAIL')
  p('| target | result | status |')
  p('| --- | --- | --- |')
  for (const row of [...new Set(results.map((r) => r.row))].filter((r) => !r.big)) {
    const sqlite = find(row, 'sqlite')
    const one = find(row, 'pg-1')
    const oneNginx = find(row, 'pg-1-nginx')
    const three = find(row, 'pg-3-nginx')
    const x = rate(one) / rate(sqlite)
    if (row.id === 'pg-dz8m-4') p(`| 1 instance on PostgreSQL ≥ 80% of SQLite, large files | ${row.label}: ${fmt(x * 100, 0)}% | ${mark(usable(one) && usable(sqlite) ? x >= 0.8 : null)} |`)
    else p(`| (reported) 1 instance on PostgreSQL vs SQLite, small files | ${row.label}: ${fmt(x * 100, 0)}% | |`)
    const y = rate(three) / rate(oneNginx)
    p(`| 3 instances behind nginx not slower than 1 behind nginx | ${row.label}: ${y.toFixed(2)}× | ${mark(usable(three) && usable(oneNginx) ? y >= 1 : null)} |`)
  }
  for (const r of results.filter((x) => x.row.big)) {
    p(`| each instance < 200 MB RSS during the big upload | ${r.row.label}, ${SETUP_LABEL[r.setup]}: ${fmt(r.totals.peak / MB, 0)} MB | ${mark(usable(r) ? r.totals.peak < 200 * MB : null)} |`)
  }
  p()
  return lines
}
