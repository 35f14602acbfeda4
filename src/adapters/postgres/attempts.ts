import { and, inArray, lt, sql } from 'drizzle-orm'
import { refunded, reservationOf, type AttemptRecord, type AttemptStore, type Claim, type Counted, type Reservation } from '../../ports/attempts.ts'
import type { PgDb } from './open.ts'
import { attempts } from './schema.ts'

type Tx = Parameters<Parameters<PgDb['transaction']>[0]>[0]

/**
 * Attempt counters in the `attempts` table, shared by every instance on the database. Each
 * reservation or refund is one transaction that first takes a transaction-level advisory lock
 * per key (in key order, so two never wait for each other), then reads, applies the port's rule
 * and writes: keys that have no row yet are serialised too, which a row lock could not do.
 */
export class PostgresAttemptStore implements AttemptStore {
  constructor(private readonly db: PgDb) {}

  async reserve(claims: Claim[], now: number): Promise<Reservation> {
    return this.db.transaction(async (tx) => {
      const records = await lockAndRead(tx, claims.map((c) => c.key))
      const { reservation, writes } = reservationOf(claims, now, (key) => records.get(key))
      const rows = [...new Map(writes.map(({ key, record }) => [key, { key, ...record }])).values()]
      if (rows.length) {
        await tx
          .insert(attempts)
          .values(rows)
          .onConflictDoUpdate({
            target: attempts.key,
            set: { failures: sql`excluded.failures`, blockedUntil: sql`excluded.blocked_until`, lastAt: sql`excluded.last_at` },
          })
      }
      return reservation
    })
  }

  async refund(counted: Counted[]): Promise<void> {
    if (!counted.length) return
    await this.db.transaction(async (tx) => {
      const records = await lockAndRead(tx, counted.map((c) => c.key))
      for (const c of counted) {
        const record = records.get(c.key)
        if (!record) continue
        const back = refunded(record, c)
        records.set(c.key, back)
        await tx.update(attempts).set(back).where(sql`${attempts.key} = ${c.key}`)
      }
    })
  }

  async reset(keys: string[]): Promise<void> {
    if (keys.length) await this.db.delete(attempts).where(inArray(attempts.key, keys))
  }

  async prune(before: number, now: number): Promise<void> {
    // The rule of `forgettable`, in SQL, so pruning never reads the table into memory.
    await this.db.delete(attempts).where(and(lt(attempts.lastAt, before), lt(attempts.blockedUntil, now)))
  }
}

/** Locks `keys` until the transaction ends, then reads their records. */
async function lockAndRead(tx: Tx, keys: string[]): Promise<Map<string, AttemptRecord>> {
  const sorted = [...new Set(keys)].sort()
  const list = sql.join(
    sorted.map((key) => sql`${key}`),
    sql`, `,
  )
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(k, 0)) from (select unnest(array[${list}]::text[]) as k order by k) as keys`)
  const rows = await tx.select().from(attempts).where(inArray(attempts.key, sorted))
  return new Map(rows.map(({ key, ...record }) => [key, record]))
}
