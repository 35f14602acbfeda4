import { and, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm'
import type { Db } from './types.ts'
import { folders, links, uploads } from './schema.ts'

export type LinkRow = typeof links.$inferSelect
export type NewLink = typeof links.$inferInsert

import { linkIdOf, linkOwner, type LinkUsage } from '../../core/records.ts'

export { linkIdOf, linkOwner, type LinkUsage }

export function findLinkByTokenHash(db: Db, tokenHash: string): LinkRow | undefined {
  return db.select().from(links).where(eq(links.tokenHash, tokenHash)).get()
}

export function findLink(db: Db, id: number): LinkRow | undefined {
  return db.select().from(links).where(eq(links.id, id)).get()
}

export function allLinks(db: Db): LinkRow[] {
  return db.select().from(links).orderBy(desc(links.createdAt), desc(links.id)).all()
}

export function insertLink(db: Db, row: NewLink): LinkRow {
  return db.insert(links).values(row).returning().get()
}

export function updateLink(db: Db, id: number, change: Partial<NewLink>): LinkRow | undefined {
  return db.update(links).set(change).where(eq(links.id, id)).returning().get()
}

export function deleteLink(db: Db, id: number): LinkRow | undefined {
  return db.delete(links).where(eq(links.id, id)).returning().get()
}

/** What a link has taken in so far; uploads in progress count with their full size (tus partials as bytes only, not as files). */
export function linkUsage(db: Db, linkId: number): LinkUsage {
  const rows = db
    .select({ state: uploads.state, n: sql<number>`coalesce(sum(case when ${uploads.concat} = 'partial' then 0 else 1 end), 0)`, bytes: sql<number>`coalesce(sum(${uploads.totalBytes}), 0)` })
    .from(uploads)
    .where(and(eq(uploads.owner, linkOwner(linkId)), inArray(uploads.state, ['receiving', 'finalizing', 'complete'])))
    .groupBy(uploads.state)
    .all()
  const usage: LinkUsage = { files: 0, fileBytes: 0, inProgress: 0, inProgressBytes: 0 }
  for (const row of rows) {
    if (row.state === 'complete') {
      usage.files += row.n
      usage.fileBytes += row.bytes
    } else {
      usage.inProgress += row.n
      usage.inProgressBytes += row.bytes
    }
  }
  return usage
}

export function linkUploads(db: Db, linkId: number, limit = 200) {
  return db.select().from(uploads).where(eq(uploads.owner, linkOwner(linkId))).orderBy(desc(uploads.updatedAt)).limit(limit).all()
}

/** The password hash that guards a folder: its own or its nearest protected ancestor's. */
export function folderPasswordHash(db: Db, folderId: number): string | null {
  // db.all, not db.get: drizzle's bun-sqlite get() of raw SQL returns the row as an array of values.
  const [row] = db.all<{ password_hash: string | null }>(sql`
    with recursive chain(id, parent_id, password_hash, depth) as (
      select id, parent_id, password_hash, 0 from folders where id = ${folderId}
      union all
      select f.id, f.parent_id, f.password_hash, chain.depth + 1 from folders f join chain on f.id = chain.parent_id
    )
    select password_hash from chain where password_hash is not null order by depth limit 1`)
  return row?.password_hash ?? null
}

export function setFolderPassword(db: Db, folderId: number, passwordHash: string | null) {
  return db.update(folders).set({ passwordHash }).where(eq(folders.id, folderId)).returning().get()
}

export function protectedFolders(db: Db) {
  return db.select({ id: folders.id }).from(folders).where(isNotNull(folders.passwordHash)).all()
}
