import { afterEach, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalBlobStore, LocalStaging } from '../../src/adapters/local-disk/local-disk.ts'
import { MemoryLocker } from '../../src/adapters/memory/locker.ts'
import { SqliteMetadataStore } from '../../src/adapters/sqlite/metadata.ts'
import { loadConfig } from '../../src/config.ts'
import { UploadEngine } from '../../src/engine/engine.ts'
import type { Locker } from '../../src/ports/locker.ts'
import type { Staging } from '../../src/ports/staging.ts'
import { randomData, sha256 } from '../helpers/data.ts'

/**
 * Two engine instances on one database and data directory, sharing one locker as instances
 * share a PostgreSQL one: what one instance is doing must protect an upload from the other,
 * with nothing kept in either's memory.
 */

let dataDir = ''
const opened: SqliteMetadataStore[] = []
const engines: UploadEngine[] = []
const gates: (() => void)[] = []

afterEach(async () => {
  // A failed test leaves nothing waiting.
  for (const open of gates.splice(0)) open()
  for (const engine of engines.splice(0)) await engine.settle()
  for (const store of opened.splice(0)) await store.close()
  rmSync(dataDir, { recursive: true, force: true })
})

function setUp() {
  dataDir = mkdtempSync(join(tmpdir(), 'dropfold-instances-'))
  return new MemoryLocker()
}

async function instance(name: string, locker: Locker, wrapStaging: (staging: Staging) => Staging = (staging) => staging, shared = false) {
  const config = loadConfig({ DATA_DIR: dataDir, ADMIN_PASSWORD: 'correct horse battery' })
  const store = SqliteMetadataStore.open(join(dataDir, 'dropfold.sqlite'), Date.now())
  opened.push(store)
  const staging = new LocalStaging(join(dataDir, 'staging'))
  const blobs = new LocalBlobStore(join(dataDir, 'blobs'), staging, () => {})
  await Promise.all([staging.init(), blobs.init()])
  const engine = new UploadEngine({ store, config, staging: wrapStaging(staging), blobs, locker, clock: Date.now, log: () => {}, instanceId: `instance:${name}`, shared })
  engines.push(engine)
  return { engine, store }
}

/** The staging, counting the bytes each instance reads back from it. */
function countingReads(counts: Map<string, number>, name: string) {
  return (staging: Staging): Staging => {
    counts.set(name, 0)
    return Object.assign(Object.create(staging), {
      async *read(uploadId: string, start: number, end: number, options?: { borrowed?: boolean }) {
        for await (const piece of staging.read(uploadId, start, end, options)) {
          counts.set(name, counts.get(name)! + piece.length)
          yield piece
        }
      },
    }) as Staging
  }
}

