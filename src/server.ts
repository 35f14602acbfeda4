import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createApp } from './app.ts'
import { MemoryLocker } from './adapters/memory/locker.ts'
import { SqlitePeriodicWork } from './adapters/sqlite/periodic.ts'
import { PostgresAttemptStore } from './adapters/postgres/attempts.ts'
import { PostgresLocker } from './adapters/postgres/locker.ts'
import { PostgresMetadataStore } from './adapters/postgres/metadata.ts'
import { PostgresPeriodicWork } from './adapters/postgres/periodic.ts'
import type { AttemptStore } from './ports/attempts.ts'
import type { Locker } from './ports/locker.ts'
import type { MetadataStore } from './ports/metadata.ts'
import type { PeriodicWork } from './ports/periodic.ts'
import type { PeriodicOptions } from './adapters/elected-periodic.ts'
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
import type { BlobStore } from './ports/blobs.ts'
import type { SpaceGauge, Staging } from './ports/staging.ts'
import { checkS3 } from './adapters/s3/check.ts'
import { openS3Storage } from './adapters/s3/index.ts'

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
 * Without DATABASE_URL: SQLite in DATA_DIR, and this server alone on it (StartupError when
 * another holds the data directory). With it: PostgreSQL, shared with any number of instances on
 * the same DATA_DIR. A taken port, or a database that cannot be reached, is a StartupError.
 * With STORAGE=s3, uploads and files live in the bucket (checked first: S3Unusable when it
 * cannot be used), and DATA_DIR holds only the SQLite database, if that.
 */
export async function startServer(config: Config, options: StartOptions = {}) {
  const log = options.log ?? consoleLog
  const clock = options.clock ?? Date.now
  // Before anything else: a bucket that cannot be used stops the start with nothing to undo.
  if (config.s3) await checkS3(config.s3)
  if (usesDataDir(config)) mkdirSync(config.dataDir, { recursive: true })
  const backend = config.databaseUrl === null ? openSqlite(config, clock, options) : await openPostgresBackend(config.databaseUrl, clock, log)
  let storage: Storage
  try {
    storage = await openStorage(config, log, options.testHooks?.fileSystem)
  } catch (error) {
    await backend.close()
    throw error
  }
  try {
    return await serve(config, backend, storage, log, clock)
  } catch (error) {
    await storage.close()
    await backend.close()
    throw error
  }
}

/** DATA_DIR holds the SQLite database, the local storage, or both; on PostgreSQL and S3 nothing. */
const usesDataDir = (config: Config) => config.databaseUrl === null || config.storage === 'local'

/** Where uploads in progress (staging) and finished files (blobs) are kept. */
interface Storage {
  staging: Staging
  blobs: BlobStore
  /** How much room there is for uploads; none on an object store, which does not fill up. */
  space?: SpaceGauge
  close(): Promise<void>
}

async function openStorage(config: Config, log: Log, fileSystem?: FileSystem): Promise<Storage> {
  if (config.s3) {
    return openS3Storage(config.s3, log)
  }
  const staging = new LocalStaging(join(config.dataDir, 'staging'), fileSystem)
  const blobs = new LocalBlobStore(join(config.dataDir, 'blobs'), staging, log, fileSystem)
  await Promise.all([staging.init(), blobs.init()])
  return { staging, blobs, space: staging, close: async () => {} }
}

/** What the server remembers, and how its instances agree, on one kind of database. */
interface Backend {
  store: MetadataStore
  locker: Locker
  attempts: AttemptStore
  periodic(options: PeriodicOptions): PeriodicWork
  /** The SQLite connection, for tests that look at what it stored; null on PostgreSQL. */
  sqlite: SqliteMetadataStore['db'] | null
  /** Nothing else can be running on this data (every lease found at start-up is stale). */
  sole: boolean
  close(): Promise<void>
}

