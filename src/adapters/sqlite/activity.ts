import { and, desc, eq, lt, or, sql, type SQL } from 'drizzle-orm'
import type { Db } from './types.ts'
import { activity } from './schema.ts'
import type { ActivityEntry, ActivityQuery } from '../../core/records.ts'

export type { ActivityEntry, ActivityQuery }

export type ActivityRow = typeof activity.$inferSelect


export function logActivity(db: Db, at: number, entry: ActivityEntry) {
  const details = entry.details == null ? null : typeof entry.details === 'string' ? entry.details : JSON.stringify(entry.details)
  db.insert(activity)
    .values({ at, actor: entry.actor, action: entry.action, target: entry.target ?? null, details, clientAddress: entry.clientAddress ?? null })
    .run()
}


export function listActivity(db: Db, q: ActivityQuery): ActivityRow[] {
  const conditions: (SQL | undefined)[] = []
  if (q.action) conditions.push(eq(activity.action, q.action))
  if (q.actor) conditions.push(eq(activity.actor, q.actor))
  if (q.text) {
    const pattern = `%${q.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    conditions.push(or(sql`${activity.target} like ${pattern} escape '\\'`, sql`${activity.details} like ${pattern} escape '\\'`))
  }
  if (q.beforeId) conditions.push(lt(activity.id, q.beforeId))
  return db
    .select()
    .from(activity)
    .where(and(...conditions))
    .orderBy(desc(activity.id))
    .limit(q.limit)
    .all()
}

export function activityActions(db: Db): string[] {
  return db
    .selectDistinct({ action: activity.action })
    .from(activity)
    .orderBy(activity.action)
    .all()
    .map((r) => r.action)
}

