/**
 * Slows down password guessing per client (and later per target): a few mistakes are free,
 * after that each further failure doubles the wait before the next attempt is heard.
 */
export class AttemptLimiter {
  private readonly entries = new Map<string, { failures: number; blockedUntil: number; lastAt: number }>()

  constructor(
    private readonly options = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, forgetAfterMs: 24 * 3_600_000 },
  ) {}

  /** Milliseconds the key must still wait; 0 when an attempt may be made now. */
  waitMs(key: string, now: number): number {
    const entry = this.entries.get(key)
    return entry ? Math.max(0, entry.blockedUntil - now) : 0
  }

  failed(key: string, now: number) {
    this.prune(now)
    const entry = this.entries.get(key) ?? { failures: 0, blockedUntil: 0, lastAt: now }
    entry.failures++
    entry.lastAt = now
    const over = entry.failures - this.options.freeFailures
    if (over >= 0) {
      entry.blockedUntil = now + Math.min(this.options.baseDelayMs * 2 ** over, this.options.maxDelayMs)
    }
    this.entries.set(key, entry)
  }

  succeeded(key: string) {
    this.entries.delete(key)
  }

  private prune(now: number) {
    if (this.entries.size < 10_000) return
    for (const [key, entry] of this.entries) {
      if (now - entry.lastAt > this.options.forgetAfterMs) this.entries.delete(key)
    }
  }
}
