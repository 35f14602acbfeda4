import { afterEach, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryLocker } from '../../src/adapters/memory/locker.ts'
import { loadConfig } from '../../src/config.ts'
import { SqliteMetadataStore, type Db } from '../../src/adapters/sqlite/metadata.ts'
import { insertUploadOnce } from '../../src/adapters/sqlite/uploads.ts'
import { FINALIZATION_LEASE_MS, UploadEngine } from '../../src/engine/engine.ts'
import { LocalBlobStore, LocalStaging } from '../../src/adapters/local-disk/local-disk.ts'
import type { BlobStore } from '../../src/ports/blobs.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { blobPath } from '../helpers/server.ts'

/**
 * Two engine instances on one database and data directory stand in for two processes (each with
 * its own database connection, staging and blob store, built as src/server.ts builds them).
 */
interface Instance {
  engine: UploadEngine
  db: Db
  logs: string[]
}

let dataDir = ''
const opened: SqliteMetadataStore[] = []
let now = 1_000_000
const clock = () => now

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close()
  rmSync(dataDir, { recursive: true, force: true })
})

async function instance(name: string, wrapBlobs: (blobs: BlobStore) => BlobStore = (blobs) => blobs): Promise<Instance> {
  const config = loadConfig({ DATA_DIR: dataDir, ADMIN_PASSWORD: 'correct horse battery' })
  const store = SqliteMetadataStore.open(join(dataDir, 'dropfold.sqlite'), clock())
  const db = store.db
  opened.push(store)
  const logs: string[] = []
  const log = (message: string, context?: Record<string, unknown>) => logs.push(`${message} ${JSON.stringify(context ?? {})}`)
  // Each instance has its own locker, as two processes would.
  const staging = new LocalStaging(join(dataDir, 'staging'))
  const blobs = new LocalBlobStore(join(dataDir, 'blobs'), staging, log)
  await Promise.all([staging.init(), blobs.init()])
  return { engine: new UploadEngine({ store, config, staging, blobs: wrapBlobs(blobs), locker: new MemoryLocker(), clock, log, instanceId: `instance:${name}` }), db, logs }
}

/** The state a stop leaves once every byte of an upload is staged and its finalisation began. */
async function finalizingUpload(db: Db, lease: { owner: string; expiresAt: number } | null = null) {
  const data = randomData(300_000)
  const id = 'a'.repeat(32)
  insertUploadOnce(db, {
    id, protocol: 'tus', owner: 'admin', folderId: 1, fileName: 'leased.bin', mimeType: 'application/octet-stream',
    totalBytes: data.length, chunkBytes: 0, chunkCount: 0, receivedBytes: data.length, state: 'finalizing',
    createdAt: clock(), updatedAt: clock(), leaseOwner: lease?.owner ?? null, leaseExpiresAt: lease?.expiresAt ?? null,
  })
  await Bun.write(join(dataDir, 'staging', id), data)
  return { id, sha256: sha256(data) }
}

const stored = (db: Db, id: string) => ({
  upload: db.$client.query('select state from uploads where id = ?').get(id),
  files: db.$client.query('select name, sha256 from files').all(),
  blobs: db.$client.query('select sha256, ref_count as refCount from blobs').all(),
})

function setUp() {
  dataDir = mkdtempSync(join(tmpdir(), 'dropfold-leases-'))
  now = 1_000_000
}

test('two instances recovering the same finalising upload record its file once', async () => {
  setUp()
  const [a, b] = [await instance('a'), await instance('b')]
  const upload = await finalizingUpload(a.db)

  await Promise.all([a.engine.recover(), b.engine.recover()])

  expect(stored(a.db, upload.id)).toEqual({
    upload: { state: 'complete' },
    files: [{ name: 'leased.bin', sha256: upload.sha256 }],
    blobs: [{ sha256: upload.sha256, refCount: 1 }],
  })
  expect(sha256(new Uint8Array(await Bun.file(blobPath({ dataDir }, upload.sha256)).arrayBuffer()))).toBe(upload.sha256)
})

test('a finalisation whose lease is live is not taken over by another instance’s recovery, and is once it lapses', async () => {
  setUp()
  const b = await instance('b')
  const upload = await finalizingUpload(b.db, { owner: 'instance:a', expiresAt: now + FINALIZATION_LEASE_MS })

  now += FINALIZATION_LEASE_MS - 1
  await b.engine.recover()
  expect(stored(b.db, upload.id)).toEqual({ upload: { state: 'finalizing' }, files: [], blobs: [] })

  // Proof that it could have been: the same recovery, once the lease has lapsed.
  now += 2
  await b.engine.recover()
  expect(stored(b.db, upload.id).upload).toEqual({ state: 'complete' })
})

test('an expired lease is taken over, by one instance, and the file recorded once', async () => {
  setUp()
  const [a, b] = [await instance('a'), await instance('b')]
  const upload = await finalizingUpload(a.db, { owner: 'instance:gone', expiresAt: now - 1 })

  await Promise.all([a.engine.resumeFinalizations(), b.engine.recover(), a.engine.recover(), b.engine.resumeFinalizations()])

  expect(stored(a.db, upload.id)).toEqual({
    upload: { state: 'complete' },
    files: [{ name: 'leased.bin', sha256: upload.sha256 }],
    blobs: [{ sha256: upload.sha256, refCount: 1 }],
  })
})

test('a finisher that lost its lease records nothing; the instance that took over records the file', async () => {
  setUp()
  // Instance a stops (as a hung process would) right after moving the bytes into the store.
  let adopted!: () => void
  const hasAdopted = new Promise<void>((resolve) => (adopted = resolve))
  let wakeUp!: () => void
  const woken = new Promise<void>((resolve) => (wakeUp = resolve))
  const a = await instance('a', (blobs) => Object.assign(Object.create(blobs) as BlobStore, {
    adopt: async (...args: Parameters<BlobStore['adopt']>) => {
      await blobs.adopt(...args)
      adopted()
      await woken
    },
  }))
  const b = await instance('b')
  const upload = await finalizingUpload(a.db)
  const aRecovers = a.engine.recover()
  await hasAdopted

  // b does not take over while a's lease is live…
  await b.engine.recover()
  expect(stored(b.db, upload.id).upload).toEqual({ state: 'finalizing' })
  // …and does once it has lapsed.
  now += FINALIZATION_LEASE_MS + 1
  await b.engine.recover()
  expect(stored(b.db, upload.id).upload).toEqual({ state: 'complete' })

  wakeUp()
  await aRecovers
  expect(stored(a.db, upload.id)).toEqual({
    upload: { state: 'complete' },
    files: [{ name: 'leased.bin', sha256: upload.sha256 }],
    blobs: [{ sha256: upload.sha256, refCount: 1 }],
  })
  expect(a.logs.some((line) => line.startsWith('finalisation lease lost'))).toBe(true)
})
