import { and, desc, eq, gt, lt, ne, or, sql, type SQL } from 'drizzle-orm'
import type { ActivityLog, LinkRecords, MetadataStore, Repositories, SessionRecords, Settings } from '../../ports/metadata.ts'
import { library } from './library.ts'
import { openPostgres, type PgDb, type PostgresOptions } from './open.ts'
import { bytewise, likePattern, type Q } from './queries.ts'
import { activity, links, sessions, settings } from './schema.ts'
import { linkUsage, uploadRecords } from './uploads.ts'

/**
 * The metadata store on PostgreSQL (Drizzle over Bun's SQL client, a pool of connections), for
 * several instances on one database. Each operation is atomic on its own: one statement where it
 * can be (every hot one: a chunk, its claim of the finalisation, a find), else one transaction.
 * Commits are durable when they return (every connection runs with synchronous_commit on), so
 * durable() has nothing to wait for. transaction() is a PostgreSQL transaction on a connection of
 * its own: other requests go on, on other connections, and nothing of theirs lands inside it.
 */
export class PostgresMetadataStore implements MetadataStore {
  readonly uploads: Repositories['uploads']
  readonly library: Repositories['library']
  readonly links: Repositories['links']
  readonly sessions: Repositories['sessions']
  readonly activity: Repositories['activity']
  readonly settings: Repositories['settings']

  constructor(readonly db: PgDb) {
    const repos = repositories(db, true)
    this.uploads = repos.uploads
    this.library = repos.library
    this.links = repos.links
    this.sessions = repos.sessions
    this.activity = repos.activity
    this.settings = repos.settings
  }

  /** Connects to `url` and applies pending migrations (see openPostgres for what fails how). */
  static async open(url: string, options?: PostgresOptions): Promise<PostgresMetadataStore> {
    return new PostgresMetadataStore(await openPostgres(url, options))
  }

  transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => work(repositories(tx, false)))
  }

  async durable(): Promise<void> {}

  async close(): Promise<void> {
    await this.db.$client.close()
  }
}

/** The repositories over `q`: the pool (`alone`: each operation on a connection of its own) or one transaction. */
function repositories(q: Q, alone: boolean): Repositories {
  return { uploads: uploadRecords(q, alone), library: library(q), links: linkRecords(q), sessions: sessionRecords(q), activity: activityLog(q), settings: settingsOf(q) }
}

function linkRecords(q: Q): LinkRecords {
  const find = async (id: number) => (await q.select().from(links).where(eq(links.id, id)))[0]
  return {
    find,
    findByTokenHash: async (tokenHash) => (await q.select().from(links).where(eq(links.tokenHash, tokenHash)))[0],
    all: () => q.select().from(links).orderBy(desc(links.createdAt), desc(links.id)),
    create: async (link) => (await q.insert(links).values(link).returning())[0]!,
    update: async (id, change) => (Object.values(change).some((value) => value !== undefined) ? (await q.update(links).set(change).where(eq(links.id, id)).returning())[0] : find(id)),
    remove: async (id) => (await q.delete(links).where(eq(links.id, id)).returning())[0],
    usage: (linkId) => linkUsage(q, linkId),
  }
}

function sessionRecords(q: Q): SessionRecords {
  return {
    async create(session) {
      // One statement: the new session in, the expired ones out.
      await q.execute(sql`with added as (
        insert into sessions (id_hash, created_at, expires_at, client_address)
        values (${session.idHash}, ${session.createdAt}, ${session.expiresAt}, ${session.clientAddress}))
        delete from sessions where expires_at < ${session.createdAt}`)
    },
    isLive: async (idHash, now) =>
      (
        await q
          .select({ idHash: sessions.idHash })
          .from(sessions)
          .where(and(eq(sessions.idHash, idHash), gt(sessions.expiresAt, now)))
      ).length > 0,
    async remove(idHash) {
      await q.delete(sessions).where(eq(sessions.idHash, idHash))
    },
    async removeAll(exceptIdHash) {
      await q.delete(sessions).where(exceptIdHash ? ne(sessions.idHash, exceptIdHash) : undefined)
    },
  }
}

function activityLog(q: Q): ActivityLog {
  return {
    async log(at, entry) {
      const details = entry.details == null ? null : typeof entry.details === 'string' ? entry.details : JSON.stringify(entry.details)
      await q.insert(activity).values({ at, actor: entry.actor, action: entry.action, target: entry.target ?? null, details, clientAddress: entry.clientAddress ?? null })
    },
    list(query) {
      const conditions: (SQL | undefined)[] = []
      if (query.action) conditions.push(eq(activity.action, query.action))
      if (query.actor) conditions.push(eq(activity.actor, query.actor))
      if (query.text) {
        const pattern = likePattern(query.text)
        conditions.push(or(sql`${activity.target} ilike ${pattern}`, sql`${activity.details} ilike ${pattern}`))
      }
      if (query.beforeId) conditions.push(lt(activity.id, query.beforeId))
      return q
        .select()
        .from(activity)
        .where(and(...conditions))
        .orderBy(desc(activity.id))
        .limit(query.limit)
    },
    // Grouped, not DISTINCT: PostgreSQL orders a DISTINCT only by what it selects, and the byte order is an expression.
    actions: async () => (await q.select({ action: activity.action }).from(activity).groupBy(activity.action).orderBy(bytewise(activity.action))).map((r) => r.action),
  }
}

function settingsOf(q: Q): Settings {
  return {
    get: async (key) => (await q.select().from(settings).where(eq(settings.key, key)))[0]?.value ?? null,
    async set(key, value) {
      await q.insert(settings).values({ key, value }).onConflictDoUpdate({ target: settings.key, set: { value } })
    },
    async setIfAbsent(key, value) {
      // One statement that answers the value in force even when another instance's insert won a
      // moment ago: the "update" to itself locks the row it conflicted with and reads its latest version.
      const [row] = await q
        .insert(settings)
        .values({ key, value })
        .onConflictDoUpdate({ target: settings.key, set: { value: sql`${settings.value}` } })
        .returning({ value: settings.value })
      return row!.value
    },
  }
}
