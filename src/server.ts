import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createApp } from './app.ts'
import { MemoryLocker } from './adapters/memory/locker.ts'
import { SqlitePeriodicWork } from './adapters/sqlite/periodic.ts'
import { settleAdminPassword } from './auth/admin-password.ts'
import { PasswordChecks } from './auth/password-checks.ts'
import { SqliteAttemptStore } from './adapters/sqlite/attempts.ts'
import type { Config } from './config.ts'
import { SqliteMetadataStore } from './adapters/sqlite/metadata.ts'
import { UploadEngine } from './engine/engine.ts'
import { lockDataDir } from './storage/data-dir-lock.ts'
import type { FileSystem } from './adapters/local-disk/file-system.ts'
import { LocalBlobStore, LocalStaging } from './adapters/local-disk/local-disk.ts'
import { SpaceReserve } from './storage/reserve.ts'
import { StartupError } from './startup-error.ts'

export type Log = (message: string, context?: Record<string, unknown>) => void

export interface StartOptions {
  log?: Log
  clock?: () => number
  /** For tests that stand between the server and what it runs on (tests/reliability/power-loss.test.ts). */
  testHooks?: {
    /** What the local-disk storage uses for its files, in place of the real file system. */
    fileSystem?: FileSystem
    /** Called as soon as the database is open, before anything else uses it. */
    databaseOpened?: (db: SqliteMetadataStore['db']) => void
  }
}

export const consoleLog: Log = (message, context) => {
  console.error(`[${new Date().toISOString()}] ${message}${context ? ' ' + JSON.stringify(context) : ''}`)
}

/** How often stale uploads expire, old trash is purged and finalisations held up by a passing fault are retried. */
const HOUSEKEEPING_MS = 15 * 60_000

/** The port is taken (by another Dropfold or anything else). */
export class PortInUse extends StartupError {
  constructor(host: string, port: number) {
    super(`port ${port} is already in use on ${host}; stop what uses it, or set PORT`)
    this.name = 'PortInUse'
  }
}

/**
 * Wires config → database → storage → engine → app and listens. Used by main.ts and by tests.
 * Refuses to start (StartupError) when another server holds the data directory or the port.
 */
export async function startServer(config: Config, options: StartOptions = {}) {
  mkdirSync(config.dataDir, { recursive: true })
  // Two servers on one database would each believe they alone write an upload's bytes.
  const lock = lockDataDir(config.dataDir)
  try {
    return await startLocked(config, options, lock)
  } catch (error) {
    lock.release()
    throw error
  }
}

async function startLocked(config: Config, options: StartOptions, lock: { release(): void }) {
  const log = options.log ?? consoleLog
  const clock = options.clock ?? Date.now
  const store = SqliteMetadataStore.open(join(config.dataDir, 'dropfold.sqlite'), clock())
  try {
    options.testHooks?.databaseOpened?.(store.db)
    return await serve(config, store, log, clock, lock, options.testHooks?.fileSystem)
  } catch (error) {
    await store.close()
    throw error
  }
}

async function serve(config: Config, store: SqliteMetadataStore, log: Log, clock: () => number, lock: { release(): void }, fileSystem?: FileSystem) {
  const staging = new LocalStaging(join(config.dataDir, 'staging'), fileSystem)
  const blobs = new LocalBlobStore(join(config.dataDir, 'blobs'), staging, log, fileSystem)
  await Promise.all([staging.init(), blobs.init()])
  const engine = new UploadEngine({ store, config, staging, blobs, space: staging, locker: new MemoryLocker(), clock, log })
  // The data directory's lock makes this the only instance: no lease of another can be live.
  await engine.recover({ sole: true })
  const reserve = new SpaceReserve(config.dataDir, log)
  const housekeeping = async () => {
    await engine.resumeFinalizations()
    await engine.expireStale()
    await engine.purgeTrash(clock() - config.trashRetentionDays * 86_400_000)
    await reserve.refill()
  }
  await housekeeping()
  const password = await settleAdminPassword(store, config)
  const passwordChecks = new PasswordChecks(new SqliteAttemptStore(store))
  const app = createApp({ config, store, engine, blobs, space: staging, clock, log, passwordChecks })
  app.onRequest(({ request }) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') reserve.releaseIfFull()
  })
  listen(app, config)
  // Elected through the database: with several instances on it, one of them runs it each interval.
  const periodic = new SqlitePeriodicWork(store, { clock, log, pollMs: HOUSEKEEPING_MS / 3 })
  const stopHousekeeping = periodic.every('housekeeping', HOUSEKEEPING_MS, housekeeping)
  const server = app.server!
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${server.port}`
  return {
    url,
    app,
    store,
    /** The SQLite adapter's connection, for tests that look at what it stored. */
    sqlite: store.db,
    engine,
    generatedPassword: password.generated,
    /**
     * Stops at once: open connections are cut (clients resume; nothing acknowledged is lost),
     * then the writes and finalisations under way finish before the database closes.
     */
    async stop() {
      const housekeepingStopped = stopHousekeeping()
      await app.stop(true)
      await housekeepingStopped
      await engine.settle()
      await store.close()
      lock.release()
    },
  }
}

/** Listens alone: Bun and Elysia would otherwise share a taken port with whoever holds it. */
function listen(app: ReturnType<typeof createApp>, config: Config) {
  try {
    app.listen({ port: config.port, hostname: config.host, reusePort: false })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUse(config.host, config.port)
    throw error
  }
}

export type RunningServer = Awaited<ReturnType<typeof startServer>>
