import { PostgresAttemptStore } from '../../src/adapters/postgres/attempts.ts'
import { openPostgres } from '../../src/adapters/postgres/open.ts'
import { attempts } from '../../src/adapters/postgres/schema.ts'
import { describePostgres, suiteDatabase } from '../helpers/postgres.ts'
import { attemptStoreContract } from './attempts.ts'

describePostgres('PostgreSQL attempt store', () => {
  const database = suiteDatabase()

  // One migrated database for the suite; each check starts from an empty table, on a pool of its
  // own, so its concurrent reservations run on several connections at once.
  attemptStoreContract('PostgreSQL', async () => {
    const db = await openPostgres(database.url, { max: 8 })
    await db.delete(attempts)
    return { store: new PostgresAttemptStore(db), close: () => db.$client.close() }
  })
})
