import { SQL } from 'bun'
import { afterAll, beforeAll } from 'bun:test'
import { describeNeeding, type Service } from './services.ts'

/**
 * The server PostgreSQL tests run against: a URL whose user may create databases. `.ci/run`
 * starts a private cluster and sets it; `npm run test:postgres` does the same for one run.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined

export const POSTGRES: Service = {
  name: 'PostgreSQL',
  missing: () => (TEST_DATABASE_URL ? null : 'TEST_DATABASE_URL is not set'),
  howToRun:
    'Run them with `npm run test:postgres`, which starts a private PostgreSQL 15 cluster for the run, ' +
    'or set TEST_DATABASE_URL=postgres://user@host:port/postgres (a user who may create databases).',
}

/** `describe` for a suite that needs PostgreSQL (see describeNeeding). */
export function describePostgres(name: string, body: () => void) {
  return describeNeeding([POSTGRES], name, body)
}

export interface TestDatabase {
  /** A URL for a database of its own, created empty for this test. */
  url: string
  /** Drops the database, ending any session still on it (a killed child's, a leaked pool's). */
  drop(): Promise<void>
}

/** A fresh, empty database with a random name on the test server. */
export async function freshDatabase(): Promise<TestDatabase> {
  if (!TEST_DATABASE_URL) throw new Error('freshDatabase() needs TEST_DATABASE_URL (use describePostgres)')
  const name = `dropfold_test_${crypto.randomUUID().replaceAll('-', '')}`
  const admin = new SQL(TEST_DATABASE_URL, { max: 1 })
  try {
    await admin.unsafe(`create database ${name}`)
  } finally {
    await admin.close()
  }
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const admin = new SQL(TEST_DATABASE_URL!, { max: 1 })
      try {
        await admin.unsafe(`drop database if exists ${name} with (force)`)
      } finally {
        await admin.close()
      }
    },
  }
}

/** One fresh database for the suite this is called in: created before its first test, dropped after its last. */
export function suiteDatabase(): { readonly url: string } {
  let database: TestDatabase | undefined
  beforeAll(async () => {
    database = await freshDatabase()
  })
  afterAll(() => database?.drop())
  return {
    get url() {
      if (!database) throw new Error('the suite database exists only while its suite runs')
      return database.url
    },
  }
}
