import { describe, expect, test } from 'bun:test'
import { randomBytes } from 'node:crypto'
import type { BlobStore } from '../../src/ports/blobs.ts'
import { InterruptedWrite, type Staging } from '../../src/ports/staging.ts'

/**
 * A Staging and the BlobStore that adopts from it, fresh for each check. `reopen` gives new
 * instances over the same stored bytes (what a restarted server sees).
 */
export interface StorageUnderTest {
  staging: Staging
  blobs: BlobStore
  reopen(): Promise<{ staging: Staging; blobs: BlobStore }>
  /** The names of everything the store keeps (files; objects and multipart uploads): what costs space or money. */
  stored(): Promise<string[]>
  close?(): void | Promise<void>
}

export type MakeStorage = () => Promise<StorageUnderTest>

const newUploadId = () => randomBytes(16).toString('hex')
const sha256 = (bytes: Uint8Array) => new Bun.CryptoHasher('sha256').update(bytes).digest('hex')
const bytesOf = (text: string) => new TextEncoder().encode(text)

async function* pieces(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield part
}

/** A body that yields `parts` and then fails, as a client that went away. */
async function* breaksOff(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* pieces(...parts)
  throw new Error('the client went away')
}

/** Everything a read yields, copied piece by piece as it comes (so borrowed pieces can be checked too). */
async function readAll(staging: Staging, uploadId: string, start: number, end: number, options?: { borrowed?: boolean }) {
  const copies: Uint8Array[] = []
  for await (const piece of staging.read(uploadId, start, end, options)) copies.push(new Uint8Array(piece)) // a copy (Buffer.slice would be a view)
  return Buffer.concat(copies)
}

async function blobBytes(blobs: BlobStore, sha: string, start: number, end: number) {
  return new Uint8Array(await new Response(await blobs.body(sha, start, end)).arrayBuffer())
}

/** Stages `data` as a new upload, whole, seals it, and returns its id. */
async function staged(staging: Staging, data: Uint8Array) {
  const id = newUploadId()
  await staging.begin(id)
  expect(await staging.write(id, 0, pieces(data), data.length)).toBe(data.length)
  await staging.seal(id, data.length)
  return id
}

async function using(make: MakeStorage, check: (under: StorageUnderTest) => Promise<void>) {
  const under = await make()
  try {
    await check(under)
  } finally {
    await under.close?.()
  }
}

/**
 * What every Staging + BlobStore adapter must do, as named checks (each throws on a violation),
 * so the test file can also show that a broken adapter fails them.
 */
