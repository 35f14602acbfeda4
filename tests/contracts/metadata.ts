import { describe, expect, test } from 'bun:test'
import { randomBytes } from 'node:crypto'
import { linkOwner, ROOT_FOLDER_ID, type Admission, type NewUpload } from '../../src/core/records.ts'
import type { MetadataStore } from '../../src/ports/metadata.ts'

/** A metadata store to test, fresh (empty but for Home) for each check. */
export interface MetadataUnderTest {
  store: MetadataStore
  /** A second store on the same data, as a second process would open it (when the adapter can). */
  another?(): Promise<MetadataStore>
  /**
   * Whether an open transaction holds the store's one connection, so that work from outside
   * waits until it ends (SQLite); otherwise (PostgreSQL's pool) outside work goes on meanwhile,
   * on other connections.
   */
  oneConnection?: boolean
  close(): Promise<void>
}

export type MakeMetadata = () => Promise<MetadataUnderTest>

async function using(make: MakeMetadata, check: (under: MetadataUnderTest) => Promise<void>) {
  const under = await make()
  try {
    await check(under)
  } finally {
    await under.close()
  }
}

const NOW = 1_700_000_000_000
const newId = () => randomBytes(16).toString('hex')

/** A receiving upload of `chunkCount` chunks of 10 bytes, unless told otherwise. */
function upload(overrides: Partial<NewUpload> = {}): NewUpload {
  const chunkCount = overrides.chunkCount ?? 3
  return {
    id: newId(), protocol: 'dropzone', owner: 'admin', clientKey: null, folderId: ROOT_FOLDER_ID, fileName: 'a.bin', mimeType: 'application/octet-stream',
    totalBytes: chunkCount * 10, chunkBytes: 10, chunkCount, state: 'receiving', createdAt: NOW, updatedAt: NOW, ...overrides,
  }
}

/** An upload that holds every byte and is being finalised under `lease`. */
async function finalizing(store: MetadataStore, lease = { owner: 'instance:a', expiresAt: NOW + 60_000 }) {
  const { upload: made } = await store.uploads.create(upload({ chunkCount: 1, totalBytes: 10 }))
  await store.uploads.recordChunk(made.id, 0, 10, NOW, lease)
  return made.id
}

const completion = (uploadId: string, sha256: string, leaseOwner = 'instance:a') => ({
  uploadId, folderId: ROOT_FOLDER_ID, name: 'a.bin', sizeBytes: 10, sha256, mimeType: 'application/octet-stream', now: NOW, leaseOwner,
})

/** At most `limit` uploads (finished or not) per link: the kind of rule a drop link's admission is. */
const atMost = (linkId: number, limit: number): Admission => ({
  owner: linkOwner(linkId),
  check({ link }) {
    if (!link) throw new Error('the store gave no link usage to a link admission')
    if (link.files + link.inProgress >= limit) throw new Error('limit reached')
  },
})

/** How many blobs and files the store counts. */
async function counts(store: MetadataStore) {
  const { blobCount, fileCount } = await store.library.storageSummary()
  return { blobCount, fileCount }
}

/**
 * Lets every other task waiting to run have a few turns (a chance to misbehave, not a wait for
 * an event): what a transaction's work does when it awaits something else.
 */
