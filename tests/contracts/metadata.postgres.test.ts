import { PostgresMetadataStore } from '../../src/adapters/postgres/metadata.ts'
import { describePostgres, freshDatabase } from '../helpers/postgres.ts'
import { metadataContract } from './metadata.ts'

describePostgres('PostgreSQL metadata store', () => {
  // A fresh database for each check, migrated as a starting instance would; `another` is a
  // second instance's store (a pool of its own) on the same database.
  metadataContract('PostgreSQL', async () => {
    const database = await freshDatabase()
    const store = await PostgresMetadataStore.open(database.url, { max: 8 })
    return {
      store,
      another: () => PostgresMetadataStore.open(database.url, { max: 4 }),
      async close() {
        await store.close()
        await database.drop()
      },
    }
  })
})
