import type { Config } from '../config.ts'
import { DomainError } from '../core/errors.ts'
import { linkIdOf, type Admission } from '../core/records.ts'
import type { MetadataStore } from '../ports/metadata.ts'
import { RESERVE_BYTES } from '../storage/reserve.ts'
import type { SpaceGauge } from '../ports/staging.ts'

const FREE_SPACE_FRESH_MS = 1000
/** More than a second of writing at any speed a disk manages today. */
const FREE_SPACE_MARGIN_BYTES = 4 * 1024 ** 3

/**
 * Refuses new uploads and chunks that would fill the staging volume past its reserve: they
 * leave MIN_FREE_SPACE free, and never less than the space reserve (see storage/reserve.ts), so
 * that uploads cannot take the room that reserve gives back.
 */
export class FreeSpace {
  /** The last free-space reading, and the bytes promised to chunks since. */
  private last = { bytes: 0, at: Number.NEGATIVE_INFINITY, spent: 0 }

  private readonly minFreeBytes: number

  constructor(private readonly deps: { store: MetadataStore; config: Config; space?: SpaceGauge }) {
    this.minFreeBytes = Math.max(deps.config.minFreeBytes, RESERVE_BYTES)
  }

  /**
   * Room for a new upload of `totalBytes` by `owner`, beside what the uploads in progress still
   * need. The admin's uploads leave out what drop links have reserved and not sent: a visitor
   * declaring a huge file cannot block the admin. A drop link's upload must also fit that link's
   * reserve (LINK_RESERVE_MAX); that is returned as an admission, checked again in the
   * transaction that creates the upload, so parallel uploads cannot overshoot it.
   */
  async forNewUpload(totalBytes: number, owner: string): Promise<Admission | undefined> {
    const { store, config } = this.deps
    const before = (await store.uploads.admissionFigures(owner)).outstanding
    const free = await this.read(before.links + before.others + totalBytes)
    const isLink = linkIdOf(owner) !== null
    const reserved = isLink ? before.links + before.others : before.others
    if (totalBytes > free - reserved - this.minFreeBytes) {
      throw new DomainError('no-space', `Not enough free disk space on the server for a ${totalBytes}-byte file`)
    }
    if (!isLink) return undefined
    const check: Admission['check'] = ({ outstanding: now }, upload) => {
      const room = free - this.minFreeBytes - now.others - (now.links - now.own)
      const cap = 'share' in config.linkReserveMax ? Math.floor(room * config.linkReserveMax.share) : config.linkReserveMax.bytes
      if (now.own + upload.totalBytes > cap) {
        throw new DomainError('no-space', `This link's unfinished uploads may reserve ${Math.max(0, cap)} bytes of disk space at a time, ${Math.max(0, cap - now.own)} of them free now; the file is ${upload.totalBytes} bytes`)
      }
    }
    return { owner, check }
  }

  /** Room for a chunk of `bytes`, which counts as spent until the next reading. */
  async forChunk(bytes: number) {
    if ((await this.read(bytes)) - bytes < this.minFreeBytes) {
      throw new DomainError('no-space', 'The server is out of disk space')
    }
    this.last.spent += bytes
  }

  /**
   * Free bytes on the staging volume. Far from full, a reading less than a second old will do,
   * less what chunks were promised since (a staging volume other than the local disk may be slow
   * to ask); when `needed` comes near the reserve, it is read afresh.
   */
  private async read(needed: number): Promise<number> {
    const last = this.last
    const estimate = last.bytes - last.spent
    const fresh = performance.now() - last.at < FREE_SPACE_FRESH_MS
    if (fresh && estimate - needed - this.minFreeBytes > FREE_SPACE_MARGIN_BYTES) return estimate
    // Staging without a limit (an object store): nothing to run out of.
    if (!this.deps.space) return Number.POSITIVE_INFINITY
    const bytes = await this.deps.space.freeBytes()
    this.last = { bytes, at: performance.now(), spent: 0 }
    return bytes
  }
}