function openSqlite(config: Config, clock: () => number, options: StartOptions): Backend {
  // Two servers on one SQLite database would each believe they alone write an upload's bytes.
  const lock = lockDataDir(config.dataDir)
  let store: SqliteMetadataStore
  try {
    store = SqliteMetadataStore.open(join(config.dataDir, 'dropfold.sqlite'), clock())
  } catch (error) {
    lock.release()
    throw error
  }
  const close = async () => {
    try {
      await store.close()
    } finally {
      lock.release()
    }
  }
  try {
    options.testHooks?.databaseOpened?.(store.db)
  } catch (error) {
    void close()
    throw error
  }
  return {
    store,
    locker: new MemoryLocker(),
    attempts: new SqliteAttemptStore(store),
    periodic: (periodicOptions) => new SqlitePeriodicWork(store, periodicOptions),
    sqlite: store.db,
    sole: true,
    close,
  }
}

async function openPostgresBackend(url: string, clock: () => number, log: Log): Promise<Backend> {
  const store = await PostgresMetadataStore.open(url, { now: clock() })
  let locker: PostgresLocker
  try {
    locker = await PostgresLocker.open(url, { log })
  } catch (error) {
    await store.close()
    throw new StartupError(`cannot open the PostgreSQL session for locks: ${(error as Error).message}`)
  }
  return {
    store,
    locker,
    attempts: new PostgresAttemptStore(store.db),
    periodic: (periodicOptions) => new PostgresPeriodicWork(store.db, periodicOptions),
    sqlite: null,
    sole: false,
    async close() {
      await Promise.allSettled([locker.close(), store.close()])
    },
  }
}

async function serve(config: Config, backend: Backend, storage: Storage, log: Log, clock: () => number) {
  const { store, locker } = backend
  const { staging, blobs, space } = storage
  const engine = new UploadEngine({ store, config, staging, blobs, space, locker, clock, log, shared: !backend.sole })
  // Alone on the data (SQLite's lock), every lease is stale; sharing it, only lapsed ones are.
  await engine.recover({ sole: backend.sole })
  const reserve = usesDataDir(config) ? new SpaceReserve(config.dataDir, log) : null
  const housekeeping = async () => {
    await engine.resumeFinalizations()
    await engine.expireStale()
    await engine.purgeTrash(clock() - config.trashRetentionDays * 86_400_000)
    await reserve?.refill()
  }
  await housekeeping()
  const password = await settleAdminPassword(store, config)
  const passwordChecks = new PasswordChecks(backend.attempts)
  let stopping = false
  const app = createApp({ config, store, engine, blobs, space, clock, log, passwordChecks, stopping: () => stopping })
  app.onRequest(({ request }) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') reserve?.releaseIfFull()
  })
  listen(app, config)
  // Elected through the database: with several instances on it, one of them runs it each interval.
  const periodic = backend.periodic({ clock, log, pollMs: HOUSEKEEPING_MS / 3 })
  const stopHousekeeping = periodic.every('housekeeping', HOUSEKEEPING_MS, housekeeping)
  const server = app.server!
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${server.port}`
  return {
    url,
    app,
    store,
    /** The SQLite adapter's connection, for tests that look at what it stored (SQLite only: throws on PostgreSQL). */
    get sqlite(): SqliteMetadataStore['db'] {
      if (!backend.sqlite) throw new Error('this server runs on PostgreSQL: there is no SQLite connection to look at')
      return backend.sqlite
    },
    /** Which database the server runs on. */
    backend: backend.sqlite ? ('sqlite' as const) : ('postgres' as const),
    /** Where it keeps uploads and files. */
    storage: config.storage,
    /** Its staging and blob store, for tests that look at what is stored whichever the storage (rather than at DATA_DIR). */
    staging,
    blobs,
    engine,
    generatedPassword: password.generated,
    /**
     * Stops at once: open connections are cut (clients resume; nothing acknowledged is lost),
     * then the writes and finalisations under way finish before the database closes.
     */
    async stop() {
      stopping = true
      const housekeepingStopped = stopHousekeeping()
      await app.stop(true)
      await housekeepingStopped
      await engine.settle()
      try {
        await storage.close()
      } finally {
        await backend.close()
      }
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
