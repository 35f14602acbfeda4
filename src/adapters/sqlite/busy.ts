import { DomainError } from '../../core/errors.ts'

/**
 * How long a statement waits for another process's write lock (sqlite3, a backup tool) before
 * giving up with SQLITE_BUSY. bun:sqlite waits on the event loop's thread, so every request
 * waits this long with it: short, and the client is told to come back (see busyAsDomainError).
 */
export const BUSY_TIMEOUT_MS = 200

/** SQLITE_BUSY (and its extended codes), also when Drizzle wraps it as a query's cause. */
export function isDatabaseBusy(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) return true
  }
  return false
}

/** A database held by another process is a passing state: come back in a second. */
export function busyAsDomainError(error: unknown): unknown {
  if (!isDatabaseBusy(error)) return error
  return new DomainError('unavailable', 'The database is busy (another program is writing to it); try again shortly', { retryAfterSeconds: 1 })
}
