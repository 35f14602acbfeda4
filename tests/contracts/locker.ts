import { describe, expect, test } from 'bun:test'
import type { Lock, Locker } from '../../src/ports/locker.ts'

/** A locker to test, fresh for each check, and how many keys it holds (none may be left behind). */
export interface LockerUnderTest {
  locker: Locker
  keysHeld(): number | Promise<number>
  close?(): void | Promise<void>
}

export type MakeLocker = () => LockerUnderTest | Promise<LockerUnderTest>

/** Lets every other task waiting to run have its turn a few times over (a chance to misbehave, not a wait for an event). */
async function othersRun(turns = 5) {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Resolves to the lock, or fails the check after a generous bound instead of hanging the suite. */
async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

async function using(make: MakeLocker, check: (under: LockerUnderTest) => Promise<void>) {
  const under = await make()
  try {
    await check(under)
  } finally {
    await under.close?.()
  }
}

/**
 * What every Locker adapter must do, as named checks (each throws on a violation), so the test
 * file can also show that a broken locker fails them.
 */
export const LOCKER_CHECKS: Record<string, (make: MakeLocker) => Promise<void>> = {
  'many concurrent holders of one key never overlap, and every one gets its turn': (make) =>
    using(make, async ({ locker }) => {
      let inside = 0
      let most = 0
      let done = 0
      await within(
        Promise.all(
          Array.from({ length: 40 }, async () => {
            const lock = await locker.lock('chunk:u1:0')
            inside++
            most = Math.max(most, inside)
            await othersRun()
            inside--
            done++
            await lock.release()
          }),
        ),
        'forty holders in turn',
        30_000,
      )
      expect(done).toBe(40)
      expect(most).toBe(1)
    }),

  'waiters get the lock in the order they asked for it': (make) =>
    using(make, async ({ locker }) => {
      const first = await locker.lock('blob:abc')
      const order: string[] = []
      const waiters = ['a', 'b', 'c', 'd'].map((name) => {
        const taken = locker.lock('blob:abc').then(async (lock) => {
          order.push(name)
          await othersRun()
          await lock.release()
        })
        return taken
      })
      await othersRun()
      expect(order).toEqual([])
      await first.release()
      await within(Promise.all(waiters), 'four waiters in turn')
      expect(order).toEqual(['a', 'b', 'c', 'd'])
    }),

  'tryLock answers null while the key is held, and the lock once it is released': (make) =>
    using(make, async ({ locker }) => {
      const free = await locker.tryLock('upload:u1')
      expect(free).not.toBeNull()
      expect(await locker.tryLock('upload:u1')).toBeNull()
      await free!.release()
      const again = await locker.tryLock('upload:u1')
      expect(again).not.toBeNull()
      await again!.release()
    }),

  'tryLock answers null while a lock() holds the key, and lock() waits for a tryLock holder': (make) =>
    using(make, async ({ locker }) => {
      const held = await locker.lock('upload:u2')
      expect(await locker.tryLock('upload:u2')).toBeNull()
      await held.release()
      const tried = (await locker.tryLock('upload:u2'))!
      let taken = false
      const waiting = locker.lock('upload:u2').then((lock) => {
        taken = true
        return lock
      })
      await othersRun()
      expect(taken).toBe(false)
      await tried.release()
      await (await within(waiting, 'the waiter after tryLock')).release()
    }),

  'a waiter whose signal aborts is rejected with its reason and never takes the lock': (make) =>
    using(make, async ({ locker }) => {
      const holder = await locker.lock('blob:abort')
      const controller = new AbortController()
      const reason = new Error('the client went away')
      const aborted = locker.lock('blob:abort', controller.signal)
      const after: string[] = []
      const next = locker.lock('blob:abort').then((lock) => {
        after.push('next')
        return lock
      })
      await othersRun()
      controller.abort(reason)
      await holder.release()
      expect(await within(aborted.then(() => 'taken', (error) => error), 'the aborted waiter')).toBe(reason)
      // The waiter behind the aborted one gets the lock: the aborted one does not hold it.
      const nextLock = await within(next, 'the waiter behind the aborted one')
      expect(after).toEqual(['next'])
      expect(await locker.tryLock('blob:abort')).toBeNull()
      await nextLock.release()
      // Once released, nobody holds it: the aborted waiter did not take it later either.
      const free = await locker.tryLock('blob:abort')
      expect(free).not.toBeNull()
      await free!.release()
    }),

  'a signal aborted already rejects at once': (make) =>
    using(make, async ({ locker }) => {
      const controller = new AbortController()
      controller.abort(new Error('gone'))
      expect(await locker.lock('blob:early', controller.signal).then(() => 'taken', (error: Error) => error.message)).toBe('gone')
      const free = await locker.tryLock('blob:early')
      expect(free).not.toBeNull()
      await free!.release()
    }),

  "releasing twice is harmless: it does not release the next holder's lock": (make) =>
    using(make, async ({ locker }) => {
      const first = await locker.lock('chunk:u3:1')
      const second = locker.lock('chunk:u3:1')
      await first.release()
      const secondLock = await within(second, 'the second holder')
      await first.release()
      expect(await locker.tryLock('chunk:u3:1')).toBeNull()
      await secondLock.release()
      await secondLock.release()
      const free = await locker.tryLock('chunk:u3:1')
      expect(free).not.toBeNull()
      await free!.release()
    }),

  'different keys do not block each other': (make) =>
    using(make, async ({ locker }) => {
      const a = await locker.lock('blob:a')
      const b = await within(locker.lock('blob:b'), 'a lock on another key')
      const c = await locker.tryLock('chunk:u4:0')
      expect(c).not.toBeNull()
      await Promise.all([a.release(), b.release(), c!.release()])
    }),

  'no key is left behind once every lock is released, waiters and aborted waiters included': (make) =>
    using(make, async ({ locker, keysHeld }) => {
      const held: Lock[] = []
      for (let i = 0; i < 20; i++) held.push(await locker.lock(`chunk:u5:${i}`))
      expect(await keysHeld()).toBe(20)
      const controller = new AbortController()
      const aborted = locker.lock('chunk:u5:0', controller.signal).catch(() => null)
      const waiter = locker.lock('chunk:u5:1')
      const tried = await locker.tryLock('chunk:u5:2')
      expect(tried).toBeNull()
      controller.abort()
      await aborted
      await Promise.all(held.map((lock) => lock.release()))
      await (await within(waiter, 'the waiter')).release()
      expect(await keysHeld()).toBe(0)
    }),
}

/** Registers the contract for one adapter: every check, a fresh locker each. */
export function lockerContract(name: string, make: MakeLocker) {
  describe(`Locker contract: ${name}`, () => {
    for (const [title, check] of Object.entries(LOCKER_CHECKS)) test(title, () => check(make))
  })
}
