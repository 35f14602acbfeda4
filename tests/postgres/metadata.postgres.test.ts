import { expect, test } from 'bun:test'
import { randomBytes } from 'node:crypto'
import { PostgresMetadataStore } from '../../src/adapters/postgres/metadata.ts'
import { linkOwner, ROOT_FOLDER_ID, type Admission, type NewUpload } from '../../src/core/records.ts'
import { SQL } from 'bun'
import { TEST_DATABASE_URL, describePostgres, suiteDatabase } from '../helpers/postgres.ts'
import { countsStatements, statementsOf } from '../helpers/postgres-statements.ts'

/**
 * The PostgreSQL metadata store beyond the shared contract: what each operation costs the
 * database in statements (each one round trip: the adapter awaits every statement before the
 * next; BEGIN and COMMIT count), counted by the server itself (pg_stat_statements, loaded by
 * .ci/services/postgres.sh); and races between two instances (two pools) on one database.
 */

const NOW = 1_700_000_000_000
const lease = (owner = 'instance:a') => ({ owner, expiresAt: NOW + 60_000 })
const upload = (overrides: Partial<NewUpload> = {}): NewUpload => ({
  id: randomBytes(16).toString('hex'), protocol: 'dropzone', owner: 'admin', clientKey: null, folderId: ROOT_FOLDER_ID, fileName: 'a.bin',
  mimeType: 'application/octet-stream', totalBytes: 30, chunkBytes: 10, chunkCount: 3, state: 'receiving', createdAt: NOW, updatedAt: NOW, ...overrides,
})

const counting = await countsStatements()

