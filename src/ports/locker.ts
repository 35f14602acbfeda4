/**
 * Mutual exclusion by name, for work that two requests (or, with a shared adapter, two
 * processes) must not do at once. Keys come from the domain:
 * - `blob:<sha256>`: storing or deleting one blob's bytes (a trash purge must not delete bytes
 *   another request is storing);
 * - `chunk:<upload>:<index>`: writing one chunk;
 * - `upload:<id>`: appending to one streamed upload (a tus PATCH).
 *
 * Shaped like tusd's and @tus/server's lockers, so an adapter over a shared service (PostgreSQL
 * advisory locks) can stand in for the in-process one; tests/contracts/locker.ts says what every
 * adapter must do.
 */
export interface Locker {
  /**
   * Waits its turn (first come, first served per key) and resolves with the lock. Rejects with
   * the signal's reason if the signal aborts first; the lock is then never taken.
   */
  lock(key: string, signal?: AbortSignal): Promise<Lock>
  /** The lock if nobody holds or awaits it right now, otherwise null (for "busy, retry" answers). */
  tryLock(key: string): Promise<Lock | null>
}

export interface Lock {
  /** Lets the next waiter in. Releasing again does nothing. */
  release(): Promise<void>
}

/** Runs `work` holding the lock of `key`, releasing it however `work` ends. */
export async function withLock<T>(locker: Locker, key: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const lock = await locker.lock(key, signal)
  try {
    return await work()
  } finally {
    await lock.release()
  }
}

/**
 * Runs `work` holding the locks of several keys, taken one after another in sorted order, so two
 * holders of overlapping sets never wait for each other.
 */
export function withLocks<T>(locker: Locker, keys: string[], work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const [first, ...rest] = [...new Set(keys)].sort()
  return first === undefined ? work() : withLock(locker, first, () => withLocks(locker, rest, work, signal), signal)
}