export const STORAGE_CHECKS: Record<string, (make: MakeStorage) => Promise<void>> = {
  'a begun upload has empty staging, is listed, and beginning it again keeps its bytes': (make) =>
    using(make, async ({ staging }) => {
      const id = newUploadId()
      expect(await staging.size(id)).toBeNull()
      await staging.begin(id)
      expect(await staging.size(id)).toBe(0)
      expect(await staging.list()).toContain(id)
      await staging.write(id, 0, pieces(bytesOf('kept')), 4)
      await staging.begin(id)
      expect(await staging.size(id)).toBe(4)
      await staging.seal(id, 4)
      expect((await readAll(staging, id, 0, 4)).toString()).toBe('kept')
    }),

  'bytes written at offsets in any order read back in any range, and the size is where the furthest write ends': (make) =>
    using(make, async ({ staging }) => {
      const data = randomBytes(3 * 1000 + 17)
      const id = newUploadId()
      await staging.begin(id)
      // Last chunk first, then the others at once.
      await staging.write(id, 3000, pieces(data.subarray(3000)), 1000)
      expect(await staging.size(id)).toBe(data.length)
      await Promise.all([0, 1, 2].map((i) => staging.write(id, i * 1000, pieces(data.subarray(i * 1000, i * 1000 + 600), data.subarray(i * 1000 + 600, (i + 1) * 1000)), 1000)))
      await staging.seal(id, data.length)
      expect(await readAll(staging, id, 0, data.length)).toEqual(data)
      expect(await readAll(staging, id, 999, 2001)).toEqual(data.subarray(999, 2001))
      expect(await readAll(staging, id, 5, 5)).toEqual(Buffer.alloc(0))
    }),

  'an append written and then refused is void: the retry, with other bytes and another length, is what the sealed staging holds': (make) =>
    using(make, async ({ staging }) => {
      const MiB = 1024 * 1024
      const data = randomBytes(10 * MiB)
      const id = newUploadId()
      await staging.begin(id, { totalBytes: data.length, maxBytes: data.length })
      const append = (start: number, bytes: Uint8Array) => staging.write(id, start, pieces(bytes), bytes.length, { append: true })
      await append(0, data.subarray(0, 3 * MiB))
      // Written in full, then refused by the engine (a checksum that did not match): never recorded.
      await append(3 * MiB, randomBytes(6 * MiB))
      // The client sends those bytes again, in other sizes.
      await append(3 * MiB, data.subarray(3 * MiB, 5 * MiB))
      await append(5 * MiB, data.subarray(5 * MiB))
      await staging.seal(id, data.length)
      expect(sha256(await readAll(staging, id, 0, data.length))).toBe(sha256(data))
    }),

  'borrowed and fresh reads give the same bytes, in pieces of at most what was asked': (make) =>
    using(make, async ({ staging }) => {
      const data = randomBytes(3 * 1024 * 1024 + 5)
      const id = await staged(staging, data)
      const fresh: Uint8Array[] = []
      for await (const piece of staging.read(id, 1, data.length)) fresh.push(piece)
      // Fresh pieces stay as they were after the next one was read (compared by hash: a diff of megabytes is slow to print).
      expect(sha256(Buffer.concat(fresh))).toBe(sha256(data.subarray(1)))
      expect(sha256(await readAll(staging, id, 1, data.length, { borrowed: true }))).toBe(sha256(data.subarray(1)))
    }),

  'a read past the end of the staged bytes fails': (make) =>
    using(make, async ({ staging }) => {
      const id = await staged(staging, bytesOf('short'))
      await expect(readAll(staging, id, 0, 6)).rejects.toThrow()
      await expect(readAll(staging, newUploadId(), 0, 1)).rejects.toThrow()
    }),

  'a body longer than allowed is refused': (make) =>
    using(make, async ({ staging }) => {
      const id = newUploadId()
      await staging.begin(id)
      const failure = await staging.write(id, 0, pieces(bytesOf('12345'), bytesOf('678')), 6).then(() => null, (error: unknown) => error)
      expect(failure).toBeInstanceOf(InterruptedWrite)
    }),

  'a body that breaks off rejects with InterruptedWrite, and the bytes it calls durable read back': (make) =>
    using(make, async ({ staging }) => {
      const data = randomBytes(300 * 1024)
      const id = newUploadId()
      await staging.begin(id)
      const failure = await staging.write(id, 0, breaksOff(data.subarray(0, 100 * 1024), data.subarray(100 * 1024)), data.length).then(() => null, (error: unknown) => error)
      expect(failure).toBeInstanceOf(InterruptedWrite)
      const durable = (failure as InterruptedWrite).durableBytes
      expect(durable).toBeLessThanOrEqual(data.length)
      await staging.seal(id, durable)
      expect(await readAll(staging, id, 0, durable)).toEqual(data.subarray(0, durable))
    }),

  'a whole write stages an upload never begun; any other write to one fails': (make) =>
    using(make, async ({ staging }) => {
      const id = newUploadId()
      expect(await staging.write(id, 0, pieces(bytesOf('all of it')), 9, { whole: true })).toBe(9)
      await staging.seal(id, 9)
      expect((await readAll(staging, id, 0, 9)).toString()).toBe('all of it')
      const other = newUploadId()
      await expect(staging.write(other, 0, pieces(bytesOf('x')), 1)).rejects.toThrow()
      expect(await staging.list()).not.toContain(other)
    }),

  'removed staging is gone, removing twice is harmless, and beginning again starts empty': (make) =>
    using(make, async ({ staging }) => {
      const id = await staged(staging, bytesOf('bytes'))
      const kept = await staged(staging, bytesOf('others'))
      await staging.remove(id)
      await staging.remove(id)
      await staging.remove(newUploadId())
      expect(await staging.size(id)).toBeNull()
      expect(await staging.list()).not.toContain(id)
      expect(await staging.list()).toContain(kept)
      await staging.begin(id)
      expect(await staging.size(id)).toBe(0)
    }),

  'an adopted upload is a blob whose bytes are served in ranges, also once its staging is removed': (make) =>
    using(make, async ({ staging, blobs }) => {
      const data = randomBytes(70_000)
      const sha = sha256(data)
      const id = await staged(staging, data)
      expect(await blobs.has(sha)).toBe(false)
      await blobs.adopt(id, sha, 'replace')
      expect(await blobs.has(sha)).toBe(true)
      // Still staged: the caller removes it once the database says where the bytes went.
      expect(await staging.size(id)).toBe(data.length)
      await staging.remove(id)
      expect(await blobBytes(blobs, sha, 0, data.length)).toEqual(new Uint8Array(data))
      expect(await blobBytes(blobs, sha, 100, 200)).toEqual(new Uint8Array(data.subarray(100, 200)))
    }),

  'adopting over an existing copy keeps it when trusted and replaces it otherwise': (make) =>
    using(make, async ({ staging, blobs }) => {
      const data = bytesOf('the real bytes')
      const sha = sha256(data)
      // A copy under the hash that does not match it stands for "whatever was there".
      await blobs.write(sha, bytesOf('something else'), false)
      await blobs.adopt(await staged(staging, data), sha, 'trusted')
      expect(new TextDecoder().decode(await blobBytes(blobs, sha, 0, 14))).toBe('something else')
      await blobs.adopt(await staged(staging, data), sha, 'replace')
      expect(await blobBytes(blobs, sha, 0, data.length)).toEqual(data)
    }),

  'bytes written from memory are a blob, vouched or not, in place of any copy': (make) =>
    using(make, async ({ blobs }) => {
      const data = bytesOf('small file')
      const sha = sha256(data)
      await blobs.write(sha, bytesOf('stale copy'), false)
      await blobs.write(sha, data, false)
      expect(await blobBytes(blobs, sha, 0, data.length)).toEqual(data)
      await blobs.write(sha, bytesOf('other copy'), true)
      expect(new TextDecoder().decode(await blobBytes(blobs, sha, 0, 10))).toBe('other copy')
    }),

  'a removed blob is gone, and removing an absent one is harmless': (make) =>
    using(make, async ({ blobs }) => {
      const data = bytesOf('to be purged')
      const sha = sha256(data)
      await blobs.write(sha, data, false)
      await blobs.remove(sha)
      await blobs.remove(sha)
      expect(await blobs.has(sha)).toBe(false)
    }),

  'a new instance over the same store sees what was staged and stored': (make) =>
    using(make, async (under) => {
      const data = randomBytes(5000)
      const id = newUploadId()
      await under.staging.begin(id)
      await under.staging.write(id, 1000, pieces(data.subarray(1000)), 4000)
      const blob = bytesOf('stored')
      await under.blobs.write(sha256(blob), blob, false)
      const { staging, blobs } = await under.reopen()
      expect(await staging.list()).toContain(id)
      expect(await staging.size(id)).toBe(5000)
      await staging.begin(id)
      await staging.write(id, 0, pieces(data.subarray(0, 1000)), 1000)
      await staging.seal(id, 5000)
      expect(await readAll(staging, id, 0, 5000)).toEqual(data)
      expect(await blobs.has(sha256(blob))).toBe(true)
    }),
}

