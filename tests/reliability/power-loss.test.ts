import { describe, expect, test } from 'bun:test'
import { renameSync } from 'node:fs'
import { loadConfig } from '../../src/config.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { chunkFields, sendChunk } from '../helpers/dropzone-client.ts'
import { PowerCutFileSystem } from '../helpers/power-cut.ts'
import { login, TEST_PASSWORD } from '../helpers/server.ts'
import { newDataDir, removeDataDir, seededRandom, storeProblems } from './harness.ts'
import { checkDownloads, checkRecords, continueAll, fileRowCount, plan, requestCount, unfinished, type Client } from './resuming-clients.ts'

/**
 * Cuts the power in the middle of parallel Dropzone (small and chunked) and tus uploads, the way
 * SQLite tests its own crash safety: the server runs in this process on a file system that
 * forgets every write not followed by a sync (tests/helpers/power-cut.ts, which also drops the
 * WAL frames not yet synced). After each cut, a server starts on what the disk holds, every
 * client resumes from what the server says it holds, and the checks of the crash test apply:
 * no acknowledged chunk or offset lost, every file's SHA-256, no file recorded twice, blob
 * reference counts exact.
 *
 * The cut comes a random number of file changes after a random acknowledgement. POWER_CUTS
 * (default 6) sets how many runs; POWER_SEED replays them (run i uses POWER_SEED + i).
 */

const RUNS = Number(process.env.POWER_CUTS ?? 6)
const FIRST_SEED = Number(process.env.POWER_SEED ?? Math.floor(Math.random() * 2 ** 31))

/** A server in this process on `disk`, and the clients' view of it. */
async function start(dataDir: string, disk: PowerCutFileSystem) {
  const logs: string[] = []
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_PASSWORD: TEST_PASSWORD })
  const server = await startServer(config, {
    log: (message, context) => logs.push(`${message} ${JSON.stringify(context ?? {})}`),
    testHooks: { fileSystem: disk, databaseOpened: (db) => disk.watchDatabase(db) },
  })
  const cookie = await login(server.url, TEST_PASSWORD)
  const client: Client = {
    url: server.url,
    async fetch(path, init = {}) {
      const headers = new Headers(init.headers)
      if (!headers.has('cookie')) headers.set('cookie', cookie)
      const response = await fetch(server.url + path, { ...init, headers, redirect: 'manual' })
      // An answer that arrives once the power is off was never given: as if the server had died first.
      if (!disk.powered) throw new Error('the power is off')
      return response
    },
  }
  return { server, client, logs }
}

const stopped = new WeakSet<RunningServer>()

/** Stops a server unless stopped already. */
async function stop({ server }: { server: RunningServer }) {
  if (stopped.has(server)) return
  stopped.add(server)
  await server.stop()
}

/**
 * Cuts the power `afterChanges` file changes after the `afterAck`-th acknowledgement (or when
 * asked, if that never comes), then stops the server that lost it.
 */
function powerCut(disk: PowerCutFileSystem, dataDir: string, running: { server: RunningServer }, afterAck: number, afterChanges: number) {
  let acks = 0
  let countdown = -1
  let after: { disk: string; stopped: Promise<void> } | null = null
  const cutNow = () => {
    if (after) return
    const image = disk.cut(dataDir)
    // Stopped outside the file-system call the cut came in.
    after = { disk: image, stopped: new Promise<void>((resolve) => setImmediate(resolve)).then(() => stop(running)).catch(() => {}) }
  }
  disk.beforeChange = () => {
    if (countdown >= 0 && countdown-- === 0) cutNow()
  }
  return {
    acknowledged() {
      if (++acks === afterAck) countdown = afterChanges
    },
    /** Cuts now unless it happened; resolves once the server is stopped, with what the disk holds. */
    async cut() {
      cutNow()
      await after!.stopped
      disk.beforeChange = () => {}
      return { disk: after!.disk, acks }
    },
  }
}

