import { getTableColumns, sql, type AnyColumn, type SQL } from 'drizzle-orm'
import type { BunSQLQueryResultHKT } from 'drizzle-orm/bun-sql'
import type { PgDatabase, PgTable } from 'drizzle-orm/pg-core'
import * as schema from './schema.ts'

/** The database, or a transaction on it: the repositories run on either. */
export type Q = PgDatabase<BunSQLQueryResultHKT, typeof schema>

/** The rows a raw statement returned, as objects. */
export async function rows<T>(q: Q, query: SQL): Promise<T[]> {
  return (await q.execute(query)) as unknown as T[]
}

/**
 * A table's columns for a raw statement's select list or RETURNING, under their record names,
 * bigint columns as numbers (float8 holds every millisecond timestamp and byte count exactly),
 * so the rows of a CTE come back as the same records the query builder gives.
 */
export function recordColumns(table: PgTable): SQL {
  const list = Object.entries(getTableColumns(table)).map(([key, column]) => {
    const cast = column.columnType === 'PgBigInt53' ? '::float8' : ''
    return `"${column.name}"${cast} as "${key}"`
  })
  return sql.raw(list.join(', '))
}

/** A LIKE pattern (backslash escapes) for text containing `text`. */
export const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

/** PostgreSQL's unique_violation (a name another transaction took first), as the driver says it or inside Drizzle's wrapper. */
export function isUniqueViolation(error: unknown): boolean {
  for (let e = error as { errno?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.errno === '23505') return true
  }
  return false
}

/** Transaction-level advisory locks (released at commit or rollback), by name. */
export const xactLock = (q: Q, name: string) => q.execute(sql`select pg_advisory_xact_lock(hashtextextended(${name}, 0))`)

/** Text in byte order, as SQLite's BINARY collation sorts it, whatever the database's locale. */
export const bytewise = (column: SQL.Aliased | AnyColumn) => sql`${column} collate "C"`
