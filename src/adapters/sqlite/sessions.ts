import { and, eq, gt, lt, ne, sql } from 'drizzle-orm'
import { prepared } from './prepared.ts'
import { sessions } from './schema.ts'
import type { Db } from './types.ts'

/** Keeps a new session and forgets the expired ones. */
export function createSession(db: Db, session: { idHash: string; createdAt: number; expiresAt: number; clientAddress: string | null }) {
  db.insert(sessions).values(session).run()
  db.delete(sessions).where(lt(sessions.expiresAt, session.createdAt)).run()
}

export function isLiveSession(db: Db, idHash: string, now: number): boolean {
  const statement = prepared(db, 'isValidSession', (d) =>
    d
      .select({ idHash: sessions.idHash })
      .from(sessions)
      .where(and(eq(sessions.idHash, sql.placeholder('idHash')), gt(sessions.expiresAt, sql.placeholder('now'))))
      .prepare(),
  )
  return statement.get({ idHash, now }) !== undefined
}

export function deleteSession(db: Db, idHash: string) {
  db.delete(sessions).where(eq(sessions.idHash, idHash)).run()
}

/** Ends every session, or every one but `exceptIdHash`'s. */
export function deleteSessions(db: Db, exceptIdHash?: string) {
  if (exceptIdHash) db.delete(sessions).where(ne(sessions.idHash, exceptIdHash)).run()
  else db.delete(sessions).run()
}
