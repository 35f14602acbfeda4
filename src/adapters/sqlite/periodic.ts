import { and, eq } from 'drizzle-orm'
import { settings } from './schema.ts'
import { changes } from './uploads.ts'
import type { SqliteMetadataStore } from './metadata.ts'
import { ElectedPeriodicWork, type Ballots, type PeriodicOptions } from '../elected-periodic.ts'

/**
 * Ballots in the `settings` table, one row `periodic:<name>` a task: every instance on the
 * database sees the same rows, and a conditional UPDATE (or an INSERT that does nothing on
 * conflict) lets exactly one of them win each claim.
 */
export class SqliteBallots implements Ballots {
  /** On the metadata store's connection, outside any transaction of its. */
  constructor(private readonly store: SqliteMetadataStore) {}

  async read(name: string): Promise<string | null> {
    return this.store.settings.get(key(name))
  }

  async swap(name: string, expected: string | null, next: string): Promise<boolean> {
    const db = this.store.db
    const result = await this.store.outside(() =>
      expected === null
        ? db.insert(settings).values({ key: key(name), value: next }).onConflictDoNothing().run()
        : db
            .update(settings)
            .set({ value: next })
            .where(and(eq(settings.key, key(name)), eq(settings.value, expected)))
            .run(),
    )
    return changes(result) === 1
  }
}

const key = (name: string) => `periodic:${name}`

/** Periodic work elected through the database, once per interval across every instance on it. */
export class SqlitePeriodicWork extends ElectedPeriodicWork {
  constructor(store: SqliteMetadataStore, options: PeriodicOptions = {}) {
    super(new SqliteBallots(store), options)
  }
}
