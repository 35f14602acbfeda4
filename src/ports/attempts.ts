/**
 * Password attempts, counted per key ("login:<address>", "unlock:<address>:link:<id>", …) in a
 * store that outlives the process. An attempt is counted as a failure *before* its password is
 * checked (a reservation) and refunded or reset when it turns out right, so parallel attempts
 * cannot all slip in before the first failure is recorded.
 *
 * Adapters: SQLite (src/adapters/sqlite/attempts.ts, what the server uses) and memory (tests,
 * one process). tests/contracts/attempts.ts says what every adapter must do; the rules below
 * (`reservationOf`, `refunded`, `forgettable`) are what each applies inside its own atomic step.
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

/** What a store keeps per key. */
export interface AttemptRecord {
  failures: number
  blockedUntil: number
  lastAt: number
}

/** After `failures` failures under `policy`, the wait until the next attempt (0: none). */
export function waitAfter(failures: number, policy: AttemptPolicy): number {
  const over = failures - policy.freeFailures
  return over < 0 ? 0 : Math.min(policy.baseDelayMs * 2 ** over, policy.maxDelayMs)
}

/** Failures older than this are forgotten. */
export const FORGET_AFTER_MS = 24 * 3_600_000

/**
 * The reservation `claims` get at `now`, given each key's record, and the records to write if
 * it is granted (none if it is refused: a refused attempt counts nothing).
 */
export function reservationOf(
  claims: Claim[],
  now: number,
  read: (key: string) => AttemptRecord | undefined,
): { reservation: Reservation; writes: { key: string; record: AttemptRecord }[] } {
  const failuresAfter = new Map<string, number>()
  const counted: Counted[] = []
  const writes: { key: string; record: AttemptRecord }[] = []
  let waitMs = 0
  for (const claim of claims) {
    if (claim.onlyPast && (failuresAfter.get(claim.onlyPast.key) ?? 0) <= claim.onlyPast.freeFailures) continue
    const row = read(claim.key)
    const live = row && now - row.lastAt < FORGET_AFTER_MS ? row : undefined
    if (live && live.blockedUntil > now) waitMs = Math.max(waitMs, live.blockedUntil - now)
    const failures = (live?.failures ?? 0) + 1
    failuresAfter.set(claim.key, failures)
    const wait = waitAfter(failures, claim.policy)
    const previousBlockedUntil = live?.blockedUntil ?? 0
    const blockedUntil = wait > 0 ? now + wait : previousBlockedUntil
    counted.push({ key: claim.key, onSuccess: claim.onSuccess, previousBlockedUntil, blockedUntil })
    writes.push({ key: claim.key, record: { failures, blockedUntil, lastAt: now } })
  }
  if (waitMs > 0) return { reservation: { granted: false, waitMs }, writes: [] }
  return { reservation: { granted: true, counted }, writes }
}

/** A record with one counted failure taken back: only the wait that attempt set is lifted, a later attempt's stays. */
export function refunded(record: AttemptRecord, counted: Counted): AttemptRecord {
  return {
    ...record,
    failures: Math.max(record.failures - 1, 0),
    blockedUntil: record.blockedUntil === counted.blockedUntil ? counted.previousBlockedUntil : record.blockedUntil,
  }
}

/** Whether `prune(before, now)` forgets this record: no attempt since `before` and no wait in force. */
export function forgettable(record: AttemptRecord, before: number, now: number): boolean {
  return record.lastAt < before && record.blockedUntil < now
}
