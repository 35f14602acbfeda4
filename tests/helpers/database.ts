import { existsSync } from 'node:fs'
import { join } from 'node:path'

/**
 * SQL a test runs on the database of the server it started, whichever backend that is: the
 * SQLite file's own connection, or the test's PostgreSQL database. For what the store's port
 * has no operation for (count the rows of a table, put a row in a state no request makes).
 *
 * Synchronous on both backends, so every assertion reads exactly as on SQLite (a forgotten
 * `await` could make `expect(rows(…)).not.toEqual(…)` pass on a promise). On PostgreSQL each
 * query runs through `psql` in a child process: it holds no connection that could outlive the
 * test database, and it is bounded by a lock and statement timeout.
 *
 * Queries are written in the SQL both dialects share (same tables and columns): `?` marks a
 * parameter; PostgreSQL's booleans come back as 1 and 0, like SQLite's.
 */
export interface TestSql {
  all<T = Record<string, unknown>>(query: string, ...params: Param[]): T[]
  get<T = Record<string, unknown>>(query: string, ...params: Param[]): T | null
  run(query: string, ...params: Param[]): void
  /** Several statements separated by `;`, no parameters, in one transaction. */
  exec(statements: string): void
}

export type Param = string | number | boolean | null

type SqliteClient = {
  query(query: string): { all(...params: Param[]): unknown[]; get(...params: Param[]): unknown; run(...params: Param[]): unknown }
  exec(statements: string): unknown
  transaction(work: () => void): () => void
}

export function sqliteSql(client: SqliteClient): TestSql {
  return {
    all: <T>(query: string, ...params: Param[]) => client.query(query).all(...params) as T[],
    get: <T>(query: string, ...params: Param[]) => (client.query(query).get(...params) as T | null) ?? null,
    run: (query: string, ...params: Param[]) => void client.query(query).run(...params),
    exec: (statements: string) => client.transaction(() => void client.exec(statements))(),
  }
}

export function postgresSql(url: string): TestSql {
  const all = <T>(query: string, ...params: Param[]) => {
    const statement = bind(query.trim().replace(/;\s*$/, ''), params)
    const output = psql(url, returnsRows(statement) ? aggregated(statement) : statement, returnsRows(statement))
    return returnsRows(statement) ? (JSON.parse(output) as Record<string, unknown>[]).map(sqliteShaped) as T[] : []
  }
  return {
    all,
    get: <T>(query: string, ...params: Param[]) => all<T>(query, ...params)[0] ?? null,
    run: (query: string, ...params: Param[]) => void all(query, ...params),
    exec: (statements: string) => void psql(url, `begin; ${statements}; commit`, false),
  }
}

const returnsRows = (statement: string) => /^\s*(select|with|values)\b/i.test(statement) || /\breturning\b/i.test(statement)

/** The statement's rows as one JSON array (a data-modifying statement with `returning` as a CTE, where PostgreSQL allows one). */
const aggregated = (statement: string) =>
  /^\s*(insert|update|delete)\b/i.test(statement)
    ? `with t as (${statement}) select coalesce(json_agg(t), '[]'::json) from t`
    : `select coalesce(json_agg(t), '[]'::json) from (${statement}) t`

/** SQLite has no booleans: its flags read as 1 and 0, and tests compare with those. */
function sqliteShaped(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'boolean' ? Number(v) : v]))
}

/** Replaces each `?` outside quotes by its parameter as a literal. */
function bind(query: string, params: Param[]): string {
  let out = ''
  let next = 0
  let quote: string | null = null
  for (const ch of query) {
    if (quote) {
      if (ch === quote) quote = null
      out += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      out += ch
    } else if (ch === '?') {
      if (next >= params.length) throw new Error(`too few parameters for: ${query}`)
      out += literal(params[next++]!)
    } else out += ch
  }
  if (next !== params.length) throw new Error(`too many parameters for: ${query}`)
  return out
}

function literal(value: Param): string {
  if (value === null) return 'null'
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`)
    return String(value)
  }
  if (typeof value === 'boolean') return String(value)
  return `'${value.replaceAll("'", "''")}'`
}

const PSQL = [join(process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin', 'psql'), '/usr/bin/psql'].find(existsSync) ?? 'psql'

function psql(url: string, statement: string, wantsOutput: boolean): string {
  const result = Bun.spawnSync([PSQL, url, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', statement], {
    env: { ...process.env, PGOPTIONS: '-c lock_timeout=20000 -c statement_timeout=30000' },
    timeout: 45_000,
  })
  if (result.exitCode !== 0) throw new Error(`psql failed (${result.exitCode}) on: ${statement}\n${result.stderr.toString()}`)
  return wantsOutput ? result.stdout.toString().trim() : ''
}
