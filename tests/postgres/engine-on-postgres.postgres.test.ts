import { afterEach, beforeEach, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PostgresLocker } from '../../src/adapters/postgres/locker.ts'
import { PostgresMetadataStore } from '../../src/adapters/postgres/metadata.ts'
import { loadConfig } from '../../src/config.ts'
import { UploadEngine } from '../../src/engine/engine.ts'
import { LocalBlobStore, LocalStaging } from '../../src/storage/local-disk.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { describePostgres, suiteDatabase } from '../helpers/postgres.ts'

/**
 * The engine on the PostgreSQL metadata store, as two instances would run it: each its own pool,
 * its own advisory-lock locker, on one database and one data directory, chunks of one upload
 * arriving at both at once. The store serves the engine as the SQLite one does.
 */
describePostgres('the engine on PostgreSQL, two instances', () => {
  const database = suiteDatabase()
  let dataDir = ''
  const closing: (() => Promise<void>)[] = []

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'dropfold-pg-engine-'))
  })
  afterEach(async () => {
    for (const close of closing.splice(0)) await close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  async function instance(name: string) {
    const config = loadConfig({ DATA_DIR: dataDir, ADMIN_PASSWORD: 'correct horse battery' })
    const [store, locker] = await Promise.all([PostgresMetadataStore.open(database.url, { max: 6 }), PostgresLocker.open(database.url)])
    closing.push(async () => {
      await locker.close()
      await store.close()
    })
    const staging = new LocalStaging(join(dataDir, 'staging'))
    const blobs = new LocalBlobStore(join(dataDir, 'blobs'), () => {})
    await Promise.all([staging.init(), blobs.init()])
    const engine = new UploadEngine({ store, config, staging, blobs, locker, clock: Date.now, log: () => {}, instanceId: `instance:${name}` })
    closing.unshift(() => engine.settle())
    return { engine, store, blobs }
  }

  test('chunks of each upload spread over both instances at once: one file per upload, its SHA-256 right, its bytes right', async () => {
    const [a, b] = await Promise.all([instance('a'), instance('b')])
    const chunkBytes = 64 * 1024
    for (let round = 0; round < 6; round++) {
      const data = randomData(chunkBytes * 4 + 1000)
      const chunkCount = Math.ceil(data.length / chunkBytes)
      const spec = {
        protocol: 'dropzone' as const, owner: 'admin', clientKey: `dz-${round}`, folderId: 1, fileName: `round-${round}.bin`,
        totalBytes: data.length, chunkBytes, chunkCount, clientAddress: null,
      }
      const results = await Promise.all(
        Array.from({ length: chunkCount }, async (_, index) => {
          const { engine } = index % 2 ? a : b
          const upload = await engine.openChunked(spec)
          const bytes = data.subarray(index * chunkBytes, (index + 1) * chunkBytes)
          return engine.receiveChunk(upload, index, (async function* () { yield bytes })())
        }),
      )
      const done = results.filter((r) => r.state === 'complete')
      expect(done.length).toBeGreaterThanOrEqual(1)
      const fileIds = new Set(done.map((r) => r.file!.id))
      expect(fileIds.size).toBe(1)
      const file = (await b.store.library.file([...fileIds][0]!))!
      expect({ name: file.name, size: file.sizeBytes, sha256: file.sha256 }).toEqual({ name: `round-${round}.bin`, size: data.length, sha256: sha256(data) })
      const stored = new Uint8Array(await a.blobs.body(file.sha256, 0, data.length).arrayBuffer())
      expect(sha256(stored)).toBe(sha256(data))
    }
    expect((await a.store.library.storageSummary()).fileCount).toBe(6)
  })
})
