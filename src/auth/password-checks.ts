import { FORGET_AFTER_MS, type AttemptStore, type Claim } from '../ports/attempts.ts'

/**
 * Every password check in the server goes through here. An argon2id check costs ~19 MiB and a
 * core for tens of milliseconds, so checks are bounded: one at a time per key, a few at a time
 * overall, a bounded queue behind them, and past it an immediate "busy" instead of a backlog.
 */
export interface CheckLimits {
  /** Checks running at once for one key (one client, one client on one link). */
  perKey: number
  /** Checks running at once in the whole server. */
  total: number
  /** Checks waiting for a turn; past this an attempt is answered 503 at once. */
  queued: number
}

export const CHECK_LIMITS: CheckLimits = { perKey: 1, total: 2, queued: 32 }

export type CheckOutcome =
  | { kind: 'right' }
  | { kind: 'wrong' }
  /** Not checked: too many failures (429) or too many checks under way (503). */
  | { kind: 'refused'; status: 429 | 503; retryAfterSeconds: number }

interface Waiter {
  key: string
  start: () => void
}

export class PasswordChecks {
  private running = 0
  private readonly runningPerKey = new Map<string, number>()
  private readonly queue: Waiter[] = []
  private lastPrune = 0

  constructor(
    private readonly store: AttemptStore,
    private readonly limits: CheckLimits = CHECK_LIMITS,
  ) {}

  /**
   * Reserves the attempt on every claimed key (refused at once if one must still wait), then
   * runs `verify` when a slot is free. A right password resets or refunds each key.
   */
  async check(args: { claims: Claim[]; slotKey: string; now: number; verify: () => Promise<boolean> }): Promise<CheckOutcome> {
    await this.pruneNowAndThen(args.now)
    const reservation = await this.store.reserve(args.claims, args.now)
    if (!reservation.granted) return { kind: 'refused', status: 429, retryAfterSeconds: Math.ceil(reservation.waitMs / 1000) }
    let release: () => void
    try {
      release = await this.slot(args.slotKey)
    } catch {
      await this.store.refund(reservation.counted)
      return { kind: 'refused', status: 503, retryAfterSeconds: 1 }
    }
    let right: boolean
    try {
      right = await args.verify()
    } finally {
      release()
    }
    if (!right) return { kind: 'wrong' }
    await this.store.reset(reservation.counted.filter((c) => c.onSuccess === 'reset').map((c) => c.key))
    await this.store.refund(reservation.counted.filter((c) => c.onSuccess === 'refund'))
    return { kind: 'right' }
  }

  /** Checks running and waiting right now (for tests and diagnostics). */
  get load() {
    return { running: this.running, queued: this.queue.length }
  }

  private slot(key: string): Promise<() => void> {
    if (this.mayStart(key)) return Promise.resolve(this.start(key))
    if (this.queue.length >= this.limits.queued) return Promise.reject(new Error('busy'))
    return new Promise((resolve) => this.queue.push({ key, start: () => resolve(this.start(key)) }))
  }

  private mayStart(key: string) {
    return this.running < this.limits.total && (this.runningPerKey.get(key) ?? 0) < this.limits.perKey
  }

  private start(key: string): () => void {
    this.running++
    this.runningPerKey.set(key, (this.runningPerKey.get(key) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      this.running--
      const left = this.runningPerKey.get(key)! - 1
      if (left === 0) this.runningPerKey.delete(key)
      else this.runningPerKey.set(key, left)
      this.startWaiting()
    }
  }

  /** The first waiting checks whose key has room, in arrival order. */
  private startWaiting() {
    for (let i = 0; i < this.queue.length && this.running < this.limits.total; ) {
      const waiter = this.queue[i]!
      if (this.mayStart(waiter.key)) {
        this.queue.splice(i, 1)
        waiter.start()
      } else i++
    }
  }

  private async pruneNowAndThen(now: number) {
    if (now - this.lastPrune < 60_000) return
    this.lastPrune = now
    await this.store.prune(now - FORGET_AFTER_MS, now)
  }
}
