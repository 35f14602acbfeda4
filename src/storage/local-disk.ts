import { constants } from 'node:fs'
import { link, mkdir, open, readdir, rm, stat, statfs } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { HttpError } from '../errors.ts'
import { BatchedWriter } from './batched-writer.ts'
import { noteBytesReceived } from './collect-garbage.ts'
import { GroupSync } from './group-sync.ts'
import { syncPath } from './sync-path.ts'
import { InterruptedWrite, type BlobStore, type Staging } from './types.ts'

/** Makes a link or a new file's name durable. */
const syncDirectory = (dir: string) => syncPath(dir, 'all')

/** Links `target` to `existing`; false when `target` is there already. */
const linkUnlessPresent = (existing: string, target: string) =>
  link(existing, target).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false
      throw error
    },
  )

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
    const path = this.pathOf(uploadId)
    const handle = await open(path, 'a')
    try {
      // No sync of the file here: every write ends with a datasync, which also makes the size
      // durable. syncNames() makes the name durable.
      if ((await handle.stat()).size !== totalBytes) await handle.truncate(totalBytes)
    } finally {
      await handle.close()
    }
  }

  async write(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number, options: { create?: boolean } = {}) {
    const handle = await open(this.pathOf(uploadId), options.create ? constants.O_RDWR | constants.O_CREAT : 'r+')
    const writer = new BatchedWriter(handle, offset, maxBytes)
    try {
      for await (const piece of body) {
        if (writer.received + piece.length > maxBytes) {
          throw new HttpError(400, `The data is longer than the ${maxBytes} bytes expected`)
        }
        await writer.add(piece)
        noteBytesReceived(piece.length)
      }
      return await writer.finish()
    } catch (error) {
      throw new InterruptedWrite(await writer.salvage(), error)
    } finally {
      await handle.close()
    }
  }

  async size(uploadId: string) {
    try {
      return (await stat(this.pathOf(uploadId))).size
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
  }

  read(uploadId: string) {
    return Bun.file(this.pathOf(uploadId)).stream()
  }

  async scan(uploadId: string, start: number, end: number, take: (piece: Uint8Array) => void) {
    const handle = await open(this.pathOf(uploadId), 'r')
    try {
      const buffer = Buffer.allocUnsafe(Math.min(SCAN_BYTES, Math.max(end - start, 1)))
      for (let at = start; at < end; ) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - at), at)
        if (bytesRead === 0) throw new Error(`staging file of ${uploadId} ends at ${at}, before ${end}`)
        take(buffer.subarray(0, bytesRead))
        at += bytesRead
      }
    } finally {
      await handle.close()
    }
  }

  async remove(uploadId: string) {
    await rm(this.pathOf(uploadId), { force: true })
  }

  async freeBytes() {
    const s = await statfs(this.dir)
    return s.bavail * s.bsize
  }
}

export class LocalBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  async init() {
    await mkdir(this.dir, { recursive: true })
  }

  private pathOf(sha256: string) {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`invalid sha256: ${sha256}`)
    return join(this.dir, sha256.slice(0, 2), sha256.slice(2, 4), sha256)
  }

  async has(sha256: string) {
    return Bun.file(this.pathOf(sha256)).exists()
  }

  async adopt(stagedPath: string, sha256: string) {
    const target = this.pathOf(sha256)
    // A second name for the same bytes: nothing is copied, and the staged file stays until the
    // database no longer needs it. Tried first, since the directories usually exist.
    const linked = await linkUnlessPresent(stagedPath, target).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
      await mkdir(dirname(target), { recursive: true })
      return linkUnlessPresent(stagedPath, target)
    })
    // Already stored: that copy is the one kept.
    if (linked) await syncDirectory(dirname(target))
  }

  body(sha256: string, start: number, end: number) {
    return Bun.file(this.pathOf(sha256)).slice(start, end)
  }

  async remove(sha256: string) {
    await rm(this.pathOf(sha256), { force: true })
  }
}
