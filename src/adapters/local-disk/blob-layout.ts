import { existsSync } from 'node:fs'
import { readdir, rename, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { syncDirectory, syncPath } from '../../platform/sync-path.ts'

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
export async function useOneLevelLayout(dir: string, log: (message: string, context?: Record<string, unknown>) => void) {
  const marker = join(dir, LAYOUT_MARKER)
  if (existsSync(marker)) return
  let moved = 0
  for (const top of (await readdir(dir)).filter((name) => HEX2.test(name))) {
    const topDir = join(dir, top)
    const entries = await readdir(topDir, { withFileTypes: true })
    const lower = entries.filter((entry) => entry.isDirectory() && HEX2.test(entry.name))
    if (lower.length === 0) continue
    for (const entry of lower) {
      const from = join(topDir, entry.name)
      for (const name of (await readdir(from)).filter((n) => SHA256.test(n))) {
        await rename(join(from, name), join(topDir, name))
        moved++
      }
    }
    // The new names are durable before the old directories go.
    await syncDirectory(topDir)
    for (const entry of lower) {
      await rmdir(join(topDir, entry.name)).catch((error) => {
        // Something that is not a blob was left in it: kept, and said.
        log('blob store: directory not empty after moving its blobs, kept', { dir: join(topDir, entry.name), error: String(error) })
      })
    }
    await syncDirectory(topDir)
  }
  if (moved > 0) log('blob store: moved blobs to the one-level layout', { moved })
  await writeFile(marker, LAYOUT_TEXT)
  await syncPath(marker, 'all')
  await syncDirectory(dir)
}
