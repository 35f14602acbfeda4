// Issue 16's rows of `npm run bench`: Dropfold with STORAGE=s3 on a Ceph RGW, each beside the
// same-run ceiling (the same bytes sent to the same bucket by the S3 client alone,
// bench/s3-direct.ts) and, for the tus rows, beside @tus/server + @tus/s3-store on the same bucket
// (bench/tus-s3.mjs). Opt-in (BENCH_S3=1, or their ids in BENCH_ROWS); they need TEST_S3_* (and
// CEPH_TEST_DIR for radosgw's and the OSD's CPU), as `eval "$(.ci/services/ceph.sh start)"` sets.
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { spawnServer } from '../tests/helpers/processes.ts'
import { freshBucket, S3, s3Env, type TestBucket } from '../tests/helpers/s3.ts'
import { login, TEST_PASSWORD } from '../tests/helpers/server.ts'
import { fmt, median, peakOf, resetPeaks, rowInput, selectedOptIn, sqliteRecordedSha, ticksOf, type ClusterContext, type RunTotals } from './cluster.ts'
import { CLK_TCK } from './process-cpu.ts'

const ROOT = resolve(import.meta.dir, '..')
const MB = 1e6
const GiB = 1024 ** 3
const MiB = 1024 ** 2
const PART = 8 * MiB
const SMALL_COUNT = 1000
const SMALL_EACH = 100_000
/** Where Dropfold keeps its keys in the shared bucket; the references write outside it. */
const DROPFOLD_PREFIX = 'dropfold/'

export const S3_ROW_IDS = ['s3-tus-single', 's3-tus-8m', 's3-dz8m-4', 's3-small', 's3-big'] as const
type RowId = (typeof S3_ROW_IDS)[number]
type SetupId = 'dropfold' | 'tus-s3' | 'direct'
const SETUP_LABEL: Record<SetupId, string> = {
  dropfold: 'Dropfold (STORAGE=s3)',
  'tus-s3': '@tus/server + @tus/s3-store',
  direct: 'direct S3 (client alone)',
}

interface Row {
  id: RowId
  label: string
  /** The client's mode for Dropfold and @tus/server. */
  mode: 'tus-single' | 'tus-chunks' | 'dz' | 'tus-small'
  opts: Record<string, unknown>
  /** How the direct ceiling sends the same bytes. */
  direct?: { mode: 'multipart' | 'small'; inflight: number }
  tus: boolean
  big?: boolean
}

interface Totals extends RunTotals {
  files: number
  /** CPU ticks of the server (the direct ceiling: its own process), radosgw and the OSD. */
  serverTicks: number
  rgwTicks: number
  osdTicks: number
  /** radosgw's counters over the row (`perf dump`): requests, bytes it sent (GET) and took (PUT, parts). */
  requests: number
  getBytes: number
  putBytes: number
  peak: number
}

function rowsFor(bigSize: number): Row[] {
  return [
    { id: 's3-tus-single', label: 'tus, one streamed PATCH', mode: 'tus-single', opts: {}, direct: { mode: 'multipart', inflight: 1 }, tus: true },
    { id: 's3-tus-8m', label: 'tus, 8 MiB PATCHes', mode: 'tus-chunks', opts: { chunk: PART }, direct: { mode: 'multipart', inflight: 1 }, tus: true },
    { id: 's3-dz8m-4', label: 'Dropzone, 8 MiB chunks, 4 in flight', mode: 'dz', opts: { chunk: PART, inflight: 4 }, direct: { mode: 'multipart', inflight: 4 }, tus: false },
    { id: 's3-small', label: `${SMALL_COUNT} files of 100 KB, tus POST+PATCH, 8 in flight`, mode: 'tus-small', opts: { count: SMALL_COUNT, each: SMALL_EACH, inflight: 8 }, direct: { mode: 'small', inflight: 8 }, tus: true },
    { id: 's3-big', label: `memory: ${+(bigSize / GiB).toFixed(2)} GiB file, tus one streamed PATCH (1 run)`, mode: 'tus-single', opts: {}, tus: false, big: true },
  ]
}

/** Which of these rows were asked for: BENCH_S3=1 all of them, else those BENCH_ROWS names. */
export const selectedS3Rows = (only: Set<string> | null) => selectedOptIn('BENCH_S3', S3_ROW_IDS, only)

