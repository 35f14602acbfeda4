import { DomainError } from '../core/errors.ts'

/**
 * Errors of the environment that may pass (a disk error, a full disk, a permission fixed by hand,
 * a database held by another program): a system call's errno, an SQLite result code, or the
 * store's own word for it (a DomainError of kind 'unavailable'). What Dropfold decides itself
 * (any other DomainError: wrong size, bytes missing) and bugs have no such code.
 * SQLITE_CONSTRAINT is our own rule refusing a row, so it is no passing fault either.
 */
export function isPassingFault(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DomainError) return e.kind === 'unavailable'
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (/^E[A-Z0-9]+$/.test(code) || (code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT')))) return true
  }
  return false
}

/** What a client hears when its upload's finalisation met a passing fault: all its bytes are kept. */
export const finalisationDeferred = () =>
  new DomainError('unavailable', 'All bytes arrived, but the file could not be stored yet (a disk or database error on the server); they are kept and storing is tried again on the next request', { retryAfterSeconds: 5 })
