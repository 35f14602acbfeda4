import { and, eq } from 'drizzle-orm'
import { ElectedPeriodicWork, type Ballots, type PeriodicOptions } from '../elected-periodic.ts'
import type { PgDb } from './open.ts'
import { settings } from './schema.ts'

/**
 * Ballots in the `settings` table, one row `periodic:<name>` a task, as in SQLite: a conditional
 * UPDATE (or an INSERT that does nothing on conflict) is won by exactly one instance, and the
 * claim it writes carries its expiry (a row lease), so a dead holder is replaced once it lapses.
 * One statement, one round trip, per read or claim.
 */
export class PostgresBallots implements Ballots {
  constructor(private readonly db: PgDb) {}

  async read(name: string): Promise<string | null> {
    const [row] = await this.db.select({ value: settings.value }).from(settings).where(eq(settings.key, key(name)))
    return row?.value ?? null
  }

  async swap(name: string, expected: string | null, next: string): Promise<boolean> {
    const won =
      expected === null
        ? await this.db.insert(settings).values({ key: key(name), value: next }).onConflictDoNothing().returning({ key: settings.key })
        : await this.db
            .update(settings)
            .set({ value: next })
            .where(and(eq(settings.key, key(name)), eq(settings.value, expected)))
            .returning({ key: settings.key })
    return won.length === 1
  }
}

const key = (name: string) => `periodic:${name}`

/** Periodic work elected through PostgreSQL, once per interval across every instance on it. */
export class PostgresPeriodicWork extends ElectedPeriodicWork {
  constructor(db: PgDb, options: PeriodicOptions = {}) {
    super(new PostgresBallots(db), options)
  }
}
