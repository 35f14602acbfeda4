import { describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteMetadataStore } from '../../src/adapters/sqlite/metadata.ts'
import type { MetadataStore, Repositories } from '../../src/ports/metadata.ts'
import { METADATA_CHECKS, metadataContract, type MakeMetadata } from './metadata.ts'

function sqlite(): MakeMetadata {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropfold-metadata-'))
    const file = join(dir, 'dropfold.sqlite')
    const store = SqliteMetadataStore.open(file)
    return {
      store,
      another: async () => SqliteMetadataStore.open(file),
      oneConnection: true,
      async close() {
        await store.close()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
}

metadataContract('SQLite', sqlite())

/**
 * Broken stores, each breaking one promise of the contract, which must notice: proof that the
 * checks can fail.
 */
describe('the metadata contract notices a broken store', () => {
  /** A transaction on the connection without the gate: outside work runs inside it while it awaits. */
  class UngatedTransactions extends SqliteMetadataStore {
    override async transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
      const client = this.db.$client
      client.run('BEGIN IMMEDIATE')
      try {
        const result = await work(this)
        client.run('COMMIT')
        return result
      } catch (error) {
        client.run('ROLLBACK')
        throw error
      }
    }
  }

  /** Reads the admission figures, then inserts in a step of its own. */
  function admitsBeforeInserting(store: MetadataStore): MetadataStore {
    const uploads: Repositories['uploads'] = Object.create(store.uploads)
    uploads.create = async (upload, admit) => {
      if (admit) {
        const figures = await store.uploads.admissionFigures(admit.owner)
        await new Promise((resolve) => setImmediate(resolve))
        admit.check(figures, upload)
      }
      return store.uploads.create(upload)
    }
    return Object.assign(Object.create(store), { uploads })
  }

  const broken = (wrap: (file: string) => MetadataStore): MakeMetadata => async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropfold-metadata-broken-'))
    const store = wrap(join(dir, 'dropfold.sqlite'))
    return {
      store,
      oneConnection: true,
      async close() {
        await store.close()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }

  test('a transaction without a gate lets outside work land inside it', async () => {
    const check = METADATA_CHECKS['work from outside an open transaction never lands inside it (and, on one connection, waits for it)']!
    await expect(check(broken((file) => new UngatedTransactions(SqliteMetadataStore.open(file).db)))).rejects.toThrow(/expect\(received\)/)
  })

  test('an admission checked apart from the insert lets parallel creations overshoot the limit', async () => {
    const check = METADATA_CHECKS['parallel creations through a link limited to k files admit exactly k']!
    await expect(check(broken((file) => admitsBeforeInserting(SqliteMetadataStore.open(file))))).rejects.toThrow(/toHaveLength/)
  })
})