/** One run; resolves to the problems found (none when every promise held). */
async function powerLossRun(seed: number, makeDisk: () => PowerCutFileSystem = () => new PowerCutFileSystem()): Promise<{ problems: string[]; events: string[]; logs: string[] }> {
  const rng = seededRandom(seed)
  const dataDir = newDataDir()
  const disk = makeDisk()
  const problems: string[] = []
  const events: string[] = []
  const logs: string[] = []
  let running: Awaited<ReturnType<typeof start>> | undefined
  try {
    running = await start(dataDir, disk)
    const { uploads, stored } = plan(rng)
    const before = await sendChunk(running.client, chunkFields('stored-before', stored.data.length, stored.data.length, 0), stored.data, { fileName: stored.name })
    expect(before.status).toBe(200)
    await before.arrayBuffer()

    const cuts = rng.next() < 0.5 ? 2 : 1
    const total = uploads.reduce((n, upload) => n + requestCount(upload), 0)
    for (let round = 0; round < cuts; round++) {
      const afterAck = round === 0 ? rng.int(1, total - 1) : rng.int(1, 12)
      const afterChanges = rng.int(0, 12)
      const cut = powerCut(disk, dataDir, running, afterAck, afterChanges)
      await continueAll(running.client, uploads, rng, cut.acknowledged, problems)
      const { disk: image, acks } = await cut.cut()
      events.push(`cut ${round + 1}: ${afterChanges} file changes after acknowledgement ${afterAck}${round === 0 ? ` of ${total}` : ''}; ${acks} acknowledged, ${uploads.filter(unfinished).length} of ${uploads.length} uploads unfinished`)
      logs.push(...running.logs)
      removeDataDir(dataDir)
      renameSync(image, dataDir)
      disk.powerOn()
      running = await start(dataDir, disk)
      for (const problem of storeProblems(dataDir)) problems.push(`right after cut ${round + 1}: ${problem}`)
    }
    await continueAll(running.client, uploads, rng, () => {}, problems)
    await checkDownloads(running.client, uploads, problems)
    await stop(running)
    logs.push(...running.logs)
    checkRecords(dataDir, uploads, problems)
    for (const problem of storeProblems(dataDir)) problems.push(`after resuming: ${problem}`)
    const files = fileRowCount(dataDir)
    if (files !== uploads.length + 1) problems.push(`${files} file rows for ${uploads.length + 1} files uploaded`)
    return { problems, events, logs }
  } finally {
    if (running) await stop(running).catch(() => {})
    disk.dispose()
    removeDataDir(dataDir)
  }
}

/** The adapter's file system with the power-cut model, less one kind of sync: what the check must notice. */
const flawed: Record<string, () => PowerCutFileSystem> = {
  'staged bytes that are never synced': () =>
    new (class extends PowerCutFileSystem {
      override async open(path: string, mode: Parameters<PowerCutFileSystem['open']>[1]) {
        const file = await super.open(path, mode)
        return path.includes('/staging/') ? { ...file, datasync: async () => {} } : file
      }
    })(),
  'new staging names that are never synced': () =>
    new (class extends PowerCutFileSystem {
      override syncDirectory(dir: string) {
        return dir.endsWith('/staging') ? Promise.resolve() : super.syncDirectory(dir)
      }
    })(),
}

describe('the power-loss check notices a storage adapter that skips a sync', () => {
  for (const [flaw, makeDisk] of Object.entries(flawed)) {
    test(`${flaw}: some of a few runs report a lost acknowledgement or a damaged file`, async () => {
      const found: string[] = []
      // A cut after everything was stored (or before anything was acknowledged) shows nothing: a few runs.
      for (let i = 0; i < 8 && found.length === 0; i++) found.push(...(await powerLossRun(FIRST_SEED + i, makeDisk)).problems)
      expect(found).not.toEqual([])
    }, 120_000)
  }
})

describe('power loss', () => {
  for (let i = 0; i < RUNS; i++) {
    const seed = FIRST_SEED + i
    test(`a power cut during parallel Dropzone and tus uploads loses nothing acknowledged, and resuming stores every file once (seed ${seed})`, async () => {
      const { problems, events, logs } = await powerLossRun(seed)
      if (problems.length) console.error(`power-loss test, seed ${seed}:\n${events.join('\n')}\n--- server logs:\n${logs.join('\n')}`)
      else console.log(`power-loss test, seed ${seed}: ${events.join('; ')}`)
      expect({ seed, problems }).toEqual({ seed, problems: [] })
    }, 60_000)
  }
})
