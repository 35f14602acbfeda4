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

  /** The store with some of its upload operations replaced. */
  function withUploads(store: MetadataStore, replaced: Partial<Repositories['uploads']>): MetadataStore {
    const uploads: Repositories['uploads'] = Object.assign(Object.create(store.uploads), replaced)
    return Object.assign(Object.create(store), { uploads })
  }

  const aTurn = () => new Promise((resolve) => setImmediate(resolve))

  /** Reads the admission figures, then inserts in a step of its own. */
  const admitsBeforeInserting = (store: MetadataStore) =>
    withUploads(store, {
      async create(upload, admit) {
        if (admit) {
          const figures = await store.uploads.admissionFigures(admit.owner)
          await aTurn()
          admit.check(figures, upload)
        }
        return store.uploads.create(upload)
      },
    })

  /** Claims by reading first and then moving the state without a condition on it. */
  const claimsInTwoSteps = (store: MetadataStore) =>
    withUploads(store, {
      async claimFinalization(uploadId, now) {
        const upload = await store.uploads.find(uploadId)
        if (!upload || upload.state !== 'receiving' || upload.receivedBytes !== upload.totalBytes) return false
        await aTurn()
        return store.uploads.transition(uploadId, ['receiving', 'finalizing'], 'finalizing', now)
      },
    })

  /** Completes for whoever asks, as if the lease were theirs. */
  const ignoresTheLease = (store: MetadataStore) =>
    withUploads(store, {
      async completeUpload(completion) {
        const upload = await store.uploads.find(completion.uploadId)
        return store.uploads.completeUpload({ ...completion, leaseOwner: upload?.leaseOwner ?? completion.leaseOwner })
      },
    })

  /** Takes a finalisation over whether or not its lease is still live. */
  const takesLiveLeases = (store: MetadataStore) =>
    withUploads(store, {
      async takeOverFinalization(uploadId, now, lease) {
        const upload = await store.uploads.find(uploadId)
        if (upload?.leaseOwner) await store.uploads.releaseLease(uploadId, upload.leaseOwner)
        return store.uploads.takeOverFinalization(uploadId, now, lease)
      },
    })

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

  /** What each broken store gets wrong, the check that must notice it, and the failed expectation that says so. */
  const cases: [string, string, (file: string) => MetadataStore, RegExp][] = [
    ['a transaction without a gate lets outside work land inside it', 'work from outside an open transaction never lands inside it (and, on one connection, waits for it)',
      (file) => new UngatedTransactions(SqliteMetadataStore.open(file).db), /expect\(received\)/],
    ['a claim that reads and then writes lets two callers finalise one upload', 'exactly one of many callers racing to claim a finalisation wins, from every connection',
      (file) => claimsInTwoSteps(SqliteMetadataStore.open(file)), /toHaveLength/],
    ['a completion that ignores the lease records the file for an instance that lost it', 'only the owner of the lease completes an upload or fails it, once',
      (file) => ignoresTheLease(SqliteMetadataStore.open(file)), /toBeNull/],
    ['a take-over of a live lease is noticed', 'a finalisation is taken over only once its lease is stale, by one caller, and the old owner then loses it',
      (file) => takesLiveLeases(SqliteMetadataStore.open(file)), /toBe/],
    ['an admission checked apart from the insert lets parallel creations overshoot the limit', 'parallel creations through a link limited to k files admit exactly k',
      (file) => admitsBeforeInserting(SqliteMetadataStore.open(file)), /toHaveLength/],
  ]
  for (const [title, checkName, open, failure] of cases) {
    test(title, async () => {
      await expect(METADATA_CHECKS[checkName]!(broken(open))).rejects.toThrow(failure)
    })
  }
})
