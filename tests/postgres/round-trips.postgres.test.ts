import { expect, test } from 'bun:test'
import { PostgresAttemptStore } from '../../src/adapters/postgres/attempts.ts'
import { PostgresLocker } from '../../src/adapters/postgres/locker.ts'
import { openPostgres, type PgDb } from '../../src/adapters/postgres/open.ts'
import { PostgresPeriodicWork } from '../../src/adapters/postgres/periodic.ts'
import { describePostgres, suiteDatabase } from '../helpers/postgres.ts'
import { countsStatements, statementsOf } from '../helpers/postgres-statements.ts'

/**
 * What each operation of the PostgreSQL adapters costs the database, in statements: each is one
 * round trip (the adapters await every statement before the next; BEGIN and COMMIT count).
 * Counted by the server itself (pg_stat_statements, loaded by .ci/services/postgres.sh), so
 * nothing the driver does behind the adapters' backs is missed. These figures are the ones the
 * README reports; a change that adds a round trip to an operation fails here.
 */

const counting = await countsStatements()

/** The statements `operation` makes the server run. */
const cost = (db: PgDb, operation: () => Promise<unknown>) => statementsOf(db.$client, operation)

describePostgres('round trips per operation of the PostgreSQL adapters', () => {
  const database = suiteDatabase()

  test.skipIf(!counting)('locker: one statement to take a free lock, one to release it; none while another holder of this instance has it', async () => {
    const db = await openPostgres(database.url)
    await db.$client`create extension if not exists pg_stat_statements`
    const locker = await PostgresLocker.open(database.url)
    try {
      let lock = await locker.lock('warm-up')
      await lock.release()
      expect(await cost(db, async () => (lock = await locker.lock('chunk:u:0')))).toBe(1)
      expect(await cost(db, () => lock.release())).toBe(1)
      expect(await cost(db, async () => (lock = (await locker.tryLock('upload:u'))!))).toBe(1)
      expect(await cost(db, () => locker.tryLock('upload:u'))).toBe(0)
      expect(await cost(db, () => lock.release())).toBe(1)
    } finally {
      await locker.close()
      await db.$client.close()
    }
  })

  test.skipIf(!counting)('attempt store: a reservation or a refund is one transaction of five statements; reset and prune one each', async () => {
    const db = await openPostgres(database.url)
    await db.$client`create extension if not exists pg_stat_statements`
    const store = new PostgresAttemptStore(db)
    const claim = { key: 'login:127.0.0.1', policy: { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000 }, onSuccess: 'refund' as const }
    try {
      let reservation = await store.reserve([claim], 1)
      expect(await cost(db, async () => (reservation = await store.reserve([claim], 2)))).toBe(5)
      expect(await cost(db, () => store.refund(reservation.granted ? reservation.counted : []))).toBe(5)
      expect(await cost(db, () => store.reset([claim.key]))).toBe(1)
      expect(await cost(db, () => store.prune(0, 0))).toBe(1)
    } finally {
      await db.$client.close()
    }
  })

  test.skipIf(!counting)('periodic work: a tick with nothing due is one read; a run adds its claim and its end', async () => {
    const db = await openPostgres(database.url)
    await db.$client`create extension if not exists pg_stat_statements`
    let now = 1_000_000
    const periodic = new PostgresPeriodicWork(db, { clock: () => now, timer: false })
    try {
      periodic.every('purge', 1000, async () => {})
      await periodic.tick()
      await periodic.idle()
      expect(await cost(db, () => periodic.tick())).toBe(1)
      now += 1000
      expect(await cost(db, async () => (await periodic.tick(), await periodic.idle()))).toBe(3)
    } finally {
      await db.$client.close()
    }
  })
})
