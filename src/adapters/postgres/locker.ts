import { SQL } from 'bun'
import type { Lock, Locker } from '../../ports/locker.ts'
import { MemoryLocker } from '../memory/locker.ts'
import { CONNECTION_SETTINGS } from './open.ts'

type Log = (message: string, context?: Record<string, unknown>) => void

/** Where a release tells the other instances that a key may be free. */
const CHANNEL = 'dropfold_lock_released'

export interface PostgresLockerOptions {
  log?: Log
  /**
   * The longest a waiter goes without asking PostgreSQL again when no release was heard (a
   * holder killed with SIGKILL sends none: its session ends and the lock with it, silently).
   */
  maxPollMs?: number
}

/**
 * Locks shared by every instance on one PostgreSQL database: session-level advisory locks
 * (`pg_try_advisory_lock(hashtextextended(key, 0))`), all held on one connection of this
 * instance, so any number of locks costs one connection, and PostgreSQL drops them all when
 * the instance dies (its socket closes, its session ends).
 *
 * Advisory locks are re-entrant within a session, so PostgreSQL only excludes other instances;
 * in front of it the in-process MemoryLocker queues this instance's own holders, first come
 * first served per key. A waiter whose key another instance holds asks again when a release is
 * NOTIFYed on `dropfold_lock_released`, and at most every `maxPollMs` otherwise.
 */
export class PostgresLocker implements Locker {
  private readonly local = new MemoryLocker()
  /** Wakes the waiters of a key when another instance (or this one) says it released it. */
  private readonly wakers = new Map<string, Set<() => void>>()
  private readonly maxPollMs: number
  private roundTrips = 0

  private constructor(
    private readonly session: SQL,
    private readonly listening: SQL.ListenSubscription,
    options: PostgresLockerOptions,
  ) {
    this.maxPollMs = options.maxPollMs ?? 250
  }

  /** Opens the locker's own connection (and the listener's) to the database at `url`. */
  static async open(url: string, options: PostgresLockerOptions = {}): Promise<PostgresLocker> {
    const log = options.log ?? (() => {})
    let locker: PostgresLocker | undefined
    const session = new SQL(url, {
      max: 1,
      // The session is the locks: it must never be closed for idling or age.
      idleTimeout: 0,
      maxLifetime: 0,
      connection: CONNECTION_SETTINGS,
      onclose: (error) => {
        if (locker && !locker.closing) log('locker: the PostgreSQL session holding the locks closed; its locks are gone', { error: String(error) })
      },
    })
    const listening = await session.listen(CHANNEL, (key) => locker?.wake(key))
    locker = new PostgresLocker(session, listening, options)
    return locker
  }

  private closing = false

  lock(key: string, signal?: AbortSignal): Promise<Lock> {
    const taking = this.take(key, signal)
    // An abort rejects at once, but a caller may look at the outcome only after its own next
    // round trip (as the in-process locker allows): not an unhandled rejection meanwhile.
    taking.catch(() => {})
    return taking
  }

  private async take(key: string, signal?: AbortSignal): Promise<Lock> {
    const local = await this.local.lock(key, signal)
    try {
      while (!(await this.tryShared(key))) await this.released(key, signal)
    } catch (error) {
      await local.release()
      throw error
    }
    return this.handle(key, local)
  }

  async tryLock(key: string): Promise<Lock | null> {
    const local = await this.local.tryLock(key)
    if (!local) return null
    let taken = false
    try {
      taken = await this.tryShared(key)
    } finally {
      if (!taken) await local.release()
    }
    return taken ? this.handle(key, local) : null
  }

  /** Keys held (or being taken) by this instance. */
  keysHeld(): number {
    return this.local.keysHeld()
  }

  /** Advisory locks PostgreSQL says this instance's session holds. */
  async advisoryLocksHeld(): Promise<number> {
    const [row] = await this.query<{ n: number }>(
      this.session`select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and pid = pg_backend_pid()`,
    )
    return row!.n
  }

  /** Waiters refused by PostgreSQL (another instance holds their key) that wait to hear it is released. */
  waitersOnOthers(): number {
    let waiters = 0
    for (const wakers of this.wakers.values()) waiters += wakers.size
    return waiters
  }

  /** Statements sent to PostgreSQL so far (each one round trip): for the bench and tests. */
  statements(): number {
    return this.roundTrips
  }

  /** Closes the connections: every lock this instance holds is released by PostgreSQL. */
  async close(): Promise<void> {
    this.closing = true
    await this.listening.unlisten().catch(() => {})
    await this.session.close()
  }

  private async tryShared(key: string): Promise<boolean> {
    const [row] = await this.query<{ taken: boolean }>(this.session`select pg_try_advisory_lock(hashtextextended(${key}, 0)) as taken`)
    return row!.taken
  }

  private handle(key: string, local: Lock): Lock {
    let released = false
    return {
      release: async () => {
        if (released) return
        released = true
        try {
          await this.query(this.session`select pg_advisory_unlock(hashtextextended(${key}, 0)), pg_notify(${CHANNEL}, ${key})`)
        } finally {
          await local.release()
        }
      },
    }
  }

  /** Resolves when a release of `key` is heard or `maxPollMs` has passed; rejects if `signal` aborts. */
  private released(key: string, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wakers = this.wakers.get(key) ?? this.wakers.set(key, new Set()).get(key)!
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        wakers.delete(wake)
        if (wakers.size === 0) this.wakers.delete(key)
      }
      const wake = () => {
        done()
        resolve()
      }
      const onAbort = () => {
        done()
        reject(signal!.reason)
      }
      const timer = setTimeout(wake, this.maxPollMs)
      wakers.add(wake)
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private wake(key: string) {
    for (const wake of [...(this.wakers.get(key) ?? [])]) wake()
  }

  private query<T>(statement: Promise<unknown>): Promise<T[]> {
    this.roundTrips++
    return statement as Promise<T[]>
  }
}
