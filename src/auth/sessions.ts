import { randomBytes, createHash } from 'node:crypto'
import { and, eq, gt, lt, ne, sql } from 'drizzle-orm'
import { prepared } from '../db/prepared.ts'
import type { Db } from '../db/open.ts'
import { sessions } from '../db/schema.ts'

export const SESSION_COOKIE = 'dropfold_session'

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

export function createSession(db: Db, args: { now: number; ttlMs: number; clientAddress: string | null }): string {
  const token = randomBytes(32).toString('base64url')
  db.insert(sessions)
    .values({ idHash: hashToken(token), createdAt: args.now, expiresAt: args.now + args.ttlMs, clientAddress: args.clientAddress })
    .run()
  db.delete(sessions).where(lt(sessions.expiresAt, args.now)).run()
  return token
}

export function isValidSession(db: Db, token: string | undefined, now: number): boolean {
  if (!token || token.length > 100) return false
  const statement = prepared(db, 'isValidSession', (d) =>
    d
      .select({ idHash: sessions.idHash })
      .from(sessions)
      .where(and(eq(sessions.idHash, sql.placeholder('idHash')), gt(sessions.expiresAt, sql.placeholder('now'))))
      .prepare(),
  )
  return statement.get({ idHash: hashToken(token), now }) !== undefined
}

export function deleteSession(db: Db, token: string | undefined) {
  if (token) db.delete(sessions).where(eq(sessions.idHash, hashToken(token))).run()
}

/** Ends every session, or every one but `except`'s (the admin who changed the password stays signed in). */
export function deleteSessions(db: Db, options: { except?: string } = {}) {
  if (options.except) db.delete(sessions).where(ne(sessions.idHash, hashToken(options.except))).run()
  else db.delete(sessions).run()
}
