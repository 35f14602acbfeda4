import { SQL } from 'bun'
import { TEST_DATABASE_URL } from './postgres.ts'

/**
 * Round trips counted by the server itself: each statement is one (the adapters await every
 * statement before the next; BEGIN and COMMIT count). Needs pg_stat_statements loaded
 * (.ci/services/postgres.sh does) and created in the database (`create extension`).
 */

/** Whether the test server counts statements (shared_preload_libraries = pg_stat_statements). */
export async function countsStatements(): Promise<boolean> {
  if (!TEST_DATABASE_URL) return false
  const admin = new SQL(TEST_DATABASE_URL, { max: 1 })
  try {
    const [row] = await admin`select current_setting('shared_preload_libraries') like '%pg_stat_statements%' as loaded`
    return row.loaded
  } finally {
    await admin.close()
  }
}

/** Statements the server ran in the database `client` is on so far (the counting queries excluded). */
export async function statementsRun(client: SQL): Promise<number> {
  const [row] = await client`
    select coalesce(sum(calls), 0)::int as n from pg_stat_statements
    where dbid = (select oid from pg_database where datname = current_database()) and query not like '%pg_stat_statements%'`
  return row.n
}

/** The statements `operation` makes the server run. */
export async function statementsOf(client: SQL, operation: () => Promise<unknown>): Promise<number> {
  const before = await statementsRun(client)
  await operation()
  return (await statementsRun(client)) - before
}
