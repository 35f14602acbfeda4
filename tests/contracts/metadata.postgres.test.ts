import { expect, test } from 'bun:test'
import { PostgresMetadataStore } from '../../src/adapters/postgres/metadata.ts'
import type { Repositories } from '../../src/ports/metadata.ts'
import { describePostgres, freshDatabase } from '../helpers/postgres.ts'
import { METADATA_CHECKS, metadataContract, type MakeMetadata } from './metadata.ts'

/** A fresh database for each check, migrated as a starting instance would; `another` is a second instance's store (a pool of its own) on it. */
const postgres = (open: (url: string) => Promise<PostgresMetadataStore>): MakeMetadata => async () => {
  const database = await freshDatabase()
  const store = await open(database.url)
  return {
    store,
    another: () => PostgresMetadataStore.open(database.url, { max: 4 }),
    async close() {
      await store.close()
      await database.drop()
    },
  }
}

describePostgres('PostgreSQL metadata store: the shared contract', () => {
  metadataContract(
    'PostgreSQL',
    postgres((url) => PostgresMetadataStore.open(url, { max: 8 })),
  )

  /** A transaction whose repositories are the pool's, not bound to it: what its work writes lands outside it. */
  class UnboundTransactions extends PostgresMetadataStore {
    override transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
      return this.db.transaction(() => work(this))
    }
  }

  test('the contract notices a transaction whose repositories are not bound to it', async () => {
    const check = METADATA_CHECKS['a transaction whose work throws leaves nothing of it']!
    await expect(check(postgres(async (url) => new UnboundTransactions((await PostgresMetadataStore.open(url, { max: 4 })).db)))).rejects.toThrow(/expect\(received\)/)
  })
})
