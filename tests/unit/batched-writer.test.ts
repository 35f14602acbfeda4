import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BatchedWriter, writeAll } from '../../src/adapters/local-disk/batched-writer.ts'
import { PositionalFile } from '../../src/platform/positional-file.ts'

const dir = mkdtempSync(join(tmpdir(), 'dropfold-writer-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const randomBytes = (n: number) => {
  const bytes = new Uint8Array(n)
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(n, at + 65536)))
  return bytes
}

/** Cuts `bytes` into pieces of the given sizes, repeated. */
function cut(bytes: Uint8Array, sizes: number[]) {
  const pieces: Uint8Array[] = []
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, bytes.length - at)
    pieces.push(bytes.subarray(at, at + n))
    at += n
  }
  return pieces
}

describe('batched writer', () => {
  test('pieces of every size land at consecutive positions after the offset, and count as written', async () => {
    const path = join(dir, 'sizes')
    const bytes = randomBytes(5 * 1024 * 1024 + 123)
    const file = PositionalFile.open(path, 'w+')
    const writer = new BatchedWriter(file, 1000, path)
    // Tiny, network-sized and large pieces, more pieces than one batch may hold.
    for (const piece of cut(bytes, [1, 7, 65536, 3, 2 * 1024 * 1024, 100])) await writer.add(piece)
    expect(await writer.finish()).toBe(bytes.length)
    file.close()
    const written = readFileSync(path)
    expect(written.length).toBe(1000 + bytes.length)
    expect(Buffer.compare(written.subarray(1000), Buffer.from(bytes))).toBe(0)
  })

  test('a write the disk takes only in part is finished from where it stopped, mid-piece', async () => {
    const path = join(dir, 'short')
    const real = PositionalFile.open(path, 'w+')
    // Takes at most 5 bytes per call, as a regular file may when interrupted by a signal.
    const calls: number[] = []
    const stingy = {
      writev: async (pieces: Uint8Array[], position: number) => {
        const first = pieces.find((p) => p.length > 0)!
        calls.push(position)
        return real.writev([first.subarray(0, 5)], position)
      },
    }
    const bytes = randomBytes(23)
    await writeAll(stingy, cut(bytes, [3, 9, 11]), 10)
    real.close()
    expect(Buffer.compare(readFileSync(path).subarray(10), Buffer.from(bytes))).toBe(0)
    // Fails if a short write were taken as complete, or a piece restarted from its beginning.
    expect(calls).toEqual([10, 13, 18, 22, 27, 32])
  })

  test('parallel writers of one file share early syncs: one at a time, while the bytes arrive', async () => {
    const path = join(dir, 'parallel')
    const first = randomBytes(8 * 1024 * 1024)
    const second = randomBytes(8 * 1024 * 1024)
    // Both descriptors count their datasyncs in one place, as the kernel would see them for the file.
    let running = 0
    let mostAtOnce = 0
    let early = 0
    let finishing = false
    const counted = (file: PositionalFile) =>
      Object.assign(Object.create(file) as PositionalFile, {
        datasync: async () => {
          if (!finishing) early++
          mostAtOnce = Math.max(mostAtOnce, ++running)
          try {
            await file.datasync()
          } finally {
            running--
          }
        },
      })
    const files = [PositionalFile.open(path, 'w+'), PositionalFile.open(path, 'r+')]
    const writers = [new BatchedWriter(counted(files[0]!), 0, path), new BatchedWriter(counted(files[1]!), first.length, path)]
    const firstPieces = cut(first, [65536])
    const secondPieces = cut(second, [65536])
    for (let i = 0; i < firstPieces.length; i++) {
      await Promise.all([writers[0]!.add(firstPieces[i]!), writers[1]!.add(secondPieces[i]!)])
      expect(mostAtOnce).toBeLessThanOrEqual(1)
    }
    finishing = true
    expect(await Promise.all(writers.map((w) => w.finish()))).toEqual([first.length, second.length])
    for (const file of files) file.close()
    // The disk was asked to flush while the bytes arrived (how often depends on its speed).
    expect(early).toBeGreaterThanOrEqual(1)
    expect(Buffer.compare(readFileSync(path), Buffer.concat([first, second]))).toBe(0)
  })

  test('empty pieces are not written (an empty file writes nothing)', async () => {
    const calls: Uint8Array[][] = []
    const file = { writev: async (pieces: Uint8Array[]) => (calls.push(pieces), pieces.reduce((n, p) => n + p.length, 0)) }
    await writeAll(file, [new Uint8Array(0)], 0)
    await writeAll(file, [new Uint8Array(0), new Uint8Array(3), new Uint8Array(0)], 0)
    expect(calls.map((pieces) => pieces.map((p) => p.length))).toEqual([[3]])
  })

  test('a disk that takes nothing is an error, not an endless loop', async () => {
    const none = { writev: async () => 0 }
    await expect(writeAll(none, [new Uint8Array(4)], 0)).rejects.toThrow('took none')
  })

  test('a write or sync that fails while the body waits for the network is reported by salvage, not left unhandled', async () => {
    // Unhandled, such a rejection would end the server: a failing disk must cost one upload, not all.
    const unhandled: unknown[] = []
    const note = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', note)
    try {
      const failing = () => Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }))
      const disk = { writev: failing, datasync: failing, read: async () => 0, close: () => {} }
      const writer = new BatchedWriter(disk, 0, join(dir, 'failing'))
      // Enough for a batch to go to the disk and an early sync to start, both in the background.
      await writer.add(new Uint8Array(3 * 1024 * 1024))
      // The body waits for its next piece meanwhile: the failures have time to go unhandled.
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve))
      expect(await writer.salvage()).toBe(0)
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', note)
    }
  })
})
