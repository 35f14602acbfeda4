import { afterEach, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalBlobStore, LocalStaging } from '../../src/adapters/local-disk/local-disk.ts'
import { MemoryLocker } from '../../src/adapters/memory/locker.ts'
import { loadConfig } from '../../src/config.ts'
import { SqliteMetadataStore } from '../../src/adapters/sqlite/metadata.ts'
import { UploadEngine } from '../../src/engine/engine.ts'
import { randomData, sha256 } from '../helpers/data.ts'

/**
 * Free space is a capability of the staging, not part of it: staging in an object store has no
 * volume to fill, and the engine then refuses nothing for lack of room.
 */

let dataDir = ''
let store: SqliteMetadataStore | undefined

afterEach(async () => {
  await store?.close()
  store = undefined
  rmSync(dataDir, { recursive: true, force: true })
})

/** An engine over the local disk that must leave more free space than any disk has, with or without the disk's free-space gauge. */
async function engine(withGauge: boolean) {
  dataDir = mkdtempSync(join(tmpdir(), 'dropfold-gauge-'))
  const config = loadConfig({ DATA_DIR: dataDir, ADMIN_PASSWORD: 'correct horse battery', MIN_FREE_SPACE: '4000T' })
  store = SqliteMetadataStore.open(join(dataDir, 'dropfold.sqlite'), Date.now())
  const staging = new LocalStaging(join(dataDir, 'staging'))
  const blobs = new LocalBlobStore(join(dataDir, 'blobs'), staging)
  await Promise.all([staging.init(), blobs.init()])
  return new UploadEngine({ store, config, staging, blobs, space: withGauge ? staging : undefined, locker: new MemoryLocker(), clock: Date.now, log: () => {} })
}

const spec = (totalBytes: number) => ({ protocol: 'tus' as const, owner: 'admin', folderId: 1, fileName: 'a.bin', totalBytes, clientAddress: null })

async function* once(bytes: Uint8Array) {
  yield bytes
}

test('with a free-space gauge, an upload that would leave less than MIN_FREE_SPACE is refused', async () => {
  const uploads = await engine(true)
  await expect(uploads.begin(spec(1000))).rejects.toMatchObject({ kind: 'no-space' })
})

test('without a free-space gauge, the same upload is taken and stored', async () => {
  const uploads = await engine(false)
  const data = randomData(1000)
  const upload = await uploads.begin(spec(data.length))
  const done = await uploads.write(upload, 0, once(data))
  expect(done.state).toBe('complete')
  expect(done.sha256).toBe(sha256(data))
})
