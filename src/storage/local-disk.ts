import { constants, fstatSync, ftruncateSync, linkSync, renameSync, statfsSync, statSync, unlinkSync } from 'node:fs'
import { mkdir, readdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { DomainError } from '../core/errors.ts'
import { BatchedWriter, writeAll } from './batched-writer.ts'
import { useOneLevelLayout } from './blob-layout.ts'
import { noteBytesReceived } from './collect-garbage.ts'
import { GroupSync } from '../platform/group-sync.ts'
import { PositionalFile } from '../platform/positional-file.ts'
import { syncDirectory } from '../platform/sync-path.ts'
import { InterruptedWrite, type BlobStore, type Staging } from './types.ts'


/** Links `target` to `existing`; false when `target` is there already. */
function linkUnlessPresent(existing: string, target: string) {
  try {
    linkSync(existing, target)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  }
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT'

function removeIfPresent(path: string) {
  try {
    unlinkSync(path)
  } catch (error) {
    if (!isMissing(error)) throw error
  }
}

const STAGING_NAME = /^[a-z0-9]{16,64}$/
/** Reads for hashing go in pieces this large, into one buffer per scan. */
const SCAN_BYTES = 1024 * 1024

export class LocalStaging implements Staging {
  // Uploads starting at the same moment share one sync of the staging directory.
  private readonly names = new GroupSync(() => syncDirectory(this.dir))

  constructor(private readonly dir: string) {}

  async init() {
    await mkdir(this.dir, { recursive: true })
  }

  pathOf(uploadId: string) {
    if (!STAGING_NAME.test(uploadId)) throw new Error(`invalid upload id for staging: ${uploadId}`)
    return join(this.dir, uploadId)
  }

  async list() {
    return (await readdir(this.dir)).filter((name) => STAGING_NAME.test(name))
  }

  syncNames() {
    return this.names.request()
  }

  async create(uploadId: string, totalBytes: number) {
    const file = await PositionalFile.openInPool(this.pathOf(uploadId), 'a')
    try {
      // No sync of the file here: every write ends with a datasync, which also makes the size
      // durable. syncNames() makes the name durable. Extending a file only sets its size.
      if (fstatSync(file.fd).size !== totalBytes) ftruncateSync(file.fd, totalBytes)
    } finally {
      file.close()
    }
  }

  async write(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number, options: { create?: boolean } = {}) {
    const path = this.pathOf(uploadId)
    const file = options.create ? await PositionalFile.openInPool(path, constants.O_RDWR | constants.O_CREAT) : PositionalFile.open(path, 'r+')
    const writer = new BatchedWriter(file, offset, path)
    try {
      for await (const piece of body) {
        if (writer.received + piece.length > maxBytes) {
          throw new DomainError('invalid', `The data is longer than the ${maxBytes} bytes expected`)
        }
        await writer.add(piece)
        noteBytesReceived(piece.length)
      }
      return await writer.finish()
    } catch (error) {
      throw new InterruptedWrite(await writer.salvage(), error)
    } finally {
      file.close()
    }
  }

  async size(uploadId: string) {
    try {
      return statSync(this.pathOf(uploadId)).size
    } catch (error) {
      if (isMissing(error)) return null
      throw error
    }
  }

  read(uploadId: string) {
    return Bun.file(this.pathOf(uploadId)).stream()
  }

  async scan(uploadId: string, start: number, end: number, take: (piece: Uint8Array) => void) {
    const file = PositionalFile.open(this.pathOf(uploadId), 'r')
    try {
      const buffer = Buffer.allocUnsafe(Math.min(SCAN_BYTES, Math.max(end - start, 1)))
      for (let at = start; at < end; ) {
        const bytesRead = await file.read(buffer, Math.min(buffer.length, end - at), at)
        if (bytesRead === 0) throw new Error(`staging file of ${uploadId} ends at ${at}, before ${end}`)
        take(buffer.subarray(0, bytesRead))
        at += bytesRead
      }
    } finally {
      file.close()
    }
  }

  async remove(uploadId: string) {
    const path = this.pathOf(uploadId)
    try {
      // Only a name, when the bytes are linked into the blob store: quick enough to do in place.
      // Freeing the blocks of a large file is not, so that goes to the thread pool.
      if (statSync(path).nlink > 1) unlinkSync(path)
      else await rm(path, { force: true })
    } catch (error) {
      if (!isMissing(error)) throw error
    }
  }

  async freeBytes() {
    const s = statfsSync(this.dir)
    return s.bavail * s.bsize
  }
}

export class LocalBlobStore implements BlobStore {
  constructor(
    private readonly dir: string,
    private readonly log: (message: string, context?: Record<string, unknown>) => void = () => {},
  ) {}

  async init() {
    await mkdir(this.dir, { recursive: true })
    await useOneLevelLayout(this.dir, this.log)
  }

  /** See blob-layout.ts. */
  private pathOf(sha256: string) {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`invalid sha256: ${sha256}`)
    return join(this.dir, sha256.slice(0, 2), sha256)
  }

  async has(sha256: string) {
    return Bun.file(this.pathOf(sha256)).exists()
  }

  async adopt(stagedPath: string, sha256: string, existing: 'trusted' | 'replace') {
    const target = this.pathOf(sha256)
    // A second name for the same bytes: nothing is copied, and the staged file stays until the
    // database no longer needs it. Tried first, since the directories usually exist.
    const leaf = dirname(target)
    // Nothing refers to a copy that is not trusted (the caller holds the blob's lock), so it can
    // simply go first.
    if (existing === 'replace') removeIfPresent(target)
    let linked: boolean
    let madeDirectories = false
    try {
      linked = linkUnlessPresent(stagedPath, target)
    } catch (error) {
      if (!isMissing(error)) throw error
      // In the pool, like every new inode (see PositionalFile.openInPool).
      madeDirectories = (await mkdir(leaf, { recursive: true })) !== undefined
      linked = linkUnlessPresent(stagedPath, target)
    }
    // Already stored: that copy is the one kept. A new directory's name lives in its parent, so
    // after making one the store's own directory is synced too.
    if (linked) await Promise.all((madeDirectories ? [leaf, this.dir] : [leaf]).map(syncDirectory))
  }

  async write(sha256: string, bytes: Uint8Array, vouched: boolean) {
    const target = this.pathOf(sha256)
    const leaf = dirname(target)
    // A name a committed row vouches for must never show bytes that are not all there (a later
    // upload of them would trust it): they are written under a name of their own and renamed
    // onto it once durable. Any other copy at the name is trusted by nobody and is written over.
    const path = vouched ? `${target}.incoming` : target
    // Unlinked rather than truncated: an untrusted copy may share its inode with another name.
    removeIfPresent(path)
    const create = () => PositionalFile.openInPool(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL)
    let madeDirectories = false
    let file: PositionalFile
    try {
      file = await create()
    } catch (error) {
      if (!isMissing(error)) throw error
      madeDirectories = (await mkdir(leaf, { recursive: true })) !== undefined
      file = await create()
    }
    try {
      await writeAll(file, [bytes], 0)
      // Bytes and name synced at once: the caller commits nothing that needs them before both are
      // durable, and a name whose bytes did not make it is just an untrusted copy. On a journalling
      // file system the two syncs then wait for the same journal commit, where a file written at a
      // staging name and linked here afterwards needed a second one for the link, on every small
      // file's way to its answer.
      await Promise.all([file.datasync(), ...(madeDirectories ? [leaf, this.dir] : [leaf]).map(syncDirectory)])
    } catch (error) {
      // The caller removes only names no row vouches for.
      if (vouched) removeIfPresent(path)
      throw error
    } finally {
      file.close()
    }
    if (vouched) {
      renameSync(path, target)
      await syncDirectory(leaf)
    }
  }

  body(sha256: string, start: number, end: number) {
    return Bun.file(this.pathOf(sha256)).slice(start, end)
  }

  async remove(sha256: string) {
    await rm(this.pathOf(sha256), { force: true })
  }
}
