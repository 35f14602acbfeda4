import { dirname, join } from 'node:path'
import { DomainError } from '../../core/errors.ts'
import type { BlobStore } from '../../ports/blobs.ts'
import { InterruptedWrite, type SpaceGauge, type Staging, type WriteOptions } from '../../ports/staging.ts'
import { noteBytesReceived } from '../../platform/collect-garbage.ts'
import { GroupSync } from '../../platform/group-sync.ts'
import { BatchedWriter, writeAll } from './batched-writer.ts'
import { useOneLevelLayout } from './blob-layout.ts'
import { nodeFileSystem, type FileSystem } from './file-system.ts'

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT'

const STAGING_NAME = /^[a-z0-9]{16,64}$/
const LEAF_NAME = /^[0-9a-f]{2}$/
/** Reads go in pieces this large. */
const READ_BYTES = 1024 * 1024

/** Makes `dir`; when it is new, its name is made durable in its parent too. */
async function durableDirectory(fs: FileSystem, dir: string) {
  if (await fs.mkdir(dir)) await fs.syncDirectory(dirname(dir))
}

/** One file per upload, named by its id, in one directory. */
export class LocalStaging implements Staging, SpaceGauge {
  // Uploads starting at the same moment share one sync of the staging directory.
  private readonly names: GroupSync
  /** Uploads whose staging file's name is known to be durable. */
  private readonly synced = new Set<string>()
  /** begin() under way, per upload; `creating`: its file is being made (writes wait for that only). */
  private readonly beginning = new Map<string, Promise<void>>()
  private readonly creating = new Map<string, Promise<void>>()

  constructor(
    private readonly dir: string,
    private readonly fs: FileSystem = nodeFileSystem,
  ) {
    this.names = new GroupSync(() => fs.syncDirectory(dir))
  }

  async init() {
    await durableDirectory(this.fs, this.dir)
  }

  /** For the blob store beside it, which adopts staged files by linking them. */
  pathOf(uploadId: string) {
    if (!STAGING_NAME.test(uploadId)) throw new Error(`invalid upload id for staging: ${uploadId}`)
    return join(this.dir, uploadId)
  }

  /** A file is readable as it is written: there is nothing to complete. */
  readonly readsUnsealed = true

  async seal(_uploadId: string, _totalBytes: number) {}

  async list() {
    return (await this.fs.readdir(this.dir)).filter((name) => STAGING_NAME.test(name))
  }

  begin(uploadId: string): Promise<void> {
    if (this.synced.has(uploadId)) return Promise.resolve()
    let begun = this.beginning.get(uploadId)
    if (!begun) {
      begun = this.create(uploadId)
        .then(() => this.names.request())
        .then(() => void this.synced.add(uploadId))
        .finally(() => this.beginning.delete(uploadId))
      this.beginning.set(uploadId, begun)
    }
    return begun
  }

  /**
   * An empty file (written at offsets later). No sync of the file: every write ends with a
   * datasync, which also makes the size durable; the name is synced with the directory.
   */
  private create(uploadId: string) {
    let creating = this.creating.get(uploadId)
    if (!creating) {
      creating = this.fs
        .open(this.pathOf(uploadId), 'create')
        .then((file) => file.close())
        .finally(() => this.creating.delete(uploadId))
      this.creating.set(uploadId, creating)
    }
    return creating
  }

  async write(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number, options: WriteOptions = {}) {
    const path = this.pathOf(uploadId)
    // Made by a begin() that may still be running.
    await this.creating.get(uploadId)
    const file = await this.fs.open(path, options.whole ? 'create' : 'write')
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
    return this.fs.stat(this.pathOf(uploadId))?.size ?? null
  }

  async *read(uploadId: string, start: number, end: number, options: { borrowed?: boolean } = {}): AsyncGenerator<Uint8Array> {
    const file = await this.fs.open(this.pathOf(uploadId), 'read')
    try {
      // Borrowed pieces all share one buffer: reading for a hash allocates nothing per piece.
      const shared = options.borrowed ? Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(end - start, 1))) : null
      for (let at = start; at < end; ) {
        const buffer = shared ?? Buffer.allocUnsafe(Math.min(READ_BYTES, end - at))
        const bytesRead = await file.read(buffer, Math.min(buffer.length, end - at), at)
        if (bytesRead === 0) throw new Error(`staging of ${uploadId} ends at ${at}, before ${end}`)
        at += bytesRead
        yield buffer.subarray(0, bytesRead)
      }
    } finally {
      file.close()
    }
  }

  async remove(uploadId: string) {
    const path = this.pathOf(uploadId)
    // A begin() under way finishes first, so it cannot remember a name removed meanwhile.
    await this.beginning.get(uploadId)?.catch(() => {})
    this.synced.delete(uploadId)
    // Only a name, when the bytes are linked into the blob store: quick enough to do in place.
    // Freeing the blocks of a large file is not, so that goes to the thread pool.
    const links = this.fs.stat(path)?.links
    if (links === undefined) return
    if (links > 1) this.unlinkIfPresent(path)
    else await this.fs.remove(path)
  }

  private unlinkIfPresent(path: string) {
    try {
      this.fs.unlink(path)
    } catch (error) {
      if (!isMissing(error)) throw error
    }
  }

  async freeBytes() {
    return this.fs.freeBytes(this.dir)
  }
}

