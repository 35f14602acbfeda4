import { Database } from 'bun:sqlite'
import { drizzle } from 'drizzle-orm/bun-sqlite'
import { migrate } from 'drizzle-orm/bun-sqlite/migrator'
import { fileURLToPath } from 'node:url'
import { BUSY_TIMEOUT_MS } from './busy.ts'
import { registerDatabase } from './prepared.ts'
import * as schema from './schema.ts'
import type { Db } from './types.ts'

export type { Db }

const MIGRATIONS = fileURLToPath(new URL('../../../drizzle', import.meta.url))

/** Opens (creating if needed) the database, applies pending migrations and ensures the root folder. */
export function openDatabase(path: string, now = Date.now()): Db {
  const sqlite = new Database(path, { create: true, strict: true })
  sqlite.exec('PRAGMA journal_mode = WAL')
  // NORMAL: commits do not wait for the disk. What must survive a power cut (an acknowledged
  // chunk, a commit a rename relies on) is made durable by durable() in one shared WAL sync.
  sqlite.exec('PRAGMA synchronous = NORMAL')
  sqlite.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`)
  const db = drizzle({ client: sqlite, schema }) as Db
  registerDatabase(db)
  // Off while migrating: the migrator runs in one transaction, where SQLite ignores
  // `PRAGMA foreign_keys`, so a migration's table rebuild would cascade deletes into live rows.
  sqlite.exec('PRAGMA foreign_keys = OFF')
  migrate(db, { migrationsFolder: MIGRATIONS })
  sqlite.exec('PRAGMA foreign_keys = ON')
  sqlite
    .query('INSERT OR IGNORE INTO folders (id, parent_id, name, created_at) VALUES (?, NULL, ?, ?)')
    .run(schema.ROOT_FOLDER_ID, '', now)
  return db
}