describePostgres('PostgreSQL metadata store: round trips, and races between instances', () => {
  const database = suiteDatabase()

  test.skipIf(!counting)('round trips: one statement for find, hasChunk, recordChunk (its claim of the finalisation included), recordBytes and completeUpload; none for durable()', async () => {
    const store = await PostgresMetadataStore.open(database.url)
    const client = store.db.$client
    await client`create extension if not exists pg_stat_statements`
    const cost = (operation: () => Promise<unknown>) => statementsOf(client, operation)
    try {
      const link = await store.links.create({ tokenHash: 'rt', folderId: ROOT_FOLDER_ID, label: 'rt', createdAt: NOW, maxFiles: 10 })
      const admit: Admission = { owner: linkOwner(link.id), check() {} }
      const figures: Record<string, number> = {}
      let id = ''
      figures['uploads.create'] = await cost(async () => (id = (await store.uploads.create(upload())).upload.id))
      figures['uploads.create (admitted, with a client key)'] = await cost(() => store.uploads.create(upload({ owner: linkOwner(link.id), clientKey: 'k' }), admit))
      figures['uploads.find'] = await cost(() => store.uploads.find(id))
      figures['uploads.hasChunk'] = await cost(() => store.uploads.hasChunk(id, 0))
      figures['uploads.recordChunk'] = await cost(() => store.uploads.recordChunk(id, 0, 10, NOW, lease()))
      figures['uploads.recordChunk (again: counted once)'] = await cost(() => store.uploads.recordChunk(id, 0, 10, NOW, lease()))
      await store.uploads.recordChunk(id, 1, 10, NOW, lease())
      let claimed = false
      figures['uploads.recordChunk (the last: claims the finalisation)'] = await cost(async () => (claimed = (await store.uploads.recordChunk(id, 2, 10, NOW, lease())).claimed))
      expect(claimed).toBe(true)
      figures['uploads.renewLease'] = await cost(() => store.uploads.renewLease(id, lease()))
      figures['uploads.completeUpload'] = await cost(() => store.uploads.completeUpload({ uploadId: id, folderId: ROOT_FOLDER_ID, name: 'a.bin', sizeBytes: 30, sha256: 'a'.repeat(64), mimeType: 'application/octet-stream', now: NOW, leaseOwner: 'instance:a' }))
      const streamed = (await store.uploads.create(upload({ protocol: 'tus' }))).upload.id
      figures['uploads.recordBytes'] = await cost(() => store.uploads.recordBytes(streamed, 0, 10, NOW))
      figures['uploads.createComplete (one small file)'] = await cost(() =>
        store.uploads.createComplete([{ upload: { ...upload({ chunkCount: 1, totalBytes: 10, receivedChunks: 1, receivedBytes: 10 }) }, sha256: 'b'.repeat(64) }]),
      )
      figures['sessions.isLive'] = await cost(() => store.sessions.isLive('x', NOW))
      figures['durable'] = await cost(() => store.durable())
      console.log('PostgreSQL round trips per metadata operation:', figures)
      expect(figures).toEqual({
        'uploads.create': 1,
        'uploads.create (admitted, with a client key)': 6,
        'uploads.find': 1,
        'uploads.hasChunk': 1,
        'uploads.recordChunk': 1,
        'uploads.recordChunk (again: counted once)': 1,
        'uploads.recordChunk (the last: claims the finalisation)': 1,
        'uploads.renewLease': 1,
        'uploads.completeUpload': 1,
        'uploads.recordBytes': 1,
        'uploads.createComplete (one small file)': 6,
        'sessions.isLive': 1,
        durable: 0,
      })
    } finally {
      await store.close()
    }
  })

  test("an upload's last two chunks recorded by two instances at once: exactly one claims the finalisation, every time", async () => {
    const [a, b] = await Promise.all([PostgresMetadataStore.open(database.url, { max: 4 }), PostgresMetadataStore.open(database.url, { max: 4 })])
    try {
      let finalisations = 0
      for (let round = 0; round < 50; round++) {
        const { upload: made } = await a.uploads.create(upload({ chunkCount: 2, totalBytes: 20 }))
        const [one, two] = await Promise.all([a.uploads.recordChunk(made.id, 0, 10, NOW, lease('instance:a')), b.uploads.recordChunk(made.id, 1, 10, NOW, lease('instance:b'))])
        expect([one.claimed, two.claimed].filter(Boolean)).toHaveLength(1)
        finalisations += Number(one.claimed) + Number(two.claimed)
        const after = (await b.uploads.find(made.id))!
        expect({ state: after.state, chunks: after.receivedChunks, bytes: after.receivedBytes }).toEqual({ state: 'finalizing', chunks: 2, bytes: 20 })
        expect(after.leaseOwner).toBe(one.claimed ? 'instance:a' : 'instance:b')
      }
      expect(finalisations).toBe(50)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  test('uploads of one name completed by two instances at once each get a name of their own, past the names tried in one statement too', async () => {
    const [a, b] = await Promise.all([PostgresMetadataStore.open(database.url, { max: 6 }), PostgresMetadataStore.open(database.url, { max: 6 })])
    try {
      const folder = await a.library.createFolder(ROOT_FOLDER_ID, 'namesakes', NOW)
      const finalizing = async () => {
        const { upload: made } = await a.uploads.create(upload({ folderId: folder.id, chunkCount: 1, totalBytes: 10 }))
        await a.uploads.recordChunk(made.id, 0, 10, NOW, lease())
        return made.id
      }
      const ids = await Promise.all(Array.from({ length: 24 }, finalizing))
      const files = await Promise.all(
        ids.map((id, i) =>
          (i % 2 ? a : b).uploads.completeUpload({ uploadId: id, folderId: folder.id, name: 'same.txt', sizeBytes: 10, sha256: 'd'.repeat(64), mimeType: 'text/plain', now: NOW, leaseOwner: 'instance:a' }),
        ),
      )
      const names = files.map((f) => f!.name)
      expect(new Set(names).size).toBe(24)
      expect(names.toSorted()).toEqual(['same.txt', ...Array.from({ length: 23 }, (_, n) => `same (${n + 1}).txt`)].toSorted())
      expect(await a.library.countLiveFiles(folder.id)).toBe(24)
      // Each upload points at its own file; the blob counts all of them.
      for (const [i, id] of ids.entries()) expect((await a.uploads.find(id))!).toMatchObject({ state: 'complete', fileId: files[i]!.id, leaseOwner: null })
      expect(await a.uploads.receivedChunks(ids[0]!)).toEqual([])
      await a.library.trashFiles(files.slice(1).map((f) => f!.id), NOW)
      expect((await a.library.purgeTrash()).unusedBlobs).toEqual([])
      // Whole small files of one name, each recorded with its upload in a transaction, at once on both instances.
      const small = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? a : b).uploads.createComplete([{ upload: upload({ folderId: folder.id, fileName: 'small.txt', chunkCount: 1, totalBytes: 10, receivedChunks: 1, receivedBytes: 10 }), sha256: 'e'.repeat(64) }]),
        ),
      )
      expect(new Set(small.map((made) => made![0]!.name)).size).toBe(12)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  test('parallel creations through a link limited to k, half on each of two instances, admit exactly k', async () => {
    const [a, b] = await Promise.all([PostgresMetadataStore.open(database.url, { max: 6 }), PostgresMetadataStore.open(database.url, { max: 6 })])
    try {
      const link = await a.links.create({ tokenHash: 'two-instances', folderId: ROOT_FOLDER_ID, label: 'k', createdAt: NOW })
      const admit: Admission = {
        owner: linkOwner(link.id),
        check({ link: usage }) {
          if (usage!.files + usage!.inProgress >= 4) throw new Error('limit reached')
        },
      }
      const results = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).uploads.create(upload({ owner: linkOwner(link.id), chunkCount: 1, totalBytes: 10 }), admit)),
      )
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4)
      expect((await b.links.usage(link.id)).inProgress).toBe(4)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  test('a link updated with nothing to change (no field, or only fields left undefined) is answered as it is', async () => {
    const store = await PostgresMetadataStore.open(database.url, { max: 2 })
    try {
      const link = await store.links.create({ tokenHash: 'unchanged', folderId: ROOT_FOLDER_ID, label: 'as it was', createdAt: NOW })
      expect(await store.links.update(link.id, {})).toEqual(link)
      expect(await store.links.update(link.id, { label: undefined, maxFiles: undefined })).toEqual(link)
      expect(await store.links.update(link.id, { label: 'renamed', maxFiles: undefined })).toEqual({ ...link, label: 'renamed' })
      expect(await store.links.update(link.id + 1000, {})).toBeUndefined()
    } finally {
      await store.close()
    }
  })

  test('purging a trashed folder takes its subfolders, files and links, and rehomes the uploads aimed at it', async () => {
    const store = await PostgresMetadataStore.open(database.url, { max: 2 })
    try {
      const top = await store.library.createFolder(ROOT_FOLDER_ID, 'purged', NOW)
      const inner = await store.library.createFolder(top.id, 'inner', NOW)
      const { upload: done } = await store.uploads.create(upload({ folderId: inner.id, chunkCount: 1, totalBytes: 10 }))
      await store.uploads.recordChunk(done.id, 0, 10, NOW, lease())
      const file = (await store.uploads.completeUpload({ uploadId: done.id, folderId: inner.id, name: 'in.bin', sizeBytes: 10, sha256: 'f'.repeat(64), mimeType: 'x', now: NOW, leaseOwner: 'instance:a' }))!
      const { upload: waiting } = await store.uploads.create(upload({ folderId: inner.id }))
      const link = await store.links.create({ tokenHash: 'into-purged', folderId: top.id, label: 'p', createdAt: NOW })
      await store.library.trashFolder(top.id, NOW)
      expect(await store.library.isInTrash(inner.id)).toBe(true)
      expect((await store.library.trashEntries()).map((e) => [e.kind, e.name, e.from])).toEqual([['folder', 'purged', '/']])
      const purged = await store.library.purgeTrash(NOW + 1)
      expect(purged).toEqual({ files: 1, folders: 2, unusedBlobs: ['f'.repeat(64)], rehomedUploads: expect.arrayContaining([{ id: waiting.id, owner: 'admin' }]) })
      expect((await store.uploads.find(waiting.id))!.folderId).toBe(ROOT_FOLDER_ID)
      expect((await store.uploads.find(done.id))!.fileId).toBeNull()
      expect(await store.library.file(file.id)).toBeUndefined()
      expect(await store.library.folder(inner.id)).toBeUndefined()
      expect(await store.links.find(link.id)).toBeUndefined()
    } finally {
      await store.close()
    }
  })

  test('bigint columns come back as numbers, beyond 2^32 too', async () => {
    const store = await PostgresMetadataStore.open(database.url, { max: 2 })
    try {
      const big = 5 * 2 ** 40
      const { upload: made } = await store.uploads.create(upload({ totalBytes: big, chunkBytes: 8 * 2 ** 20, chunkCount: big / (8 * 2 ** 20) }))
      const { upload: counted } = await store.uploads.recordChunk(made.id, 0, 8 * 2 ** 20, NOW + 1, lease())
      expect(counted).toMatchObject({ totalBytes: big, receivedBytes: 8 * 2 ** 20, updatedAt: NOW + 1, createdAt: NOW, lengthDeferred: false, receivedChunks: 1 })
      expect(typeof (await store.uploads.find(made.id))!.totalBytes).toBe('number')
      expect(await store.uploads.stagedBytes()).toBeGreaterThanOrEqual(8 * 2 ** 20)
    } finally {
      await store.close()
    }
  })

  test("names sort in byte order, as in SQLite, even in a database whose locale sorts otherwise", async () => {
    // A database that sorts by an ICU locale (a, B, b, _x would be its order).
    const name = `dropfold_test_icu_${crypto.randomUUID().replaceAll('-', '')}`
    const admin = new SQL(TEST_DATABASE_URL!, { max: 1 })
    await admin.unsafe(`create database ${name} template template0 locale_provider icu icu_locale 'en' locale 'C.UTF-8'`)
    const url = new URL(TEST_DATABASE_URL!)
    url.pathname = `/${name}`
    const store = await PostgresMetadataStore.open(url.toString(), { max: 2 })
    try {
      const names = ['b', 'B', 'a', '_x']
      for (const fileName of names) {
        const { upload: made } = await store.uploads.create(upload({ fileName, chunkCount: 1, totalBytes: 10 }))
        await store.uploads.recordChunk(made.id, 0, 10, NOW, lease())
        await store.uploads.completeUpload({ uploadId: made.id, folderId: ROOT_FOLDER_ID, name: fileName, sizeBytes: 10, sha256: 'c'.repeat(64), mimeType: 'text/plain', now: NOW, leaseOwner: 'instance:a' })
        await store.library.createFolder(ROOT_FOLDER_ID, fileName, NOW)
      }
      const page = await store.library.filePage({ folderId: ROOT_FOLDER_ID, sort: 'name', direction: 'asc', filter: '', limit: 10, offset: 0 })
      expect(page.map((f) => f.name)).toEqual(['B', '_x', 'a', 'b'])
      expect((await store.library.liveSubfolders(ROOT_FOLDER_ID)).map((f) => f.name)).toEqual(['B', '_x', 'a', 'b'])
      expect((await store.library.allFolderPaths()).map((f) => f.path)).toEqual(['', '/B', '/_x', '/a', '/b'])
    } finally {
      await store.close()
      await admin.unsafe(`drop database if exists ${name} with (force)`)
      await admin.close()
    }
  })
})
