import type { Db } from './types.ts'

const statements = new WeakMap<object, Map<string, unknown>>()
const databases = new WeakMap<object, Db>()

// A transaction handle shares its database's session: statements are kept per session, so one
// prepared on the database also serves inside its transactions (same connection).
const sessionOf = (db: Db) => (db as unknown as { session?: object }).session ?? db

/** Called once per connection by openDatabase, so statements are always built on the database itself. */
export function registerDatabase(db: Db) {
  databases.set(sessionOf(db), db)
}

/**
 * A query prepared once per database connection and reused: the hot paths (every chunk, every
 * request's session) would otherwise rebuild and re-prepare the same SQL each time.
 */
export function prepared<T>(db: Db, name: string, build: (db: Db) => T): T {
  const session = sessionOf(db)
  let byName = statements.get(session)
  if (!byName) statements.set(session, (byName = new Map()))
  let statement = byName.get(name) as T | undefined
  if (statement === undefined) byName.set(name, (statement = build(databases.get(session) ?? db)))
  return statement
}

/**
 * Runs `work` in one transaction on the connection itself (or inside the one already open).
 * The hot paths use this instead of drizzle's transaction(), which builds a transaction object
 * per call; the statements they run are prepared on the connection anyway.
 */
export function atomically<T>(db: Db, work: () => T): T {
  const client = db.$client
  if (client.inTransaction) return work()
  const control = prepared(db, 'transaction control', (d) => ({
    begin: d.$client.prepare('BEGIN'),
    commit: d.$client.prepare('COMMIT'),
    rollback: d.$client.prepare('ROLLBACK'),
  }))
  control.begin.run()
  try {
    const result = work()
    control.commit.run()
    return result
  } catch (error) {
    if (client.inTransaction) control.rollback.run()
    throw error
  }
}
