import { and, eq } from 'drizzle-orm'
import type { Db } from '../../db/open.ts'
import { settings } from '../../db/schema.ts'
import { changes } from '../../db/uploads.ts'
import { ElectedPeriodicWork, type Ballots, type PeriodicOptions } from '../elected-periodic.ts'

/**
 * Ballots in the `settings` table, one row `periodic:<name>` a task: every instance on the
 * database sees the same rows, and a conditional UPDATE (or an INSERT that does nothing on
 * conflict) lets exactly one of them win each claim.
 */
export class SqliteBallots implements Ballots {
  constructor(private readonly db: Db) {}

  async read(name: string): Promise<string | null> {
    return this.db.select().from(settings).where(eq(settings.key, key(name))).get()?.value ?? null
  }

  async swap(name: string, expected: string | null, next: string): Promise<boolean> {
    const result =
      expected === null
        ? this.db.insert(settings).values({ key: key(name), value: next }).onConflictDoNothing().run()
        : this.db
            .update(settings)
            .set({ value: next })
            .where(and(eq(settings.key, key(name)), eq(settings.value, expected)))
            .run()
    return changes(result) === 1
  }
}

const key = (name: string) => `periodic:${name}`

/** Periodic work elected through the database, once per interval across every instance on it. */
export class SqlitePeriodicWork extends ElectedPeriodicWork {
  constructor(db: Db, options: PeriodicOptions = {}) {
    super(new SqliteBallots(db), options)
  }
}
