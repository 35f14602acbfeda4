import { eq, inArray, and, lt, sql } from 'drizzle-orm'
import type { Db } from '../db/open.ts'
import { attempts } from '../db/schema.ts'
import { FORGET_AFTER_MS, waitAfter, type AttemptStore, type Claim, type Counted, type Reservation } from './attempts.ts'

/** Attempt counters in the `attempts` table; every operation is one transaction. */
export class SqliteAttemptStore implements AttemptStore {
  constructor(private readonly db: Db) {}

  async reserve(claims: Claim[], now: number): Promise<Reservation> {
    return this.db.transaction((tx) => {
      const failuresAfter = new Map<string, number>()
      const counted: (Counted & { failures: number })[] = []
      let waitMs = 0
      for (const claim of claims) {
        if (claim.onlyPast && (failuresAfter.get(claim.onlyPast.key) ?? 0) <= claim.onlyPast.freeFailures) continue
        const row = tx.select().from(attempts).where(eq(attempts.key, claim.key)).get()
        const live = row && now - row.lastAt < FORGET_AFTER_MS ? row : undefined
        if (live && live.blockedUntil > now) waitMs = Math.max(waitMs, live.blockedUntil - now)
        const failures = (live?.failures ?? 0) + 1
        failuresAfter.set(claim.key, failures)
        const wait = waitAfter(failures, claim.policy)
        const previousBlockedUntil = live?.blockedUntil ?? 0
        counted.push({ key: claim.key, onSuccess: claim.onSuccess, failures, previousBlockedUntil, blockedUntil: wait > 0 ? now + wait : previousBlockedUntil })
      }
      if (waitMs > 0) return { granted: false as const, waitMs }
      for (const c of counted) {
        tx.insert(attempts)
          .values({ key: c.key, failures: c.failures, blockedUntil: c.blockedUntil, lastAt: now })
          .onConflictDoUpdate({ target: attempts.key, set: { failures: c.failures, blockedUntil: c.blockedUntil, lastAt: now } })
          .run()
      }
      return { granted: true as const, counted: counted.map(({ failures: _, ...c }) => c) }
    })
  }

  async refund(counted: Counted[]): Promise<void> {
    this.db.transaction((tx) => {
      for (const c of counted) {
        tx.update(attempts)
          .set({
            failures: sql`max(${attempts.failures} - 1, 0)`,
            // Only the wait this attempt set is lifted; a later attempt's stays.
            blockedUntil: sql`case when ${attempts.blockedUntil} = ${c.blockedUntil} then ${c.previousBlockedUntil} else ${attempts.blockedUntil} end`,
          })
          .where(eq(attempts.key, c.key))
          .run()
      }
    })
  }

  async reset(keys: string[]): Promise<void> {
    if (keys.length) this.db.delete(attempts).where(inArray(attempts.key, keys)).run()
  }

  async prune(before: number, now: number): Promise<void> {
    this.db.delete(attempts).where(and(lt(attempts.lastAt, before), lt(attempts.blockedUntil, now))).run()
  }
}