const MiB = 1024 * 1024

/** Writes `data` as chunks of `chunkBytes` (the last one shorter), all at once and last first. */
async function writeChunks(staging: Staging, id: string, data: Uint8Array, chunkBytes: number) {
  await staging.begin(id, { totalBytes: data.length, maxBytes: data.length, chunkBytes })
  const offsets = Array.from({ length: Math.ceil(data.length / chunkBytes) }, (_, i) => i * chunkBytes).reverse()
  const written = await Promise.all(offsets.map((offset) => staging.write(id, offset, pieces(data.subarray(offset, offset + chunkBytes)), chunkBytes)))
  expect(written.reduce((sum, bytes) => sum + bytes, 0)).toBe(data.length)
}

async function sealedHash(staging: Staging, id: string, totalBytes: number) {
  await staging.seal(id, totalBytes)
  return sha256(await readAll(staging, id, 0, totalBytes))
}

/** The rules an object store adds (parts of at least 5 MiB, a multipart upload to complete): large enough to need several parts. */
Object.assign(STORAGE_CHECKS, {
  'writes of odd sizes one after another (tus PATCHes) make the whole file once sealed': (make: MakeStorage) =>
    using(make, async ({ staging }) => {
      const data = randomBytes(13 * MiB + 12_345)
      const id = newUploadId()
      await staging.begin(id, { totalBytes: null, maxBytes: 100 * MiB })
      const cuts = [0, 1_000, 3 * MiB + 7, 3 * MiB + 8, 8 * MiB, 8 * MiB + 1, 12 * MiB + 99, data.length]
      for (let i = 1; i < cuts.length; i++) {
        const [from, to] = [cuts[i - 1]!, cuts[i]!]
        // Each body in a few pieces of odd sizes, as a network delivers it.
        const body = data.subarray(from, to)
        expect(await staging.write(id, from, pieces(body.subarray(0, 777), body.subarray(777)), to - from)).toBe(to - from)
        expect(await staging.size(id)).toBe(to)
      }
      expect(await sealedHash(staging, id, data.length)).toBe(sha256(data))
    }),

  'chunks smaller than a part, sent at once and out of order, make the whole file once sealed': (make: MakeStorage) =>
    using(make, async ({ staging }) => {
      const data = randomBytes(11 * MiB + 333)
      const id = newUploadId()
      await writeChunks(staging, id, data, MiB)
      expect(await staging.size(id)).toBe(data.length)
      expect(await sealedHash(staging, id, data.length)).toBe(sha256(data))
    }),

  'chunks of 8 MiB, sent at once and out of order, make the whole file once sealed': (make: MakeStorage) =>
    using(make, async ({ staging }) => {
      const data = randomBytes(2 * 8 * MiB + 5)
      const id = newUploadId()
      await writeChunks(staging, id, data, 8 * MiB)
      expect(await sealedHash(staging, id, data.length)).toBe(sha256(data))
    }),

  'sealing again changes nothing; sealing with bytes missing fails and keeps what is there': (make: MakeStorage) =>
    using(make, async ({ staging }) => {
      const id = await staged(staging, bytesOf('sealed'))
      await staging.seal(id, 6)
      expect((await readAll(staging, id, 0, 6)).toString()).toBe('sealed')
      const gap = newUploadId()
      await staging.begin(gap, { totalBytes: 10, maxBytes: 10, chunkBytes: 5 })
      await staging.write(gap, 5, pieces(bytesOf('later')), 5)
      // A file on disk cannot tell a hole from zeros; a store that must assemble parts can.
      if (!staging.readsUnsealed) await expect(staging.seal(gap, 10)).rejects.toThrow()
      await staging.write(gap, 0, pieces(bytesOf('first')), 5)
      await staging.seal(gap, 10)
      expect((await readAll(staging, gap, 0, 10)).toString()).toBe('firstlater')
    }),

  'the same content uploaded twice is kept once, and served after both stagings are gone': (make: MakeStorage) =>
    using(make, async ({ staging, blobs, stored }) => {
      const data = randomBytes(6 * MiB + 1)
      const sha = sha256(data)
      const first = newUploadId()
      await writeChunks(staging, first, data, 2 * MiB)
      await staging.seal(first, data.length)
      await blobs.adopt(first, sha, 'replace')
      await staging.remove(first)
      const once = (await stored()).length
      const second = newUploadId()
      await writeChunks(staging, second, data, 2 * MiB)
      await staging.seal(second, data.length)
      // Proves the second copy is there before it goes.
      expect((await stored()).length).toBeGreaterThan(once)
      await blobs.adopt(second, sha, 'trusted')
      await staging.remove(second)
      expect((await stored()).length).toBe(once)
      expect(sha256(await blobBytes(blobs, sha, 0, data.length))).toBe(sha)
    }),

  'nothing is left once stagings are removed (begun, half written, sealed) and blobs purged': (make: MakeStorage) =>
    using(make, async ({ staging, blobs, stored }) => {
      const data = randomBytes(9 * MiB + 3)
      const half = newUploadId()
      await staging.begin(half, { totalBytes: data.length, maxBytes: data.length, chunkBytes: MiB })
      await staging.write(half, 0, pieces(data.subarray(0, 6 * MiB)), 6 * MiB)
      await staging.write(half, 7 * MiB, pieces(data.subarray(7 * MiB, 8 * MiB)), MiB)
      const begun = newUploadId()
      await staging.begin(begun)
      const sealed = newUploadId()
      await writeChunks(staging, sealed, data, 8 * MiB)
      await staging.seal(sealed, data.length)
      const kept = await staged(staging, bytesOf('a small file'))
      await blobs.adopt(kept, sha256(bytesOf('a small file')), 'replace')
      await blobs.write(sha256(bytesOf('from memory')), bytesOf('from memory'), false)
      // Proves there was something to clean up.
      expect((await stored()).length).toBeGreaterThan(0)
      for (const id of [half, begun, sealed, kept]) await staging.remove(id)
      expect(await staging.list()).toEqual([])
      await blobs.remove(sha256(bytesOf('a small file')))
      await blobs.remove(sha256(bytesOf('from memory')))
      expect(await stored()).toEqual([])
    }),
})

/** Runs every check against one adapter. */
export function storageContract(name: string, make: MakeStorage) {
  describe(`Staging and BlobStore contract: ${name}`, () => {
    for (const [title, check] of Object.entries(STORAGE_CHECKS)) test(title, () => check(make))
  })
}
