import { createHash, randomBytes } from 'node:crypto'
import type { Repositories } from '../ports/metadata.ts'

export const SESSION_COOKIE = 'dropfold_session'

/** Sessions are kept by their id's hash: a stolen database does not yield live sessions. */
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

type Store = Pick<Repositories, 'sessions'>

export async function createSession(store: Store, args: { now: number; ttlMs: number; clientAddress: string | null }): Promise<string> {
  const token = randomBytes(32).toString('base64url')
  await store.sessions.create({ idHash: hashToken(token), createdAt: args.now, expiresAt: args.now + args.ttlMs, clientAddress: args.clientAddress })
  return token
}

export async function isValidSession(store: Store, token: string | undefined, now: number): Promise<boolean> {
  if (!token || token.length > 100) return false
  return store.sessions.isLive(hashToken(token), now)
}

export async function deleteSession(store: Store, token: string | undefined) {
  if (token) await store.sessions.remove(hashToken(token))
}

/** Ends every session, or every one but `except`'s (the admin who changed the password stays signed in). */
export async function deleteSessions(store: Store, options: { except?: string } = {}) {
  await store.sessions.removeAll(options.except ? hashToken(options.except) : undefined)
}
