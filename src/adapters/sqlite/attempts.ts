import { and, eq, inArray, lt } from 'drizzle-orm'
import type { SqliteMetadataStore } from './metadata.ts'
import { attempts } from './schema.ts'
import { refunded, reservationOf, type AttemptStore, type Claim, type Counted, type Reservation } from '../../ports/attempts.ts'

/** Attempt counters in the `attempts` table; every operation is one (synchronous) transaction. */
export class SqliteAttemptStore implements AttemptStore {
  private readonly db: SqliteMetadataStore['db']

  /** On the metadata store's connection, outside any transaction of its (see SqliteMetadataStore.outside). */
  constructor(private readonly store: SqliteMetadataStore) {
    this.db = store.db
  }

  async reserve(claims: Claim[], now: number): Promise<Reservation> {
    return this.store.outside(() => this.db.transaction((tx) => {
      const { reservation, writes } = reservationOf(claims, now, (key) => tx.select().from(attempts).where(eq(attempts.key, key)).get())
      for (const { key, record } of writes) {
        tx.insert(attempts).values({ key, ...record }).onConflictDoUpdate({ target: attempts.key, set: record }).run()
      }
      return reservation
    }))
  }

  async refund(counted: Counted[]): Promise<void> {
    await this.store.outside(() =>
      this.db.transaction((tx) => {
        for (const c of counted) {
          const row = tx.select().from(attempts).where(eq(attempts.key, c.key)).get()
          if (row) tx.update(attempts).set(refunded(row, c)).where(eq(attempts.key, c.key)).run()
        }
      }),
    )
  }

  async reset(keys: string[]): Promise<void> {
    if (keys.length) await this.store.outside(() => this.db.delete(attempts).where(inArray(attempts.key, keys)).run())
  }

  async prune(before: number, now: number): Promise<void> {
    // The rule of `forgettable`, in SQL, so pruning never reads the table into memory.
    await this.store.outside(() => this.db.delete(attempts).where(and(lt(attempts.lastAt, before), lt(attempts.blockedUntil, now))).run())
  }
}
