import { randomBytes } from 'node:crypto'
import { statfsSync, statSync, unlinkSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Room kept back for signing in, deleting and emptying the trash on a volume someone else filled. */
export const RESERVE_BYTES = 2 * 1024 ** 2
const RESERVE_FILE = 'dropfold.reserve'

/**
 * A file of RESERVE_BYTES in the data directory, holding real blocks (random bytes: zeros could
 * be stored as holes by a compressing file system). When the volume fills up to the brim, it is
 * deleted before the next change is made, so that change (a sign-in, a deletion, emptying the
 * trash) finds room for its database pages; it is written again once the volume has room.
 */
export class SpaceReserve {
  private present = false
  private readonly path: string

  constructor(
    private readonly dataDir: string,
    private readonly log: (message: string, context?: Record<string, unknown>) => void,
  ) {
    this.path = join(dataDir, RESERVE_FILE)
  }

  private freeBytes() {
    const s = statfsSync(this.dataDir)
    return s.bavail * s.bsize
  }

  /** Writes the reserve if it is missing and the volume has room to spare for it. */
  async refill() {
    this.present = sizeOf(this.path) === RESERVE_BYTES
    if (this.present || this.freeBytes() < 4 * RESERVE_BYTES) return
    try {
      await writeFile(this.path, randomBytes(RESERVE_BYTES))
      this.present = true
    } catch (error) {
      await rm(this.path, { force: true })
      this.log('could not write the space reserve', { error: String(error) })
    }
  }

  /** Before a change: frees the reserve when the volume has less than its size left. */
  releaseIfFull() {
    if (!this.present || this.freeBytes() >= RESERVE_BYTES) return
    this.present = false
    unlinkSync(this.path)
    this.log('the data volume is full: released the space reserve so that files can still be deleted', { bytes: RESERVE_BYTES })
  }
}

function sizeOf(path: string): number | null {
  try {
    return statSync(path).size
  } catch {
    return null
  }
}
