import { afterEach } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.ts'
import { startServer, type RunningServer, type StartOptions } from '../../src/server.ts'
import { TEST_BACKEND } from './backend.ts'
import { postgresSql, sqliteSql, type TestSql } from './database.ts'
import { freshDatabase, type TestDatabase } from './postgres.ts'
import { s3Env, testStorageBucket, type TestBucket } from './s3.ts'

export const TEST_PASSWORD = 'correct horse battery'

export interface TestServer {
  url: string
  dataDir: string
  /** With TEST_STORAGE=s3, the server's own bucket (dropped when it stops). */
  bucket?: TestBucket
  server: RunningServer
  /** Session cookie header value of a signed-in admin. */
  cookie: string
  /** SQL on this server's database, SQLite or PostgreSQL (tests/helpers/database.ts). */
  sql: TestSql
  /** Logs collected from the server (unexpected errors end up here). */
  logs: string[]
  /** Authenticated fetch relative to the server. */
  fetch(path: string, init?: RequestInit): Promise<Response>
  /** Stops this server and starts a new one on the same data directory (and port, when possible), running `whileStopped` in between. */
  restart(whileStopped?: () => void | Promise<void>): Promise<void>
  stop(): Promise<void>
}

/**
 * A real server on a random port with its own temporary data directory (and, if given, a clock
 * the test controls). With TEST_BACKEND=postgres, on a fresh PostgreSQL database of its own
 * (on TEST_DATABASE_URL's server), dropped when it stops; otherwise on SQLite in the data directory.
 */
export async function startTestServer(env: Record<string, string> = {}, options: Pick<StartOptions, 'clock' | 'testHooks'> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropfold-test-'))
  const logs: string[] = []
  const log = (message: string, context?: Record<string, unknown>) => logs.push(`${message} ${JSON.stringify(context ?? {})}`)
  const database: TestDatabase | null = TEST_BACKEND === 'postgres' && env.DATABASE_URL === undefined ? await freshDatabase() : null
  const databaseEnv: Record<string, string> = database ? { DATABASE_URL: database.url } : {}
  const bucket = env.STORAGE === undefined ? await testStorageBucket() : null
  const storageEnv = bucket ? s3Env(bucket.settings) : {}
  const configFor = (port: string) => loadConfig({ PORT: port, HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_PASSWORD: TEST_PASSWORD, ...databaseEnv, ...storageEnv, ...env })
  let server: RunningServer
  try {
    server = await startServer(configFor('0'), { log, clock: options.clock, testHooks: options.testHooks })
  } catch (error) {
    await database?.drop()
    await bucket?.drop()
    throw error
  }
  const databaseUrl = databaseEnv.DATABASE_URL ?? env.DATABASE_URL
  // On SQLite through the connection of the server running now (a restart opens a new one).
  const onDatabase = (): TestSql => (databaseUrl ? postgresSql(databaseUrl) : sqliteSql(t.server.sqlite.$client))
  const t: TestServer = {
    url: server.url,
    dataDir,
    bucket: bucket ?? undefined,
    server,
    sql: {
      all: (query, ...params) => onDatabase().all(query, ...params),
      get: (query, ...params) => onDatabase().get(query, ...params),
      run: (query, ...params) => onDatabase().run(query, ...params),
      exec: (statements) => onDatabase().exec(statements),
    },
    cookie: '',
    logs,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers)
      if (t.cookie && !headers.has('cookie')) headers.set('cookie', t.cookie)
      return fetch(t.url + path, { ...init, headers, redirect: 'manual' })
    },
    async restart(whileStopped) {
      const port = new URL(t.url).port
      await server.stop()
      await whileStopped?.()
      server = await startServer(configFor(port), { log, clock: options.clock, testHooks: options.testHooks })
      t.server = server
      t.url = server.url
    },
    async stop() {
      try {
        await server.stop()
      } finally {
        await database?.drop()
        await bucket?.drop()
        rmSync(dataDir, { recursive: true, force: true })
      }
    },
  }
  t.cookie = await login(t.url, TEST_PASSWORD)
  return t
}

export async function login(url: string, password: string): Promise<string> {
  const response = await fetch(`${url}/login`, { method: 'POST', body: new URLSearchParams({ password }), redirect: 'manual' })
  const setCookie = response.headers.get('set-cookie')
  if (response.status !== 303 || !setCookie) throw new Error(`login failed: ${response.status}`)
  return setCookie.split(';')[0]!
}

/**
 * For a test file whose tests each start their own server: returns a `start` that launches one
 * and registers nothing per test; the server is stopped after the test whatever happened.
 */
export function serverPerTest<S extends TestServer>(launch: (env: Record<string, string>) => Promise<S>) {
  let server: S | undefined
  afterEach(async () => {
    await server?.stop()
    server = undefined
  })
  return async (env: Record<string, string> = {}) => {
    server = await launch(env)
    return server
  }
}

/** Where the blob store keeps the bytes of `sha256`. */
export const blobPath = (server: Pick<TestServer, 'dataDir'>, sha256: string) => join(server.dataDir, 'blobs', sha256.slice(0, 2), sha256)

/**
 * A clock that stands still at the time it was made: for tests of waits that must not run out
 * while a slow machine works (a sign-in blocked for a second stays blocked until the test moves on).
 */
export function standingClock(): () => number {
  const at = Date.now()
  return () => at
}
