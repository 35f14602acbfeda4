import { expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryAttemptStore } from '../../src/adapters/memory/attempts.ts'
import { SqliteAttemptStore } from '../../src/adapters/sqlite/attempts.ts'
import { SqliteMetadataStore } from '../../src/adapters/sqlite/metadata.ts'
import { forgettable, refunded, reservationOf, type AttemptRecord, type AttemptStore } from '../../src/ports/attempts.ts'
import { ATTEMPT_STORE_CHECKS, attemptStoreContract } from './attempts.ts'
import { contractRejects } from './broken.ts'

attemptStoreContract('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropfold-attempts-'))
  const metadata = SqliteMetadataStore.open(join(dir, 'dropfold.db'))
  return {
    store: new SqliteAttemptStore(metadata),
    close: async () => {
      await metadata.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

attemptStoreContract('memory', () => ({ store: new MemoryAttemptStore() }))

test('the memory store lets go of pruned keys', async () => {
  const store = new MemoryAttemptStore()
  await store.reserve([{ key: 'login:a', policy: { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 1000 }, onSuccess: 'reset' }], 1000)
  expect(store.keysKept()).toBe(1)
  await store.prune(2000, 2000)
  expect(store.keysKept()).toBe(0)
})

/** What a broken store gets wrong: each breaks one promise of the contract, which must notice. */
interface Flaws {
  /** Reads, lets others run, then writes: concurrent reservations overwrite each other. */
  racy?: boolean
  /** A refused attempt still counts a failure. */
  countsRefused?: boolean
  /** A refund restores the wait before this attempt even when a later attempt set a newer one. */
  refundClobbersLaterWait?: boolean
  /** Failures are never too old to count. */
  neverForgets?: boolean
  /** Prune ignores waits in force. */
  prunesBlocked?: boolean
  /** Every key is one counter. */
  sharesKeys?: boolean
}

/** A map of records, applying the port's rules, with the flaws asked for. */
function flawedStore(flaws: Flaws) {
  const records = new Map<string, AttemptRecord>()
  const slot = (key: string) => (flaws.sharesKeys ? '*' : key)
  const write = (writes: { key: string; record: AttemptRecord }[]) => {
    for (const { key, record } of writes) records.set(slot(key), record)
  }
  const store: AttemptStore = {
    async reserve(claims, now) {
      const read = (key: string) => {
        const record = records.get(slot(key))
        return record && flaws.neverForgets ? { ...record, lastAt: now } : record
      }
      const { reservation, writes } = reservationOf(claims, now, read)
      if (flaws.racy) await new Promise((resolve) => setImmediate(resolve))
      if (!reservation.granted && flaws.countsRefused) {
        write(reservationOf(claims, now, (key) => read(key) && { ...read(key)!, blockedUntil: 0 }).writes)
      }
      write(writes)
      return reservation
    },
    async refund(counted) {
      for (const c of counted) {
        const record = records.get(slot(c.key))
        if (!record) continue
        const back = refunded(record, c)
        records.set(slot(c.key), flaws.refundClobbersLaterWait ? { ...back, blockedUntil: c.previousBlockedUntil } : back)
      }
    },
    async reset(keys) {
      for (const key of keys) records.delete(slot(key))
    },
    async prune(before, now) {
      for (const [key, record] of records) if (forgettable(record, before, flaws.prunesBlocked ? Infinity : now)) records.delete(key)
    },
  }
  return { store }
}

attemptStoreContract('a plain store without flaws (the control for the broken ones below)', () => flawedStore({}))

const broken: Record<string, { flaws: Flaws; fails: string }> = {
  'a store that reads and writes in two steps': {
    flaws: { racy: true },
    fails: 'concurrent reservations are counted exactly, and so are concurrent refunds',
  },
  'a store that counts refused attempts': {
    flaws: { countsRefused: true },
    fails: 'a refused reservation counts nothing on any of its keys, and waits for the longest wait among them',
  },
  "a store whose refund lifts a later attempt's wait": {
    flaws: { refundClobbersLaterWait: true },
    fails: "a refund keeps a later attempt's wait",
  },
  'a store that never forgets old failures': {
    flaws: { neverForgets: true },
    fails: 'failures older than the forget time count no more',
  },
  'a store whose prune forgets waits in force': {
    flaws: { prunesBlocked: true },
    fails: 'prune forgets keys with no attempt since `before` and no wait in force, and keeps the others',
  },
  'a store with one counter for every key': {
    flaws: { sharesKeys: true },
    fails: 'keys are independent: failures and waits on one never touch another',
  },
}

contractRejects(
  'the AttemptStore contract rejects broken stores',
  ATTEMPT_STORE_CHECKS,
  Object.fromEntries(Object.entries(broken).map(([name, { flaws, fails }]) => [name, { make: () => flawedStore(flaws), fails }])),
)