/** A promise with its resolver, for a test to say when something may go on. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  gates.push(open)
  return { open, opened }
}

const once = (bytes: Uint8Array) => (async function* () { yield bytes })()

test('a refused chunk does not discard an upload another instance is writing a chunk of', async () => {
  const locker = setUp()
  const [a, b] = [await instance('a', locker), await instance('b', locker)]
  const chunkBytes = 64 * 1024
  const data = randomData(chunkBytes * 2)
  const spec = { protocol: 'dropzone' as const, owner: 'admin', clientKey: 'dz-shared', folderId: 1, fileName: 'shared.bin', totalBytes: data.length, chunkBytes, chunkCount: 2, clientAddress: null }

  // b is halfway through chunk 1: half its bytes sent, the rest held back.
  const halfway = gate()
  const rest = gate()
  const upload = await b.engine.begin(spec)
  const bWrites = b.engine.write(upload, 1 * upload.chunkBytes, (async function* () {
    yield data.subarray(chunkBytes, chunkBytes + chunkBytes / 2)
    halfway.open()
    await rest.opened
    yield data.subarray(chunkBytes + chunkBytes / 2)
  })())
  await halfway.opened

  // a refuses a short chunk 0 of the same upload, and (as the Dropzone adapter does) discards the upload if empty.
  const aOpened = await a.engine.begin(spec)
  await expect(a.engine.write(aOpened, 0 * aOpened.chunkBytes, once(data.subarray(0, 10)))).rejects.toThrow('expected')
  await a.engine.discardIfEmpty(aOpened.id)
  expect(await a.store.uploads.find(upload.id)).toBeDefined()

  rest.open()
  expect((await bWrites).receivedChunks).toBe(1)
  const done = await a.engine.write(aOpened, 0 * aOpened.chunkBytes, once(data.subarray(0, chunkBytes)))
  expect({ state: done.state, sha256: done.sha256 }).toEqual({ state: 'complete', sha256: sha256(data) })

  // Proof that it could have been discarded: the same refusal with nobody writing.
  const other = await a.engine.begin({ ...spec, clientKey: 'dz-alone' })
  await expect(a.engine.write(other, 0 * other.chunkBytes, once(data.subarray(0, 10)))).rejects.toThrow('expected')
  await b.engine.discardIfEmpty(other.id)
  expect(await a.store.uploads.find(other.id)).toBeUndefined()
})

test('a tus partial one instance is assembling cannot be cancelled, or used, by another', async () => {
  const locker = setUp()
  // a's reading of the partial's staged bytes waits until the test lets it go on.
  const reading = gate()
  const goOn = gate()
  const a = await instance('a', locker, (staging) => Object.assign(Object.create(staging) as Staging, {
    read: (...args: Parameters<Staging['read']>) => (async function* () {
      reading.open()
      await goOn.opened
      yield* staging.read(...args)
    })(),
  }))
  const b = await instance('b', locker)
  const data = randomData(100_000)
  const base = { protocol: 'tus' as const, owner: 'admin', folderId: 1, fileName: '', clientAddress: null }
  const part = await b.engine.begin({ ...base, totalBytes: data.length, concat: 'partial' })
  expect((await b.engine.write(part, 0, once(data))).state).toBe('complete')

  const assembling = a.engine.concatenate({ ...base, fileName: 'whole.bin' }, [part.id])
  await reading.opened
  expect(await b.engine.cancel(part.id)).toBe(false)
  await expect(b.engine.concatenate({ ...base, fileName: 'again.bin' }, [part.id])).rejects.toThrow('being used')
  goOn.open()
  const final = await assembling
  const file = (await a.store.library.file((await a.store.uploads.find(final.id))!.fileId!))!
  expect({ state: final.state, name: file.name, sha256: file.sha256 }).toEqual({ state: 'complete', name: 'whole.bin', sha256: sha256(data) })

  // Proof that it could have been cancelled: another finished partial nobody is assembling.
  const idle = await b.engine.begin({ ...base, totalBytes: data.length, concat: 'partial' })
  await b.engine.write(idle, 0, once(data))
  expect(await a.engine.cancel(idle.id)).toBe(true)
})

test('chunks spread over shared instances are read back once, by the instance that finalises, not by every instance', async () => {
  const locker = setUp()
  const reads = new Map<string, number>()
  const names = ['a', 'b', 'c']
  const instances = []
  for (const name of names) instances.push(await instance(name, locker, countingReads(reads, name), true))
  const chunkBytes = 64 * 1024
  const chunkCount = 9
  const data = randomData(chunkBytes * chunkCount)
  const spec = { protocol: 'dropzone' as const, owner: 'admin', clientKey: 'dz-spread', folderId: 1, fileName: 'spread.bin', totalBytes: data.length, chunkBytes, chunkCount, clientAddress: null }

  // The chunks arrive in order, each at the next instance (a round-robin balancer).
  let last
  for (let index = 0; index < chunkCount; index++) {
    const { engine } = instances[index % names.length]!
    const upload = await engine.begin(spec)
    last = await engine.write(upload, index * chunkBytes, once(data.subarray(index * chunkBytes, (index + 1) * chunkBytes)))
    await engine.settle()
  }
  expect({ state: last!.state, sha256: last!.sha256 }).toEqual({ state: 'complete', sha256: sha256(data) })
  const total = [...reads.values()].reduce((sum, bytes) => sum + bytes, 0)
  // Instance c finalises; it saw no chunk go by right where its hash stood, so it reads the file once.
  expect({ total, a: reads.get('a'), b: reads.get('b') }).toEqual({ total: data.length, a: 0, b: 0 })
})