async function othersRun(turns = 10) {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

/**
 * What every MetadataStore adapter must do, as named checks (each throws on a violation), so the
 * test file can also show that a broken store fails them.
 */
export const METADATA_CHECKS: Record<string, (make: MakeMetadata) => Promise<void>> = {
  'an upload is inserted once per owner and client key': (make) =>
    using(make, async ({ store }) => {
      const first = await store.uploads.create(upload({ clientKey: 'dz-1' }))
      const again = await store.uploads.create(upload({ clientKey: 'dz-1' }))
      const otherOwner = await store.uploads.create(upload({ clientKey: 'dz-1', owner: 'link:7' }))
      expect(first.created).toBe(true)
      expect(again).toEqual({ upload: first.upload, created: false })
      expect(otherOwner.created).toBe(true)
      expect((await store.uploads.findByClientKey('admin', 'dz-1'))?.id).toBe(first.upload.id)
    }),

  'a chunk recorded twice, even at once, is counted once': (make) =>
    using(make, async ({ store }) => {
      const { upload: made } = await store.uploads.create(upload())
      const lease = { owner: 'instance:a', expiresAt: NOW + 60_000 }
      await Promise.all([1, 2, 3].map(() => store.uploads.recordChunk(made.id, 1, 10, NOW, lease)))
      await store.uploads.recordChunk(made.id, 1, 10, NOW, lease)
      const after = (await store.uploads.find(made.id))!
      expect({ chunks: after.receivedChunks, bytes: after.receivedBytes, state: after.state }).toEqual({ chunks: 1, bytes: 10, state: 'receiving' })
      expect(await store.uploads.receivedChunks(made.id)).toEqual([1])
      expect(await store.uploads.hasChunk(made.id, 1)).toBe(true)
      expect(await store.uploads.hasChunk(made.id, 0)).toBe(false)
      expect(await store.uploads.firstMissingChunk(made.id, 0, 3)).toBe(0)
      await store.uploads.recordChunk(made.id, 0, 10, NOW, lease)
      expect(await store.uploads.firstMissingChunk(made.id, 0, 3)).toBe(2)
    }),

  'the last chunk claims the finalisation in the same step, for exactly one of the callers racing with it': (make) =>
    using(make, async ({ store }) => {
      const { upload: made } = await store.uploads.create(upload({ chunkCount: 2, totalBytes: 20 }))
      await store.uploads.recordChunk(made.id, 0, 10, NOW, { owner: 'instance:a', expiresAt: NOW + 60_000 })
      const racing = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.uploads.recordChunk(made.id, 1, 10, NOW, { owner: `instance:${i}`, expiresAt: NOW + 60_000 })),
      )
      expect(racing.filter((r) => r.claimed)).toHaveLength(1)
      const after = (await store.uploads.find(made.id))!
      expect(after.state).toBe('finalizing')
      expect(after.leaseOwner).toBe(racing.find((r) => r.claimed)!.upload!.leaseOwner)
      // Nothing is recorded once the upload is no longer receiving.
      expect((await store.uploads.recordChunk(made.id, 0, 10, NOW, { owner: 'x', expiresAt: NOW })).claimed).toBe(false)
      expect((await store.uploads.find(made.id))!.receivedChunks).toBe(2)
    }),

  'exactly one of many callers racing to claim a finalisation wins, from every connection': (make) =>
    using(make, async ({ store, another }) => {
      const stores = [store, ...(another ? [await another(), await another()] : [])]
      try {
        for (let round = 0; round < 5; round++) {
          const { upload: made } = await store.uploads.create(upload({ chunkCount: 1, totalBytes: 10, receivedChunks: 1, receivedBytes: 10 }))
          const claims = await Promise.all(
            Array.from({ length: 12 }, (_, i) => stores[i % stores.length]!.uploads.claimFinalization(made.id, NOW, { owner: `instance:${i}`, expiresAt: NOW + 60_000 })),
          )
          expect(claims.filter(Boolean)).toHaveLength(1)
        }
        // An upload still missing bytes is never claimed.
        const { upload: missing } = await store.uploads.create(upload({ chunkCount: 2, totalBytes: 20, receivedChunks: 1, receivedBytes: 10 }))
        expect(await store.uploads.claimFinalization(missing.id, NOW, { owner: 'instance:a', expiresAt: NOW + 60_000 })).toBe(false)
      } finally {
        for (const other of stores.slice(1)) await other.close()
      }
    }),

  'a finalisation is taken over only once its lease is stale, by one caller, and the old owner then loses it': (make) =>
    using(make, async ({ store }) => {
      const id = await finalizing(store, { owner: 'instance:a', expiresAt: NOW + 1_000 })
      expect(await store.uploads.takeOverFinalization(id, NOW, { owner: 'instance:b', expiresAt: NOW + 60_000 })).toBe(false)
      expect(await store.uploads.unleasedFinalizations(NOW)).toEqual([])
      expect((await store.uploads.unleasedFinalizations(NOW + 2_000)).map((u) => u.id)).toEqual([id])
      const later = NOW + 2_000
      const takers = await Promise.all(['b', 'c', 'd'].map((name) => store.uploads.takeOverFinalization(id, later, { owner: `instance:${name}`, expiresAt: later + 60_000 })))
      expect(takers.filter(Boolean)).toHaveLength(1)
      expect(await store.uploads.renewLease(id, { owner: 'instance:a', expiresAt: later + 60_000 })).toBe(false)
      const winner = (await store.uploads.find(id))!.leaseOwner!
      expect(await store.uploads.renewLease(id, { owner: winner, expiresAt: later + 90_000 })).toBe(true)
      // Let go: anyone may take it at once.
      expect(await store.uploads.releaseLease(id, winner)).toBe(true)
      expect(await store.uploads.takeOverFinalization(id, later, { owner: 'instance:e', expiresAt: later + 60_000 })).toBe(true)
    }),

  'only the owner of the lease completes an upload or fails it, once': (make) =>
    using(make, async ({ store }) => {
      const id = await finalizing(store)
      const sha = 'a'.repeat(64)
      expect(await store.uploads.completeUpload(completion(id, sha, 'instance:b'))).toBeNull()
      expect(await store.uploads.failFinalization(id, 'instance:b', NOW, 'no')).toBe(false)
      expect((await store.uploads.find(id))!.state).toBe('finalizing')
      expect(await store.library.blobIsReferenced(sha)).toBe(false)
      const file = await store.uploads.completeUpload(completion(id, sha))
      expect(file).toMatchObject({ name: 'a.bin', sha256: sha, sizeBytes: 10, folderId: ROOT_FOLDER_ID, uploadId: id, deletedAt: null })
      expect(await store.uploads.completeUpload(completion(id, sha))).toBeNull()
      expect(await store.uploads.find(id)).toMatchObject({ state: 'complete', fileId: file!.id, sha256: sha, leaseOwner: null })
      expect(await counts(store)).toEqual({ blobCount: 1, fileCount: 1 })
    }),

  "a name taken in the folder gets a number; a blob's references are its files": (make) =>
    using(make, async ({ store }) => {
      const sha = 'b'.repeat(64)
      const files = []
      for (let i = 0; i < 3; i++) files.push((await store.uploads.completeUpload(completion(await finalizing(store), sha)))!)
      expect(files.map((f) => f.name)).toEqual(['a.bin', 'a (1).bin', 'a (2).bin'])
      expect(await counts(store)).toEqual({ blobCount: 1, fileCount: 3 })
      await store.library.trashFiles([files[0]!.id, files[1]!.id], NOW)
      const some = await store.library.purgeTrash()
      expect(some.unusedBlobs).toEqual([])
      expect(await store.library.blobIsReferenced(sha)).toBe(true)
      await store.library.trashFiles([files[2]!.id], NOW)
      expect((await store.library.purgeTrash()).unusedBlobs).toEqual([sha])
      expect(await store.library.blobIsReferenced(sha)).toBe(false)
      expect(await counts(store)).toEqual({ blobCount: 0, fileCount: 0 })
    }),

  'a purge racing with the completion of the same content leaves the content counted for the new file': (make) =>
    using(make, async ({ store }) => {
      for (let round = 0; round < 5; round++) {
        const sha = `${round}`.repeat(64)
        const old = (await store.uploads.completeUpload(completion(await finalizing(store), sha)))!
        await store.library.trashFiles([old.id], NOW)
        const id = await finalizing(store)
        const [purged, file] = await Promise.all([store.library.purgeTrash(), store.uploads.completeUpload(completion(id, sha))])
        expect(file).not.toBeNull()
        expect(purged.files).toBe(1)
        expect(await store.library.blobIsReferenced(sha)).toBe(true)
        // Whichever ran first, the new file's content is counted once, and any bytes the purge freed are the old file's alone.
        await store.library.trashFiles([file!.id], NOW)
        expect((await store.library.purgeTrash()).unusedBlobs).toEqual([sha])
      }
    }),

  'a transaction whose work throws leaves nothing of it': (make) =>
    using(make, async ({ store }) => {
      const made = upload({ clientKey: 'rolled-back' })
      const error = await store
        .transaction(async (tx) => {
          await tx.sessions.create({ idHash: 'h1', createdAt: NOW, expiresAt: NOW + 1000, clientAddress: null })
          await othersRun()
          await tx.uploads.create(made)
          await tx.settings.set('k', 'v')
          await tx.links.create({ tokenHash: 't1', folderId: ROOT_FOLDER_ID, label: 'L', createdAt: NOW })
          expect(await tx.uploads.find(made.id)).toBeDefined()
          throw new Error('refused')
        })
        .catch((e: Error) => e)
      expect(error).toBeInstanceOf(Error)
      expect(await store.sessions.isLive('h1', NOW)).toBe(false)
      expect(await store.uploads.find(made.id)).toBeUndefined()
      expect(await store.settings.get('k')).toBeNull()
      expect(await store.links.findByTokenHash('t1')).toBeUndefined()
      // And one that does not throw keeps everything.
      const kept = await store.transaction(async (tx) => {
        await tx.settings.set('k', 'v')
        await othersRun()
        return tx.uploads.create(made)
      })
      expect(kept.created).toBe(true)
      expect(await store.settings.get('k')).toBe('v')
    }),

  'work from outside an open transaction never lands inside it (and, on one connection, waits for it)': (make) =>
    using(make, async ({ store, oneConnection }) => {
      const { upload: receiving } = await store.uploads.create(upload())
      const outsiders: Promise<unknown>[] = []
      const order: string[] = []
      await store
        .transaction(async (tx) => {
          await tx.settings.set('inside', '1')
          // Other requests arrive while this transaction's work awaits something.
          outsiders.push(store.settings.set('outside', '1').then(() => order.push('setting')))
          outsiders.push(store.uploads.recordChunk(receiving.id, 0, 10, NOW, { owner: 'x', expiresAt: NOW }).then(() => order.push('chunk')))
          outsiders.push(store.sessions.create({ idHash: 'h2', createdAt: NOW, expiresAt: NOW + 1000, clientAddress: null }).then(() => order.push('session')))
          // On one connection they can only wait; with several, they land meanwhile, outside it.
          if (oneConnection) await othersRun(20)
          else await Promise.all(outsiders)
          order.push('transaction ends')
          throw new Error('refused')
        })
        .catch(() => {})
      await Promise.all(outsiders)
      // Undone with the transaction: only its own write.
      expect(await store.settings.get('inside')).toBeNull()
      expect(await store.settings.get('outside')).toBe('1')
      expect(await store.sessions.isLive('h2', NOW)).toBe(true)
      expect((await store.uploads.find(receiving.id))!.receivedChunks).toBe(1)
      expect(order.indexOf('transaction ends')).toBe(oneConnection ? 0 : 3)
    }),

  'parallel creations through a link limited to k files admit exactly k': (make) =>
    using(make, async ({ store }) => {
      const link = await store.links.create({ tokenHash: 'limited', folderId: ROOT_FOLDER_ID, label: 'limited', createdAt: NOW, maxFiles: 3 })
      const admit = atMost(link.id, 3)
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, () => store.uploads.create(upload({ owner: linkOwner(link.id), chunkCount: 1, totalBytes: 10 }), admit)),
      )
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3)
      expect(await store.links.usage(link.id)).toEqual({ files: 0, fileBytes: 0, inProgress: 3, inProgressBytes: 30 })
    }),

  'whole files are recorded with their uploads all together, or none of them': (make) =>
    using(make, async ({ store }) => {
      const link = await store.links.create({ tokenHash: 'two', folderId: ROOT_FOLDER_ID, label: 'two', createdAt: NOW })
      const item = (sha: string) => ({ upload: { ...upload({ owner: linkOwner(link.id), chunkCount: 1, totalBytes: 10, receivedChunks: 1, receivedBytes: 10 }) }, sha256: sha })
      const three = [item('c'.repeat(64)), item('d'.repeat(64)), item('e'.repeat(64))]
      await expect(store.uploads.createComplete(three, atMost(link.id, 2))).rejects.toThrow('limit reached')
      expect(await counts(store)).toEqual({ blobCount: 0, fileCount: 0 })
      const two = await store.uploads.createComplete(three.slice(0, 2), atMost(link.id, 2))
      expect(two?.map((f) => f.sha256)).toEqual(['c'.repeat(64), 'd'.repeat(64)])
      expect(await store.links.usage(link.id)).toEqual({ files: 2, fileBytes: 20, inProgress: 0, inProgressBytes: 0 })
      // One of them known already (same client key): none is recorded.
      const keyed = { upload: { ...item('f'.repeat(64)).upload, clientKey: 'k' }, sha256: 'f'.repeat(64) }
      expect(await store.uploads.createComplete([keyed])).toHaveLength(1)
      expect(await store.uploads.createComplete([item('0'.repeat(64)), { ...keyed, upload: { ...keyed.upload, id: newId() } }])).toBeNull()
      expect(await counts(store)).toEqual({ blobCount: 3, fileCount: 3 })
    }),

  "a link's usage counts finished files and uploads in progress, not failed ones": (make) =>
    using(make, async ({ store }) => {
      const link = await store.links.create({ tokenHash: 'usage', folderId: ROOT_FOLDER_ID, label: 'usage', createdAt: NOW })
      const owner = linkOwner(link.id)
      const lease = { owner: 'instance:a', expiresAt: NOW + 60_000 }
      const { upload: done } = await store.uploads.create(upload({ owner, chunkCount: 1, totalBytes: 10 }))
      await store.uploads.recordChunk(done.id, 0, 10, NOW, lease)
      await store.uploads.completeUpload({ ...completion(done.id, '1'.repeat(64)) })
      await store.uploads.create(upload({ owner, totalBytes: 25, chunkCount: 3 }))
      const { upload: failed } = await store.uploads.create(upload({ owner }))
      expect(await store.uploads.transition(failed.id, ['receiving'], 'failed', NOW)).toBe(true)
      expect(await store.uploads.transition(failed.id, ['receiving'], 'failed', NOW)).toBe(false)
      expect(await store.links.usage(link.id)).toEqual({ files: 1, fileBytes: 10, inProgress: 1, inProgressBytes: 25 })
      const figures = await store.uploads.admissionFigures(owner)
      expect(figures.link).toEqual({ files: 1, fileBytes: 10, inProgress: 1, inProgressBytes: 25 })
      expect(figures.outstanding).toEqual({ links: 25, others: 0, own: 25 })
      expect(await store.uploads.remove(failed.id)).toBe(true)
      expect((await store.uploads.ofLink(link.id)).map((u) => u.id)).not.toContain(failed.id)
    }),

  'a session lives until it expires, and ends when removed': (make) =>
    using(make, async ({ store }) => {
      await store.sessions.create({ idHash: 'a', createdAt: NOW, expiresAt: NOW + 1000, clientAddress: '127.0.0.1' })
      await store.sessions.create({ idHash: 'b', createdAt: NOW, expiresAt: NOW + 1000, clientAddress: null })
      await store.sessions.create({ idHash: 'c', createdAt: NOW, expiresAt: NOW + 1000, clientAddress: null })
      expect(await store.sessions.isLive('a', NOW + 999)).toBe(true)
      expect(await store.sessions.isLive('a', NOW + 1000)).toBe(false)
      expect(await store.sessions.isLive('unknown', NOW)).toBe(false)
      await store.sessions.remove('a')
      expect(await store.sessions.isLive('a', NOW)).toBe(false)
      await store.sessions.removeAll('b')
      expect([await store.sessions.isLive('b', NOW), await store.sessions.isLive('c', NOW)]).toEqual([true, false])
      await store.sessions.removeAll()
      expect(await store.sessions.isLive('b', NOW)).toBe(false)
    }),

  'a setting set only if absent keeps the first value': (make) =>
    using(make, async ({ store }) => {
      // Called at once, on a store with several connections either may arrive first: both answer the one that did.
      const [first, second] = await Promise.all([store.settings.setIfAbsent('secret', 'one'), store.settings.setIfAbsent('secret', 'two')])
      expect(first).toBe(second)
      expect(['one', 'two']).toContain(first)
      expect(await store.settings.get('secret')).toBe(first)
      expect(await store.settings.setIfAbsent('secret', 'later')).toBe(first)
      await store.settings.set('secret', 'three')
      expect(await store.settings.get('secret')).toBe('three')
    }),
}

/** Registers the contract for one adapter: every check, a fresh store each. */
export function metadataContract(name: string, make: MakeMetadata) {
  describe(`MetadataStore contract: ${name}`, () => {
    for (const [title, check] of Object.entries(METADATA_CHECKS)) test(title, () => check(make))
  })
}