const cleanups: (() => Promise<unknown>)[] = []
/** Stops everything these rows started and drops their bucket (run.ts calls it on every exit). */
export async function stopS3Rows() {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
}

/** A Ceph daemon's pid from the test cluster's run directory (CEPH_TEST_DIR), or undefined. */
function cephPid(name: string): number | undefined {
  const dir = process.env.CEPH_TEST_DIR
  const file = dir ? join(dir, 'run', `${name}.pid`) : ''
  return file && existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined
}
/** radosgw's request and byte counters so far, from its admin socket (zeros when not reachable). */
function rgwOps(): { req: number; getBytes: number; putBytes: number } {
  const socket = process.env.CEPH_TEST_DIR ? join(process.env.CEPH_TEST_DIR, 'run', 'client.rgw.a.asok') : ''
  if (!socket || !existsSync(socket)) return { req: 0, getBytes: 0, putBytes: 0 }
  const out = Bun.spawnSync(['ceph', '--admin-daemon', socket, 'perf', 'dump', 'rgw'], { stderr: 'pipe' })
  try {
    const rgw = (JSON.parse(out.stdout.toString()) as { rgw: { req: number; get_b: number; put_b: number } }).rgw
    return { req: rgw.req, getBytes: rgw.get_b, putBytes: rgw.put_b }
  } catch {
    return { req: 0, getBytes: 0, putBytes: 0 }
  }
}
const ticksOrZero = (pid: number | undefined) => (pid === undefined ? 0 : ticksOf([pid]))

/** Runs a process that prints one JSON line, as run.ts's runClient does, bounded in time. */
async function runJson<T>(cmd: string[], bytes: number): Promise<T> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120_000 + (bytes / (2 * MB)) * 1000)
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    const json = JSON.parse(out.trim().split('\n').pop() || 'null') as (T & { error?: string }) | null
    if (!json) throw new Error(`gave no result (exit ${proc.exitCode ?? proc.signalCode}): ${(err || out).slice(-400)}`)
    if (json.error) throw new Error(json.error.split('\n')[0])
    return json
  } finally {
    clearTimeout(timer)
  }
}

async function sha256Of(bucket: TestBucket, key: string): Promise<string> {
  const res = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.settings.bucket, Key: key }))
  const hasher = new Bun.CryptoHasher('sha256')
  for await (const piece of res.Body as AsyncIterable<Uint8Array>) hasher.update(piece)
  return hasher.digest('hex')
}

/** Deletes every object the references wrote (all but Dropfold's), so the memstore OSD does not fill up. */
async function dropReferenceObjects(bucket: TestBucket) {
  const Bucket = bucket.settings.bucket
  for (;;) {
    const page = await bucket.client.send(new ListObjectsV2Command({ Bucket }))
    const keys = (page.Contents ?? []).map((o) => o.Key!).filter((key) => !key.startsWith(DROPFOLD_PREFIX))
    if (keys.length === 0) return
    await bucket.client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.slice(0, 1000).map((Key) => ({ Key })), Quiet: true } }))
  }
}

export interface S3Result {
  row: Row
  setup: SetupId
  totals: Totals
}

interface Setups {
  bucket: TestBucket
  dropfold: { base: string; cookie: string; pid: number; sqlite: string }
  tus: { base: string; pid: number }
}

