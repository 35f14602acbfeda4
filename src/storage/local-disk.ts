import { closeSync, fsyncSync, openSync } from 'node:fs'
import { mkdir, open, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { HttpError } from '../errors.ts'
import { InterruptedWrite, type BlobStore, type Staging } from './types.ts'

/** Incoming network reads are small (~64 KiB); writing them in larger runs halves the syscalls. */
const WRITE_BATCH_BYTES = 1024 * 1024

/** Makes a rename or a new file's name durable. */
function syncDirectory(dir: string) {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export class LocalStaging implements Staging {
  constructor(private readonly dir: string) {}

  async init() {
    await mkdir(this.dir, { recursive: true })
  }

  pathOf(uploadId: string) {
    if (!/^[a-z0-9]{16,64}$/.test(uploadId)) throw new Error(`invalid upload id for staging: ${uploadId}`)
    return join(this.dir, uploadId)
  }

  async create(uploadId: string, totalBytes: number) {
    const path = this.pathOf(uploadId)
    const handle = await open(path, 'a')
    try {
      if ((await handle.stat()).size !== totalBytes) await handle.truncate(totalBytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    syncDirectory(this.dir)
  }

  async write(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number) {
    const handle = await open(this.pathOf(uploadId), 'r+')
    const batch = Buffer.allocUnsafe(Math.min(WRITE_BATCH_BYTES, Math.max(maxBytes, 1)))
    let batched = 0
    let written = 0
    const flush = async () => {
      let done = 0
      while (done < batched) {
        const { bytesWritten } = await handle.write(batch, done, batched - done, offset + written + done)
        done += bytesWritten
      }
      written += batched
      batched = 0
    }
    try {
      for await (const piece of body) {
        if (written + batched + piece.length > maxBytes) {
          throw new HttpError(400, `The data is longer than the ${maxBytes} bytes expected`)
        }
        let at = 0
        while (at < piece.length) {
          const n = Math.min(piece.length - at, batch.length - batched)
          batch.set(piece.subarray(at, at + n), batched)
          batched += n
          at += n
          if (batched === batch.length) await flush()
        }
      }
      await flush()
      await handle.datasync()
      return written
    } catch (error) {
      throw new InterruptedWrite(await this.keepWhatArrived(handle, flush, () => written), error)
    } finally {
      await handle.close()
    }
  }

  /** After a failed body, makes the bytes that did arrive durable; 0 if even that fails. */
  private async keepWhatArrived(handle: FileHandle, flush: () => Promise<void>, written: () => number) {
    try {
      await flush()
      await handle.datasync()
      return written()
    } catch {
      return 0
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

  read(uploadId: string, start?: number, end?: number) {
    const file = Bun.file(this.pathOf(uploadId))
    return (start === undefined ? file : file.slice(start, end)).stream()
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
    if (await this.has(sha256)) {
      await unlink(stagedPath)
      return
    }
    await mkdir(dirname(target), { recursive: true })
    await rename(stagedPath, target)
    syncDirectory(dirname(target))
  }

  body(sha256: string, start: number, end: number) {
    return Bun.file(this.pathOf(sha256)).slice(start, end)
  }

  async remove(sha256: string) {
    await rm(this.pathOf(sha256), { force: true })
  }
}
