import { afterAll, beforeAll, expect } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Only root can mount a tmpfs (CI runs as root); tests that need one are skipped elsewhere. */
export const isRoot = process.getuid?.() === 0

/**
 * A small file system of its own for the tests of one file (`options` as for `mount -o`, e.g.
 * `size=16m`), mounted before them and unmounted after. `path()` fails the test if it could not
 * be mounted.
 */
export function tmpfsForTests(options: string) {
  const mountPoint = mkdtempSync(join(tmpdir(), 'dropfold-tmpfs-'))
  let mounted = false
  beforeAll(() => {
    if (isRoot) mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mountPoint]).status === 0
  })
  afterAll(() => {
    if (mounted) spawnSync('umount', ['-l', mountPoint])
    rmSync(mountPoint, { recursive: true, force: true })
  })
  return {
    path() {
      expect(mounted).toBe(true)
      return mountPoint
    },
  }
}
