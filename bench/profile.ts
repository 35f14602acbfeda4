// Where one row's time goes: runs one upload row against a fresh Dropfold (no references), and
// prints its throughput, the server's CPU per request (user and kernel apart) and, with
// PROFILE_CPU=1, the functions that took the server's main thread (Bun's --cpu-prof).
//
//   npm run bench:profile                                        # 1,000 small files, data on /tmp
//   PROFILE_ROW=dz1m-4 PROFILE_CPU=1 npm run bench:profile       # 1 MB chunks, 4 in flight, with a profile
//   PROFILE_DATA=/dev/shm npm run bench:profile                  # data on tmpfs: the disk taken out
//
// Not a benchmark (no references, one run): a tool for finding what to make cheaper.

import { spawn } from 'bun'
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { CLK_TCK, cpuTicks } from './process-cpu.ts'

const ROOT = join(import.meta.dir, '..')
const BUN = process.execPath
const MiB = 1024 * 1024

const ROWS: Record<string, { mode: string; path: string; chunk?: number; inflight?: number; count?: number; each?: number }> = {
  'dz-small': { mode: 'dz-small', path: '/upload', count: 1000, each: 100 * 1000, inflight: 8 },
  'tus-small': { mode: 'tus-small', path: '/tus/', count: 1000, each: 100 * 1000, inflight: 8 },
  'dz1m-1': { mode: 'dz', path: '/upload', chunk: 1_000_000, inflight: 1 },
  'dz1m-4': { mode: 'dz', path: '/upload', chunk: 1_000_000, inflight: 4 },
  'dz8m-1': { mode: 'dz', path: '/upload', chunk: 8 * MiB, inflight: 1 },
  'dz8m-4': { mode: 'dz', path: '/upload', chunk: 8 * MiB, inflight: 4 },
  'tus-single': { mode: 'tus-single', path: '/tus/' },
  'tus-8m': { mode: 'tus-chunks', path: '/tus/', chunk: 8 * MiB },
}

const rowId = process.env.PROFILE_ROW ?? 'dz-small'
const chosen = ROWS[rowId]
if (!chosen) throw new Error(`PROFILE_ROW must be one of ${Object.keys(ROWS).join(', ')}`)
const row = chosen
const size = Number(process.env.PROFILE_SIZE_MIB ?? 256) * MiB
const withProfile = process.env.PROFILE_CPU === '1'
const top = Number(process.env.PROFILE_TOP ?? 25)

const work = mkdtempSync(join(process.env.PROFILE_DATA ?? '/tmp', 'dropfold-profile-'))
const server = { proc: undefined as ReturnType<typeof spawn> | undefined }
const cleanUp = () => {
  server.proc?.kill()
  rmSync(work, { recursive: true, force: true })
}
process.on('SIGINT', () => {
  cleanUp()
  process.exit(130)
})

async function main() {
  const file = join(work, 'input.bin')
  const random = new Uint8Array(size)
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(random.subarray(at, Math.min(size, at + 65536)))
  await Bun.write(file, random)

  const profileDir = join(work, 'cpu')
  const proc = spawn([BUN, ...(withProfile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: join(work, 'data'), ADMIN_PASSWORD: 'profile-password-123', MAX_CHUNK_SIZE: '64M', UV_THREADPOOL_SIZE: '16' },
    stdout: 'pipe',
    stderr: 'inherit',
  })
  server.proc = proc
  // Read all along (a full pipe would stall the server); the address is in the first lines.
  const base = await new Promise<string>((resolve, reject) => {
    let seen = ''
    void (async () => {
      const decoder = new TextDecoder()
      for await (const piece of proc.stdout) {
        seen += decoder.decode(piece)
        const found = /running at (http:\/\/\S+)/.exec(seen)?.[1]
        if (found) resolve(found)
        if (seen.length > 65536) seen = seen.slice(-4096)
      }
      reject(new Error('Dropfold did not start'))
    })()
  })
  const login = await fetch(`${base}/login`, { method: 'POST', body: new URLSearchParams({ password: 'profile-password-123' }), redirect: 'manual' })
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('dropfold_session='))
  if (!cookie) throw new Error(`sign-in failed: HTTP ${login.status}`)

  const before = cpuTicks(proc.pid)
  const client = spawn([BUN, join(ROOT, 'bench', 'client.ts'), JSON.stringify({ ...row, kind: 'dropfold', base, file, size, cookie, tag: 'p' })], {
    cwd: ROOT,
    stdout: 'pipe',
    stderr: 'inherit',
  })
  const result = JSON.parse(await new Response(client.stdout).text()) as { ms: number; bytes: number; files: number; error?: string }
  const after = cpuTicks(proc.pid)
  if (result.error) throw new Error(result.error)

  // Per file for the small-file rows, per chunk or PATCH otherwise (tus's creation POST included).
  const units = row.count ?? Math.ceil(size / (row.chunk ?? size))
  const unit = row.count ? 'file' : row.mode === 'dz' ? 'chunk' : 'PATCH'
  const tick = 1000 / CLK_TCK // ms per clock tick
  const per = (ticks: number) => ((ticks * tick) / units).toFixed(2)
  const seconds = result.ms / 1000
  console.log(`row ${rowId}, ${(size / MiB).toFixed(0)} MiB input, data in ${work}`)
  console.log(`throughput ${(result.bytes / 1e6 / seconds).toFixed(1)} MB/s${row.count ? `, ${(result.files / seconds).toFixed(1)} files/s` : ''}`)
  console.log(
    `server CPU per ${unit} (${units}): ${per(after.user - before.user + after.kernel - before.kernel)} ms ` +
      `(user ${per(after.user - before.user)}, kernel ${per(after.kernel - before.kernel)})`,
  )
  // On two cores the client's share decides how much is left for the server.
  await client.exited
  const clientCpu = client.resourceUsage()?.cpuTime
  if (clientCpu) console.log(`client CPU per ${unit}: ${(Number(clientCpu.total) / 1000 / units).toFixed(2)} ms, over its whole life`)

  proc.kill('SIGTERM')
  await proc.exited
  server.proc = undefined
  if (withProfile) {
    const saved = join(profileDir, readdirSync(profileDir)[0]!)
    if (process.env.PROFILE_SAVE) copyFileSync(saved, process.env.PROFILE_SAVE)
    summarise(saved)
  }
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

/** The functions with the most samples on the main thread: by themselves, and with what they call. */
function summarise(path: string) {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[]; samples: number[] }
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id)
  const name = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber + 1}`
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const id of profile.samples) {
    const leaf = name(nodes.get(id)!)
    self.set(leaf, (self.get(leaf) ?? 0) + 1)
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      if (at === profile.nodes[0]!.id) break // (root)
      const frame = name(nodes.get(at)!)
      if (!seen.has(frame)) inclusive.set(frame, (inclusive.get(frame) ?? 0) + 1)
      seen.add(frame)
    }
  }
  const total = profile.samples.length
  const show = (title: string, counts: Map<string, number>) => {
    console.log(`\n${title} (${total} samples)`)
    for (const [frame, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((n * 100) / total).toFixed(1).padStart(5)}%  ${frame}`)
  }
  show('main thread, self', self)
  show('main thread, including callees', inclusive)
}

try {
  await main()
} finally {
  cleanUp()
}
