import { MemoryLocker } from '../../src/adapters/memory/locker.ts'
import type { Lock, Locker } from '../../src/ports/locker.ts'
import { contractRejects } from './broken.ts'
import { LOCKER_CHECKS, lockerContract } from './locker.ts'

lockerContract('memory', () => {
  const locker = new MemoryLocker()
  return { locker, keysHeld: () => locker.keysHeld() }
})

/** What a broken locker gets wrong: each breaks one promise of the contract, which must notice. */
interface Flaws {
  excludesNobody?: boolean
  lastComeFirstServed?: boolean
  deafToAborts?: boolean
  secondReleaseFreesNext?: boolean
  keepsKeys?: boolean
}

/** A plain locker (a holder flag and a queue per key) with the flaws asked for. */
function flawedLocker(flaws: Flaws) {
  const keys = new Map<string, { held: boolean; waiting: (() => void)[] }>()
  const entry = (key: string) => keys.get(key) ?? keys.set(key, { held: false, waiting: [] }).get(key)!
  const handle = (key: string): Lock => {
    let released = false
    return {
      release: async () => {
        if (released && !flaws.secondReleaseFreesNext) return
        released = true
        const state = entry(key)
        const next = flaws.lastComeFirstServed ? state.waiting.pop() : state.waiting.shift()
        if (next) return next()
        state.held = false
        if (!flaws.keepsKeys) keys.delete(key)
      },
    }
  }
  const locker: Locker = {
    async lock(key, signal) {
      if (signal?.aborted && !flaws.deafToAborts) throw signal.reason
      const state = entry(key)
      if (!state.held || flaws.excludesNobody) {
        state.held = true
        return handle(key)
      }
      return new Promise<Lock>((resolve, reject) => {
        const grant = () => resolve(handle(key))
        state.waiting.push(grant)
        if (!flaws.deafToAborts) {
          signal?.addEventListener('abort', () => {
            state.waiting.splice(state.waiting.indexOf(grant), 1)
            reject(signal.reason)
          })
        }
      })
    },
    async tryLock(key) {
      const state = entry(key)
      if (state.held && !flaws.excludesNobody) return null
      state.held = true
      return handle(key)
    },
  }
  return { locker, keysHeld: () => keys.size }
}

lockerContract('a plain locker without flaws (the control for the broken ones below)', () => flawedLocker({}))

const broken: Record<string, { flaws: Flaws; fails: string }> = {
  'a locker that excludes nobody': {
    flaws: { excludesNobody: true },
    fails: 'many concurrent holders of one key never overlap, and every one gets its turn',
  },
  'a locker that serves the last waiter first': {
    flaws: { lastComeFirstServed: true },
    fails: 'waiters get the lock in the order they asked for it',
  },
  'a locker deaf to aborts': {
    flaws: { deafToAborts: true },
    fails: 'a waiter whose signal aborts is rejected with its reason and never takes the lock',
  },
  'a locker whose second release frees the next holder': {
    flaws: { secondReleaseFreesNext: true },
    fails: "releasing twice is harmless: it does not release the next holder's lock",
  },
  'a locker that keeps released keys': {
    flaws: { keepsKeys: true },
    fails: 'no key is left behind once every lock is released, waiters and aborted waiters included',
  },
}

contractRejects(
  'the Locker contract rejects broken lockers',
  LOCKER_CHECKS,
  Object.fromEntries(Object.entries(broken).map(([name, { flaws, fails }]) => [name, { make: () => flawedLocker(flaws), fails }])),
)
