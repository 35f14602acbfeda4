import { SQL } from 'bun'
import { sql } from 'drizzle-orm'
import { drizzle, type BunSQLDatabase } from 'drizzle-orm/bun-sql'
import { migrate } from 'drizzle-orm/bun-sql/migrator'
import { fileURLToPath } from 'node:url'
import { StartupError } from '../../startup-error.ts'
import * as schema from './schema.ts'

export type PgDb = BunSQLDatabase<typeof schema> & { $client: SQL }

const MIGRATIONS = fileURLToPath(new URL('../../../drizzle/postgres', import.meta.url))

/** The root folder's id, as in SQLite (src/db/schema.ts). */
const ROOT_FOLDER_ID = 1

/** The advisory lock two instances starting at once take in turn, so one applies the migrations and the other finds them done. */
const MIGRATION_LOCK = 0x64_66_6d_69 // "dfmi"

/**
 * Every connection runs with `synchronous_commit = on` whatever the server's default: a commit
 * Dropfold acknowledges is on PostgreSQL's disk (its WAL flushed) before the answer leaves.
 * TCP keepalives: a session whose instance vanished without closing its socket (its machine lost
 * power, its network went) is ended by the server after about 10 + 3 × 5 = 25 s of silence,
 * with its advisory locks and open transaction, instead of after the kernel's two hours. (An
 * instance killed with SIGKILL closes its socket: its sessions end at once.)
 */
export const CONNECTION_SETTINGS = {
  synchronous_commit: 'on',
  application_name: 'dropfold',
  tcp_keepalives_idle: 10,
  tcp_keepalives_interval: 5,
  tcp_keepalives_count: 3,
} as const

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number
  /** Seconds to wait for a connection before giving up. */
  connectionTimeoutSeconds?: number
  /** When the root folder is created, if it is. */
  now?: number
}

/**
 * Connects to PostgreSQL at `url`, applies pending migrations (drizzle/postgres/) and ensures
 * the root folder. A URL that is not a PostgreSQL URL, or a server that cannot be reached or
 * refuses us, is a StartupError whose message says which (never the password).
 */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<PgDb> {
  const where = describe(url)
  const client = new SQL(url, {
    max: options.max ?? 10,
    connectionTimeout: options.connectionTimeoutSeconds ?? 10,
    connection: CONNECTION_SETTINGS,
  })
  try {
    await client`select 1`
  } catch (error) {
    await client.close({ timeout: 0 }).catch(() => {})
    throw new StartupError(`cannot connect to PostgreSQL at ${where}: ${reason(error)}`)
  }
  try {
    await migrateOnce(client, options.now ?? Date.now())
  } catch (error) {
    await client.close({ timeout: 0 }).catch(() => {})
    throw new StartupError(`cannot prepare the PostgreSQL database at ${where}: ${reason(error)}`)
  }
  return drizzle({ client, schema }) as PgDb
}

/** Applies the migrations and creates the root folder, holding an advisory lock on one connection meanwhile. */
async function migrateOnce(client: SQL, now: number) {
  const connection = await client.reserve()
  try {
    await connection`select pg_advisory_lock(${MIGRATION_LOCK})`
    const db = drizzle({ client: connection, schema })
    await migrate(db, { migrationsFolder: MIGRATIONS })
    const created = await db
      .insert(schema.folders)
      .overridingSystemValue()
      .values({ id: ROOT_FOLDER_ID, parentId: null, name: '', createdAt: now })
      .onConflictDoNothing()
      .returning({ id: schema.folders.id })
    // The root took id 1 explicitly: the identity must not hand out 1 again.
    if (created.length) await db.execute(sql`select setval(pg_get_serial_sequence('folders', 'id'), ${ROOT_FOLDER_ID})`)
  } finally {
    await connection`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {})
    connection.release()
  }
}

const EXAMPLE = 'postgres://user:password@host:5432/database'

/** The URL without its password, for messages; or a StartupError if it is no PostgreSQL URL. */
function describe(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new StartupError(`DATABASE_URL is not a URL: expected ${EXAMPLE}`)
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new StartupError(`DATABASE_URL must be a postgres:// URL (it starts with "${parsed.protocol}"): expected ${EXAMPLE}`)
  }
  return `${parsed.hostname || 'localhost'}:${parsed.port || 5432}${parsed.pathname}`
}

/** What went wrong, with the driver's code when it has one ("Failed to connect" alone says little). */
function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message
}
