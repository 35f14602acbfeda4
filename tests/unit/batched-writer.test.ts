import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BatchedWriter, writeAll } from '../../src/storage/batched-writer.ts'
import { PositionalFile } from '../../src/storage/positional-file.ts'

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
    const writer = new BatchedWriter(file, 1000)
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

  test('a disk that takes nothing is an error, not an endless loop', async () => {
    const none = { writev: async () => 0 }
    await expect(writeAll(none, [new Uint8Array(4)], 0)).rejects.toThrow('took none')
  })
})
