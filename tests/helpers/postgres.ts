import { SQL } from 'bun'
import { afterAll, beforeAll, describe, test } from 'bun:test'

/**
 * The server PostgreSQL tests run against: a URL whose user may create databases. `.ci/run`
 * starts a private cluster and sets it; `npm run test:postgres` does the same for one run.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined

/**
 * `describe` for a suite that needs PostgreSQL. Without TEST_DATABASE_URL the suite shows as one
 * skipped test, and the run ends with a line naming every suite skipped so and how to run them
 * (tests/helpers/postgres-skips.ts, preloaded by bunfig.toml).
 */
export function describePostgres(name: string, body: () => void) {
  if (TEST_DATABASE_URL) return describe(name, body)
  skippedPostgresSuites().push(name)
  test.skip(`${name}: needs PostgreSQL (set TEST_DATABASE_URL, or run \`npm run test:postgres\`)`, () => {})
}

/** The suites skipped in this run, shared by every test file (bun runs them in one process). */
export function skippedPostgresSuites(): string[] {
  const shared = globalThis as { dropfoldSkippedPostgres?: string[] }
  return (shared.dropfoldSkippedPostgres ??= [])
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
