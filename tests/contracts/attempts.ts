import { describe, expect, test } from 'bun:test'
import { FORGET_AFTER_MS, type AttemptPolicy, type AttemptStore, type Claim, type Counted, type Reservation } from '../../src/ports/attempts.ts'

/** An attempt store to test, fresh for each check. */
export interface AttemptStoreUnderTest {
  store: AttemptStore
  close?(): void | Promise<void>
}

export type MakeAttemptStore = () => AttemptStoreUnderTest | Promise<AttemptStoreUnderTest>

/**
 * One free failure, then 1 s, 2 s, 4 s, …: the wait a reservation sets tells how many failures
 * the key has (1 s after the first, 2 s after the second, …).
 */
const TELLING: AttemptPolicy = { freeFailures: 1, baseDelayMs: 1000, maxDelayMs: 2 ** 30 }
/** Twenty failures heard before any wait: for counting many attempts made at one instant. */
const TWENTY_FREE: AttemptPolicy = { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 60_000 }

const T0 = 1_700_000_000_000

const claim = (key: string, policy = TELLING, onSuccess: Claim['onSuccess'] = 'refund'): Claim => ({ key, policy, onSuccess })

function granted(reservation: Reservation): Counted[] {
  if (!reservation.granted) throw new Error(`refused (wait ${reservation.waitMs} ms) where a grant was due`)
  return reservation.counted
}

function refusedFor(reservation: Reservation): number {
  if (reservation.granted) throw new Error(`granted (${JSON.stringify(reservation.counted)}) where a refusal was due`)
  return reservation.waitMs
}

/** How many failures `key` has at `now`, read through the port: one more reservation under TELLING, taken back again. */
async function failuresOf(store: AttemptStore, key: string, now: number): Promise<number> {
  const counted = granted(await store.reserve([claim(key)], now))
  await store.refund(counted)
  return Math.log2((counted[0]!.blockedUntil - now) / TELLING.baseDelayMs)
}

async function using(make: MakeAttemptStore, check: (store: AttemptStore) => Promise<void>) {
  const under = await make()
  try {
    await check(under.store)
  } finally {
    await under.close?.()
  }
}

/**
 * What every AttemptStore adapter must do, as named checks (each throws on a violation), so the
 * test file can also show that a broken store fails them.
 */
