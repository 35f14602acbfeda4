import type { Database } from 'bun:sqlite'
import type { BunSQLiteDatabase } from 'drizzle-orm/bun-sqlite'
import type * as schema from './schema.ts'

/** An open database: Drizzle over bun:sqlite, with the connection itself at hand. */
export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database }