async function startSetups(ctx: ClusterContext): Promise<Setups> {
  const bucket = await freshBucket()
  cleanups.push(() => bucket.drop())
  const dataDir = mkdtempSync(join(ctx.tmpRoot, 's3-dropfold-'))
  const dropfold = spawnServer({
    MAX_CHUNK_SIZE: '64M',
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
    DATA_DIR: dataDir,
    ...s3Env({ ...bucket.settings, prefix: DROPFOLD_PREFIX }),
  })
  cleanups.push(async () => (dropfold.proc.kill('SIGKILL'), await dropfold.proc.exited))
  const url = await dropfold.started
  const { endpoint, region, accessKeyId, secretAccessKey } = bucket.settings
  const tus = Bun.spawn(['node', join(import.meta.dir, 'tus-s3.mjs'), endpoint, bucket.settings.bucket, region], {
    cwd: ROOT,
    env: { ...process.env, S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  cleanups.push(async () => (tus.kill('SIGKILL'), await tus.exited))
  const stderr = new Response(tus.stderr).text()
  const reader = tus.stdout.getReader()
  let seen = ''
  while (!/LISTENING \d+/.test(seen)) {
    const { done, value } = await reader.read()
    if (done) throw new Error(`@tus/server with @tus/s3-store did not start: ${(await stderr).slice(-400)}`)
    seen += new TextDecoder().decode(value)
  }
  const port = /LISTENING (\d+)/.exec(seen)![1]
  void (async () => {
    while (!(await reader.read()).done); // keep its output drained
  })().catch(() => {})
  return {
    bucket,
    dropfold: { base: url, cookie: await login(url, TEST_PASSWORD), pid: dropfold.proc.pid, sqlite: join(dataDir, 'dropfold.sqlite') },
    tus: { base: `http://127.0.0.1:${port}`, pid: tus.pid },
  }
}

interface Outcome {
  bytes: number
  files: number
  ms: number
  /** The ceiling's own CPU, when the measured process is the client itself. */
  ownCpuMs?: number
  ownPeak?: number
  good: boolean
}

async function runOnce(ctx: ClusterContext, s: Setups, row: Row, setup: SetupId, input: { file: string; size: number; sha: string }, run: number, first: number | undefined, done: () => void): Promise<Outcome> {
  const tag = `${row.id}-${setup}-r${run}-${Math.random().toString(36).slice(2, 8)}`
  if (setup === 'direct') {
    const small = row.direct!.mode === 'small'
    const out = await runJson<{ ms: number; bytes: number; files: number; keys: string[]; cpuMs: number; peakRss: number }>(
      [process.execPath, join(import.meta.dir, 's3-direct.ts'), JSON.stringify({
        settings: s.bucket.settings, mode: row.direct!.mode, file: input.file, size: input.size, key: `direct/${tag}`, part: PART, inflight: row.direct!.inflight,
        first, count: SMALL_COUNT, each: SMALL_EACH,
      })],
      input.size,
    )
    done()
    let good = true
    for (const [i, key] of out.keys.entries()) {
      const expected = small ? new Bun.CryptoHasher('sha256').update(await Bun.file(input.file).slice(first! + i * SMALL_EACH, first! + (i + 1) * SMALL_EACH).arrayBuffer()).digest('hex') : input.sha
      if ((await sha256Of(s.bucket, key)) !== expected) good = false
    }
    await dropReferenceObjects(s.bucket)
    return { bytes: out.bytes, files: out.files, ms: out.ms, ownCpuMs: out.cpuMs, ownPeak: out.peakRss, good }
  }
  const dropfold = setup === 'dropfold'
  const out = await ctx.runClient({
    mode: row.mode, kind: dropfold ? 'dropfold' : 'tus-official', base: dropfold ? s.dropfold.base : s.tus.base,
    path: dropfold ? (row.mode === 'dz' ? '/upload' : '/tus/') : '/files', file: input.file, size: input.size,
    cookie: dropfold ? s.dropfold.cookie : undefined, tag, first, ...row.opts,
  })
  done()
  let good = true
  for (const upload of out.uploads) {
    const expected = upload.expected ?? input.sha
    const actual = upload.reported ?? (dropfold ? sqliteRecordedSha(s.dropfold.sqlite, upload.key) : await sha256Of(s.bucket, upload.key.split('/').pop()!))
    if (actual !== expected) good = false
  }
  if (!dropfold) await dropReferenceObjects(s.bucket)
  return { bytes: out.bytes, files: out.files, ms: out.ms, good }
}

/** Runs the selected rows; returns their results (empty when skipped, with the reason in ctx.notes). */
export async function measureS3Rows(ctx: ClusterContext, selected: Set<string>): Promise<S3Result[]> {
  if (selected.size === 0) {
    ctx.notes.push(`S3 rows (issue 16) not run: they are opt-in, \`BENCH_S3=1\` or \`BENCH_ROWS=${S3_ROW_IDS.join(',')}\`.`)
    return []
  }
  const missing = S3.missing()
  if (missing) {
    ctx.notes.push(`S3 rows skipped: ${missing} (\`eval "$(.ci/services/ceph.sh start)"\` starts a Ceph RGW and sets it).`)
    process.stderr.write(`  S3 rows skipped: ${missing}\n`)
    return []
  }
  const s = await startSetups(ctx)
  const pids: Record<SetupId, number[]> = { dropfold: [s.dropfold.pid], 'tus-s3': [s.tus.pid], direct: [] }
  const rgw = cephPid('client.rgw.a')
  const osd = cephPid('osd.0')
  if (rgw === undefined) ctx.notes.push('radosgw and OSD CPU not measured: CEPH_TEST_DIR is not set (it is when the store comes from `.ci/services/ceph.sh start`).')
  const results: S3Result[] = []
  const windows = Math.max(1, Math.floor(ctx.size / (SMALL_COUNT * SMALL_EACH)))
  let smallRuns = 0
  for (const row of rowsFor(ctx.bigSize).filter((r) => selected.has(r.id))) {
    const chosen = await rowInput(ctx, row, row.mode === 'tus-small', 'S3 rows')
    if (!chosen) continue
    const { input, big } = chosen
    try {
      const setups: SetupId[] = ['dropfold', ...(row.tus ? (['tus-s3'] as const) : []), ...(row.direct ? (['direct'] as const) : [])]
      const runs = row.big ? 1 : ctx.runs
      const totals = new Map<SetupId, Totals>()
      for (const id of setups) {
        totals.set(id, { rates: [], ok: 0, corrupt: 0, bytes: 0, files: 0, serverTicks: 0, rgwTicks: 0, osdTicks: 0, requests: 0, getBytes: 0, putBytes: 0, peak: 0 })
        resetPeaks(pids[id])
      }
      for (let run = 0; run < runs; run++) {
        // Small files: every setup of a run gets the same bytes, each run other bytes than the last
        // (Dropfold stores content once: a repeat would measure deduplication).
        const first = row.mode === 'tus-small' ? (smallRuns++ % windows) * SMALL_COUNT * SMALL_EACH : undefined
        if (row.mode === 'tus-small' && smallRuns > windows) ctx.notes.push(`S3 small files: run ${smallRuns} repeats an earlier set of files (deduplicated on Dropfold); use a larger BENCH_SIZE or fewer BENCH_RUNS.`)
        for (const id of setups.map((_, i) => setups[(i + run) % setups.length]!)) {
          const t = totals.get(id)!
          if (t.error) continue
          // Counted up to the end of the upload: the references' hashing back and deleting comes after.
          const counters = () => ({ server: ticksOf(pids[id]), rgw: ticksOrZero(rgw), osd: ticksOrZero(osd), ops: rgwOps() })
          const before = counters()
          let after = before
          try {
            const out = await runOnce(ctx, s, row, id, input, run, first, () => (after = counters()))
            t.serverTicks += out.ownCpuMs !== undefined ? (out.ownCpuMs / 1000) * CLK_TCK : after.server - before.server
            t.rgwTicks += after.rgw - before.rgw
            t.osdTicks += after.osd - before.osd
            t.requests += after.ops.req - before.ops.req
            t.getBytes += after.ops.getBytes - before.ops.getBytes
            t.putBytes += after.ops.putBytes - before.ops.putBytes
            if (out.ownPeak !== undefined) t.peak = Math.max(t.peak, out.ownPeak)
            t.bytes += out.bytes
            t.files += out.files
            t.rates.push(row.mode === 'tus-small' ? out.files / (out.ms / 1000) : out.bytes / MB / (out.ms / 1000))
            if (out.good) t.ok++
            else t.corrupt++
          } catch (error) {
            t.error = String((error as Error).message ?? error).slice(0, 160)
          }
          process.stderr.write(`  ${row.id.padEnd(13)} ${id.padEnd(9)} run ${run + 1}/${runs}: ${t.error ? `FAILED ${t.error}` : `${t.rates.at(-1)!.toFixed(1)} ${row.mode === 'tus-small' ? 'files/s' : 'MB/s'}`}\n`)
        }
      }
      for (const id of setups) {
        const t = totals.get(id)!
        if (id !== 'direct') t.peak = peakOf(pids[id])
        results.push({ row, setup: id, totals: t })
      }
    } finally {
      await big?.remove()
    }
  }
  return results
}

// ---------------------------------------------------------------- report

/** The rows' table and their targets, as markdown lines. */
export function s3Report(results: S3Result[]): string[] {
  if (results.length === 0) return []
  const lines: string[] = []
  const p = (s = '') => lines.push(s)
  const find = (row: Row, setup: SetupId) => results.find((r) => r.row === row && r.setup === setup)
  const usable = (r: S3Result | undefined) => !!r && !r.totals.error && r.totals.rates.length > 0 && r.totals.corrupt === 0
  const rate = (r: S3Result | undefined) => (r ? median(r.totals.rates) : Number.NaN)
  const versus = (r: S3Result, other: S3Result | undefined) => (r.setup === 'dropfold' && usable(other) ? `${(rate(r) / rate(other)).toFixed(2)}×` : '')
  p('### On S3 (Ceph RGW, issue 16)')
  p()
  p('One bucket for all three: Dropfold under `dropfold/`, the references beside it (their objects are hashed back and deleted after each run). ' +
    `Direct S3: the same bytes by \`@aws-sdk/client-s3\` alone, configured as Dropfold's client, ${PART / MiB} MiB parts (Dropfold's part size), as many in flight as the row's client sends; small files: one PutObject each. ` +
    'CPU s/GiB: the server process (for the direct ceiling: the client process itself), radosgw and the OSD (`/proc/<pid>/stat`, utime + stime), per GiB uploaded. ' +
    'Requests and MB per file: radosgw\'s own counters (`perf dump`: `req`, `put_b`, `get_b`) per uploaded file. All counted from the first request to the last response, not the checks after.')
  p()
  p('| row | setup | throughput | × direct S3 | × @tus/s3-store | server CPU s/GiB | radosgw CPU s/GiB | OSD CPU s/GiB | S3 requests per file | MB sent to / read from S3 per file | peak RSS MB | check |')
  p('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  for (const r of results) {
    const t = r.totals
    const perGiB = (ticks: number) => (t.bytes > 0 && ticks > 0 ? fmt(ticks / CLK_TCK / (t.bytes / GiB), 2) : '—')
    const small = r.row.mode === 'tus-small'
    const check = t.error ? `FAILED: ${t.error}` : t.corrupt ? `**corrupt** (${t.corrupt}/${t.corrupt + t.ok} runs)` : `ok ${t.ok}/${t.ok}`
    p(`| ${r.row.label} | ${SETUP_LABEL[r.setup]} | ${fmt(rate(r))} ${r.row.mode === 'tus-small' ? 'files/s' : 'MB/s'} | ${versus(r, find(r.row, 'direct'))} | ${versus(r, find(r.row, 'tus-s3'))} | ` +
      `${perGiB(t.serverTicks)} | ${perGiB(t.rgwTicks)} | ${perGiB(t.osdTicks)} | ${t.requests ? fmt(t.requests / t.files, 1) : '—'} | ` +
      `${t.requests ? `${fmt(t.putBytes / t.files / MB, small ? 2 : 0)} / ${fmt(t.getBytes / t.files / MB, small ? 2 : 0)}` : '—'} | ${fmt(t.peak / MB, 0)} | ${check} |`)
  }
  p()
  const mark = (ok: boolean | null) => (ok === null ? 'N/A' : ok ? 'PASS' : 'FAIL')
  p('| target | result | status |')
  p('| --- | --- | --- |')
  for (const row of [...new Set(results.map((r) => r.row))]) {
    const dropfold = find(row, 'dropfold')
    const direct = find(row, 'direct')
    const tus = find(row, 'tus-s3')
    if (direct && row.mode !== 'tus-small') {
      const x = rate(dropfold) / rate(direct)
      p(`| ≥ 70% of the direct S3 upload, large files | ${row.label}: ${fmt(x * 100, 0)}% | ${mark(usable(dropfold) && usable(direct) ? x >= 0.7 : null)} |`)
    } else if (direct) p(`| (reported) small files vs direct PutObject | ${row.label}: ${fmt((rate(dropfold) / rate(direct)) * 100, 0)}% | |`)
    if (tus) {
      const y = rate(dropfold) / rate(tus)
      p(`| faster than @tus/server + @tus/s3-store | ${row.label}: ${y.toFixed(2)}× | ${mark(usable(dropfold) && usable(tus) ? y > 1 : null)} |`)
    }
    if (row.big) p(`| < 200 MB RSS during the big upload | ${row.label}: ${fmt((dropfold?.totals.peak ?? Number.NaN) / MB, 0)} MB | ${mark(usable(dropfold) ? dropfold!.totals.peak < 200 * MB : null)} |`)
  }
  p()
  return lines
}