export const ATTEMPT_STORE_CHECKS: Record<string, (make: MakeAttemptStore) => Promise<void>> = {
  'a failure is counted up front: past the free ones the next attempt must wait, and is told how long': (make) =>
    using(make, async (store) => {
      const first = granted(await store.reserve([claim('login:a', TELLING, 'reset')], T0))
      expect(first).toEqual([{ key: 'login:a', onSuccess: 'reset', previousBlockedUntil: 0, blockedUntil: T0 + 1000 }])
      expect(refusedFor(await store.reserve([claim('login:a')], T0))).toBe(1000)
      expect(refusedFor(await store.reserve([claim('login:a')], T0 + 400))).toBe(600)
      const second = granted(await store.reserve([claim('login:a')], T0 + 1000))
      expect(second).toEqual([{ key: 'login:a', onSuccess: 'refund', previousBlockedUntil: T0 + 1000, blockedUntil: T0 + 3000 }])
      expect(await failuresOf(store, 'login:a', T0 + 3000)).toBe(2)
    }),

  'a refused reservation counts nothing on any of its keys, and waits for the longest wait among them': (make) =>
    using(make, async (store) => {
      granted(await store.reserve([claim('blocked:short')], T0 + 1000))
      granted(await store.reserve([claim('blocked:long')], T0))
      granted(await store.reserve([claim('blocked:long')], T0 + 1000))
      const both = [claim('free:x'), claim('blocked:short'), claim('blocked:long')]
      expect(refusedFor(await store.reserve(both, T0 + 1500))).toBe(1500)
      expect(await failuresOf(store, 'free:x', T0 + 5000)).toBe(0)
      expect(await failuresOf(store, 'blocked:short', T0 + 5000)).toBe(1)
      expect(await failuresOf(store, 'blocked:long', T0 + 5000)).toBe(2)
    }),

  'a refund takes back exactly the failure and the wait that attempt set': (make) =>
    using(make, async (store) => {
      granted(await store.reserve([claim('unlock:a')], T0))
      const second = granted(await store.reserve([claim('unlock:a')], T0 + 1000))
      await store.refund(second)
      // The first attempt's wait is back in force, and the key has one failure again.
      expect(refusedFor(await store.reserve([claim('unlock:a')], T0 + 999))).toBe(1)
      expect(await failuresOf(store, 'unlock:a', T0 + 1000)).toBe(1)
      await store.refund([])
    }),

  "a refund keeps a later attempt's wait": (make) =>
    using(make, async (store) => {
      const first = granted(await store.reserve([claim('unlock:b')], T0))
      granted(await store.reserve([claim('unlock:b')], T0 + 1000))
      await store.refund(first)
      expect(refusedFor(await store.reserve([claim('unlock:b')], T0 + 2000))).toBe(1000)
      expect(await failuresOf(store, 'unlock:b', T0 + 3000)).toBe(1)
    }),

  "a reset forgets those keys' failures and waits, and only those keys'": (make) =>
    using(make, async (store) => {
      for (const at of [T0, T0 + 1000]) granted(await store.reserve([claim('login:a'), claim('login:b'), claim('login:c')], at))
      await store.reset(['login:a', 'login:b'])
      await store.reset([])
      expect(await failuresOf(store, 'login:a', T0 + 1000)).toBe(0)
      expect(await failuresOf(store, 'login:b', T0 + 1000)).toBe(0)
      expect(refusedFor(await store.reserve([claim('login:c')], T0 + 1000))).toBe(2000)
    }),

  'failures older than the forget time count no more': (make) =>
    using(make, async (store) => {
      granted(await store.reserve([claim('login:old')], T0))
      const later = T0 + FORGET_AFTER_MS
      expect(granted(await store.reserve([claim('login:old')], later))).toEqual([
        { key: 'login:old', onSuccess: 'refund', previousBlockedUntil: 0, blockedUntil: later + 1000 },
      ])
    }),

  'prune forgets keys with no attempt since `before` and no wait in force, and keeps the others': (make) =>
    using(make, async (store) => {
      const long: AttemptPolicy = { ...TELLING, baseDelayMs: 3_600_000 }
      granted(await store.reserve([claim('old')], T0))
      granted(await store.reserve([claim('still-blocked', long)], T0))
      granted(await store.reserve([claim('recent')], T0 + 4000))
      await store.prune(T0 + 3000, T0 + 6000)
      // Unpruned, `old` would still have its failure (it is within the forget time).
      expect(await failuresOf(store, 'old', T0 + 7000)).toBe(0)
      expect(await failuresOf(store, 'recent', T0 + 7000)).toBe(1)
      expect(refusedFor(await store.reserve([claim('still-blocked')], T0 + 7000))).toBe(3_600_000 - 7000)
    }),

  'keys are independent: failures and waits on one never touch another': (make) =>
    using(make, async (store) => {
      for (let i = 0; i < 4; i++) granted(await store.reserve([claim('unlock:1.2.3.4:link:1')], T0 + i * 10_000))
      expect(await failuresOf(store, 'unlock:1.2.3.4:link:1', T0 + 100_000)).toBe(4)
      expect(await failuresOf(store, 'unlock:1.2.3.4:link:2', T0 + 40_000)).toBe(0)
      expect(await failuresOf(store, 'unlock:1.2.3.5:link:1', T0 + 40_000)).toBe(0)
    }),

  "a claim with onlyPast counts only once the other key is past its free failures": (make) =>
    using(make, async (store) => {
      const own = claim('unlock:a:link:1', TWENTY_FREE, 'reset')
      const budget: Claim = { ...claim('unlock-link:1', TELLING), onlyPast: { key: own.key, freeFailures: 2 } }
      const keysCounted = async (at: number) => granted(await store.reserve([own, budget], at)).map((c) => c.key)
      expect(await keysCounted(T0)).toEqual([own.key])
      expect(await keysCounted(T0 + 1)).toEqual([own.key])
      expect(await keysCounted(T0 + 2)).toEqual([own.key, budget.key])
      expect(await failuresOf(store, budget.key, T0 + 2000)).toBe(1)
    }),

  'concurrent reservations are counted exactly, and so are concurrent refunds': (make) =>
    using(make, async (store) => {
      // Failures 1 to 19 set no wait, the 20th sets one: of 30 at once, exactly 20 get in.
      const all = await Promise.all(Array.from({ length: 30 }, () => store.reserve([claim('login:many', TWENTY_FREE)], T0)))
      const grants = all.filter((r) => r.granted)
      expect(grants.length).toBe(20)
      expect(all.filter((r) => !r.granted).map(refusedFor)).toEqual(Array(10).fill(1000))
      await Promise.all(grants.map((r) => store.refund(granted(r))))
      expect(await failuresOf(store, 'login:many', T0 + 1000)).toBe(0)
    }),
}

/** Registers the contract for one adapter: every check, a fresh store each. */
export function attemptStoreContract(name: string, make: MakeAttemptStore) {
  describe(`AttemptStore contract: ${name}`, () => {
    for (const [title, check] of Object.entries(ATTEMPT_STORE_CHECKS)) test(title, () => check(make))
  })
}
