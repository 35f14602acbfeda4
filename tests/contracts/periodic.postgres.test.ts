import { openPostgres } from '../../src/adapters/postgres/open.ts'
import { PostgresPeriodicWork } from '../../src/adapters/postgres/periodic.ts'
import { settings } from '../../src/adapters/postgres/schema.ts'
import { describePostgres, suiteDatabase } from '../helpers/postgres.ts'
import { periodicContract } from './periodic.ts'

describePostgres('PostgreSQL periodic work', () => {
  const database = suiteDatabase()

  periodicContract('PostgreSQL (two instances, each with its own pool on one database)', async (setup) => {
    const [first, second] = await Promise.all([openPostgres(database.url, { max: 2 }), openPostgres(database.url, { max: 2 })])
    await first.delete(settings)
    return {
      a: new PostgresPeriodicWork(first, { ...setup, timer: false }),
      b: new PostgresPeriodicWork(second, { ...setup, timer: false }),
      close: () => Promise.all([first.$client.close(), second.$client.close()]).then(() => {}),
    }
  })
})
