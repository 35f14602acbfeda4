import type { Db } from './open.ts'

const statements = new WeakMap<object, Map<string, unknown>>()

/**
 * A query prepared once per database connection and reused: the hot paths (every chunk, every
 * request's session) would otherwise rebuild and re-prepare the same SQL each time.
 */
export function prepared<T>(db: Db, name: string, build: (db: Db) => T): T {
  let byName = statements.get(db)
  if (!byName) statements.set(db, (byName = new Map()))
  let statement = byName.get(name) as T | undefined
  if (statement === undefined) byName.set(name, (statement = build(db)))
  return statement
}
