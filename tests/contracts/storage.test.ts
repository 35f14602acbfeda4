import { describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nodeFileSystem, type FileSystem } from '../../src/adapters/local-disk/file-system.ts'
import { LocalBlobStore, LocalStaging } from '../../src/adapters/local-disk/local-disk.ts'
import type { BlobStore } from '../../src/ports/blobs.ts'
import type { Staging } from '../../src/ports/staging.ts'
import { contractRejects } from './broken.ts'
import { STORAGE_CHECKS, storageContract, type MakeStorage } from './storage.ts'

async function localDisk(dir: string) {
  const staging = new LocalStaging(join(dir, 'staging'))
  const blobs = new LocalBlobStore(join(dir, 'blobs'), staging)
  await Promise.all([staging.init(), blobs.init()])
  return { staging, blobs }
}

/** The local-disk adapter in a temporary directory, optionally altered by `flaw`. */
function localDiskWith(flaw: (store: { staging: Staging; blobs: BlobStore }) => { staging: Staging; blobs: BlobStore } = (store) => store): MakeStorage {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropfold-storage-'))
    return {
      ...flaw(await localDisk(dir)),
      reopen: async () => flaw(await localDisk(dir)),
      close: () => rmSync(dir, { recursive: true, force: true }),
    }
  }
}

storageContract('local disk', localDiskWith())

/** Adapters that each break one promise of the contract, which must notice. */
const broken: Record<string, { flaw: Parameters<typeof localDiskWith>[0]; fails: string }> = {
  'staging that writes every body at the start': {
    flaw: ({ staging, blobs }) => ({ staging: Object.assign(Object.create(staging) as Staging, { write: (id: string, _offset: number, ...rest: [AsyncIterable<Uint8Array>, number, { whole?: boolean }?]) => staging.write(id, 0, ...rest) }), blobs }),
    fails: 'bytes written at offsets in any order read back in any range, and the size is where the furthest write ends',
  },
  'staging whose read reuses one buffer even when not asked to': {
    flaw: ({ staging, blobs }) => ({ staging: Object.assign(Object.create(staging) as Staging, { read: (id: string, start: number, end: number) => staging.read(id, start, end, { borrowed: true }) }), blobs }),
    fails: 'borrowed and fresh reads give the same bytes, in pieces of at most what was asked',
  },
  'a blob store that always replaces on adoption': {
    flaw: ({ staging, blobs }) => ({ staging, blobs: Object.assign(Object.create(blobs) as BlobStore, { adopt: (id: string, sha: string) => blobs.adopt(id, sha, 'replace') }) }),
    fails: 'adopting over an existing copy keeps it when trusted and replaces it otherwise',
  },
  'staging that keeps nothing across instances (memory only)': {
    flaw: ({ staging, blobs }) => ({ staging: Object.assign(Object.create(staging) as Staging, { list: async () => [] }), blobs }),
    fails: 'a new instance over the same store sees what was staged and stored',
  },
}

contractRejects(
  'the storage contract rejects broken adapters',
  STORAGE_CHECKS,
  Object.fromEntries(Object.entries(broken).map(([name, { flaw, fails }]) => [name, { make: localDiskWith(flaw), fails }])),
)

describe('local disk: blob directories', () => {
  test('a blob is stored only once the name of its new directory is durable, also when another write made that directory a moment before', async () => {
    // Two blobs whose hashes start alike share a directory made for the first of them; the
    // second must not be reported stored before that directory's name is synced in the store.
    const dir = mkdtempSync(join(tmpdir(), 'dropfold-storage-'))
    const blobsDir = join(dir, 'blobs')
    const gate = Promise.withResolvers<void>()
    let gated = false
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      syncDirectory: (path) => (gated && path === blobsDir ? gate.promise.then(() => nodeFileSystem.syncDirectory(path)) : nodeFileSystem.syncDirectory(path)),
    }
    try {
      const staging = new LocalStaging(join(dir, 'staging'), fileSystem)
      const blobs = new LocalBlobStore(blobsDir, staging, () => {}, fileSystem)
      await Promise.all([staging.init(), blobs.init()])
      gated = true
      const first = 'ed' + '1'.repeat(62)
      const second = 'ed' + '2'.repeat(62)
      const states = { first: 'pending', second: 'pending' }
      const writing = [
        blobs.write(first, new Uint8Array([1]), false).then(() => void (states.first = 'stored')),
        blobs.write(second, new Uint8Array([2]), false).then(() => void (states.second = 'stored')),
      ]
      // Generous: both are stored within milliseconds once nothing holds them.
      await Promise.race([Promise.all(writing), Bun.sleep(1000)])
      expect(states).toEqual({ first: 'pending', second: 'pending' })
      gate.resolve()
      await Promise.all(writing)
      expect(states).toEqual({ first: 'stored', second: 'stored' })
    } finally {
      gate.resolve()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
