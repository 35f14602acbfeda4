import { test } from 'bun:test'

/**
 * Which database servers started by startTestServer run on: `TEST_BACKEND=postgres` (with
 * TEST_DATABASE_URL, as `.ci/run` sets for its second run of the HTTP suites) puts each on a
 * fresh PostgreSQL database; anything else, SQLite in its data directory.
 */
export const TEST_BACKEND: 'sqlite' | 'postgres' = process.env.TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite'

if (TEST_BACKEND === 'postgres' && !process.env.TEST_DATABASE_URL) {
  throw new Error('TEST_BACKEND=postgres needs TEST_DATABASE_URL (a PostgreSQL server whose user may create databases): see npm run test:postgres')
}

/**
 * The `test` of a test file that looks into SQLite itself (`server.sqlite`: rows counted or
 * changed with SQL) rather than only through HTTP or the store's port: `const test = sqliteTest(why)`.
 * Its tests run on SQLite; on the PostgreSQL run they are skipped, and the run's last lines name
 * them with `why`.
 */
export function sqliteTest(why: string): typeof test {
  if (TEST_BACKEND === 'sqlite') return test
  const skipped = test.skip as unknown as (name: string, ...rest: unknown[]) => void
  const skip = (name: string, ...rest: unknown[]) => {
    skippedOnPostgres().push(`${name} (${why})`)
    skipped(`${name} [SQLite only: ${why}]`, ...rest)
  }
  // Each row of a table is one test: it is named (once, with the name's pattern) like the others.
  const each = (table: unknown[]) => (name: string, ...rest: unknown[]) => {
    skippedOnPostgres().push(`${name} (${why}, ${table.length} cases)`)
    ;(test.skip.each as unknown as (t: unknown[]) => (n: string, ...r: unknown[]) => void)(table)(`${name} [SQLite only: ${why}]`, ...rest)
  }
  return Object.assign(skip, { each, skip: test.skip, only: test.skip, if: () => test.skip, todo: test.todo }) as unknown as typeof test
}

/** The tests skipped on PostgreSQL in this run, shared by every test file (bun runs them in one process). */
export function skippedOnPostgres(): string[] {
  const shared = globalThis as { dropfoldSqliteOnly?: string[] }
  return (shared.dropfoldSqliteOnly ??= [])
}
