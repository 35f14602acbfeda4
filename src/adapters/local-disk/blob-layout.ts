import { join } from 'node:path'
import { writeAll } from './batched-writer.ts'
import type { FileSystem } from './file-system.ts'

/**
 * The blob store keeps `<first two hex digits>/<sha256>`: 256 directories, made once. Stores
 * from before 2026-12 used a second level (`ab/cd/<sha256>`), which gave most new blobs a new
 * directory of their own (an inode, and three directory syncs) until tens of thousands of
 * files were stored.
 */
export const LAYOUT_MARKER = 'LAYOUT'
const LAYOUT_TEXT = 'one level: <first two hex digits of the SHA-256>/<SHA-256>\n'
const HEX2 = /^[0-9a-f]{2}$/
const SHA256 = /^[0-9a-f]{64}$/

/**
 * Moves the blobs of a two-level store up one level, once (the marker file says it is done). A
 * rename moves each blob whole, so a stop halfway leaves every blob at one of its two paths, and
 * the next start carries on; nothing is served before this returns.
 */
export async function useOneLevelLayout(fs: FileSystem, dir: string, log: (message: string, context?: Record<string, unknown>) => void) {
  const marker = join(dir, LAYOUT_MARKER)
  if (fs.stat(marker)) return
  let moved = 0
  for (const top of (await fs.readdir(dir)).filter((name) => HEX2.test(name))) {
    const topDir = join(dir, top)
    const lower = (await fs.readdir(topDir)).filter((name) => HEX2.test(name) && fs.stat(join(topDir, name))?.directory)
    if (lower.length === 0) continue
    for (const name of lower) {
      const from = join(topDir, name)
      for (const blob of (await fs.readdir(from)).filter((n) => SHA256.test(n))) {
        fs.rename(join(from, blob), join(topDir, blob))
        moved++
      }
    }
    // The new names are durable before the old directories go.
    await fs.syncDirectory(topDir)
    for (const name of lower) {
      await fs.removeDirectory(join(topDir, name)).catch((error) => {
        // Something that is not a blob was left in it: kept, and said.
        log('blob store: directory not empty after moving its blobs, kept', { dir: join(topDir, name), error: String(error) })
      })
    }
    await fs.syncDirectory(topDir)
  }
  if (moved > 0) log('blob store: moved blobs to the one-level layout', { moved })
  const file = await fs.open(marker, 'create')
  try {
    await writeAll(file, [new TextEncoder().encode(LAYOUT_TEXT)], 0)
    await file.datasync()
  } finally {
    file.close()
  }
  await fs.syncDirectory(dir)
}
