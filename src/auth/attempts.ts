/**
 * Password attempts, counted per key ("login:<address>", "unlock:<address>:<link>", …) in a
 * store that outlives the process. An attempt is counted as a failure *before* its password is
 * checked (a reservation) and refunded or reset when it turns out right, so parallel attempts
 * cannot all slip in before the first failure is recorded.
 */

/** A few failures are free; each further one doubles the wait before the next attempt is heard. */
export interface AttemptPolicy {
  freeFailures: number
  baseDelayMs: number
  maxDelayMs: number
}

export interface Claim {
  key: string
  policy: AttemptPolicy
  /** What a right password does to this key: forget its failures, or only take this attempt back. */
  onSuccess: 'reset' | 'refund'
  /** Counted only when this attempt is past the free failures of another claim's key in the same reservation. */
  onlyPast?: { key: string; freeFailures: number }
}

/** One key's part of a granted reservation: enough to take it back exactly. */
export interface Counted {
  key: string
  onSuccess: Claim['onSuccess']
  /** The wait this attempt set (0: none) and the one it replaced. */
  blockedUntil: number
  previousBlockedUntil: number
}

export type Reservation = { granted: true; counted: Counted[] } | { granted: false; waitMs: number }

/** The port: the SQLite adapter today; a PostgreSQL one implements the same four operations. */
export interface AttemptStore {
  /** Atomically: if any claimed key must still wait, nothing changes; else each claim counts one failure. */
  reserve(claims: Claim[], now: number): Promise<Reservation>
  /** The attempt was never checked (or was right): take its failure back. */
  refund(counted: Counted[]): Promise<void>
  /** The password was right: forget these keys' failures. */
  reset(keys: string[]): Promise<void>
  /** Forgets keys with no attempt since `before` and no wait in force. */
  prune(before: number, now: number): Promise<void>
}

/** After `failures` failures under `policy`, the wait until the next attempt (0: none). */
export function waitAfter(failures: number, policy: AttemptPolicy): number {
  const over = failures - policy.freeFailures
  return over < 0 ? 0 : Math.min(policy.baseDelayMs * 2 ** over, policy.maxDelayMs)
}

/** Failures older than this are forgotten. */
export const FORGET_AFTER_MS = 24 * 3_600_000