/** `<first two hex digits>/<sha256>` under one directory (see blob-layout.ts); adopts staged files by hard link. */
export class LocalBlobStore implements BlobStore {
  /** The leaf directories (`<first two hex digits>`) whose names are durable, or being made so. */
  private readonly leaves = new Map<string, Promise<void>>()

  constructor(
    private readonly dir: string,
    private readonly staging: LocalStaging,
    private readonly log: (message: string, context?: Record<string, unknown>) => void = () => {},
    private readonly fs: FileSystem = nodeFileSystem,
  ) {}

  async init() {
    await durableDirectory(this.fs, this.dir)
    await useOneLevelLayout(this.fs, this.dir, this.log)
    // Found at start: durable once the store's directory is synced (a process killed between
    // making one and syncing it left a name that only the page cache may hold).
    for (const name of await this.fs.readdir(this.dir)) if (LEAF_NAME.test(name)) this.leaves.set(join(this.dir, name), Promise.resolve())
    await this.fs.syncDirectory(this.dir)
  }

  private pathOf(sha256: string) {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`invalid sha256: ${sha256}`)
    return join(this.dir, sha256.slice(0, 2), sha256)
  }

  async has(sha256: string) {
    return this.fs.stat(this.pathOf(sha256)) !== null
  }

  /** Links `target` to `existing`; false when `target` is there already. */
  private linkUnlessPresent(existing: string, target: string) {
    try {
      this.fs.link(existing, target)
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw error
    }
  }

  private removeIfPresent(path: string) {
    try {
      this.fs.unlink(path)
    } catch (error) {
      if (!isMissing(error)) throw error
    }
  }

  /**
   * Resolves once the leaf directory exists and its name is durable in the store's directory.
   * Made once per leaf and shared: a write whose leaf another write is making waits for that
   * sync too, instead of reporting a blob stored in a directory a power cut could take away.
   */
  private leafReady(leaf: string): Promise<void> {
    let ready = this.leaves.get(leaf)
    if (!ready) {
      ready = this.fs.mkdir(leaf).then(() => this.fs.syncDirectory(this.dir))
      // Tried again by the next write.
      ready.catch(() => this.leaves.delete(leaf))
      this.leaves.set(leaf, ready)
    }
    return ready
  }

  async adopt(uploadId: string, sha256: string, existing: 'trusted' | 'replace') {
    const target = this.pathOf(sha256)
    const leaf = dirname(target)
    // Nothing refers to a copy that is not trusted (the caller holds the blob's lock), so it can
    // simply go first.
    if (existing === 'replace') this.removeIfPresent(target)
    // A second name for the same bytes: nothing is copied, and the staged file stays until the
    // database no longer needs it.
    await this.leafReady(leaf)
    // Already stored: that copy is the one kept.
    if (this.linkUnlessPresent(this.staging.pathOf(uploadId), target)) await this.fs.syncDirectory(leaf)
  }

  async write(sha256: string, bytes: Uint8Array, vouched: boolean) {
    const target = this.pathOf(sha256)
    const leaf = dirname(target)
    // A name a committed row vouches for must never show bytes that are not all there (a later
    // upload of them would trust it): they are written under a name of their own and renamed
    // onto it once durable. Any other copy at the name is trusted by nobody and is written over.
    const path = vouched ? `${target}.incoming` : target
    // Unlinked rather than truncated: an untrusted copy may share its inode with another name.
    this.removeIfPresent(path)
    await this.leafReady(leaf)
    const file = await this.fs.open(path, 'create-new')
    try {
      await writeAll(file, [bytes], 0)
      // Bytes and name synced at once: the caller commits nothing that needs them before both are
      // durable, and a name whose bytes did not make it is just an untrusted copy. On a journalling
      // file system the two syncs then wait for the same journal commit, where a file written at a
      // staging name and linked here afterwards needed a second one for the link, on every small
      // file's way to its answer.
      await Promise.all([file.datasync(), this.fs.syncDirectory(leaf)])
    } catch (error) {
      // The caller removes only names no row vouches for.
      if (vouched) this.removeIfPresent(path)
      throw error
    } finally {
      file.close()
    }
    if (vouched) {
      this.fs.rename(path, target)
      await this.fs.syncDirectory(leaf)
    }
  }

  async body(sha256: string, start: number, end: number) {
    return this.fs.slice(this.pathOf(sha256), start, end)
  }

  async remove(sha256: string) {
    await this.fs.remove(this.pathOf(sha256))
  }
}
