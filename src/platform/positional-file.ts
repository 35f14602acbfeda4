import { closeSync, fdatasync, fsync, open, openSync, read, writev } from 'node:fs'

/**
 * A file open by descriptor. Opening an existing file, closing it and other calls that only look
 * up or change a name are made in place: through Bun's thread pool each cost 120–250 µs on the
 * 2-core development VM, against 3–20 µs in place (a loop of `await stat()` against `statSync()`,
 * and of link + unlink), and a small upload makes a dozen of them. What waits for the disk (data
 * writes, syncs) and what allocates inodes goes to the pool.
 */
export class PositionalFile {
  private constructor(readonly fd: number) {}

  static open(path: string, flags: string | number) {
    return new PositionalFile(openSync(path, flags))
  }

  /**
   * Opens in the thread pool: for creating a file, since finding a free inode can take
   * milliseconds on ext4 (it skips recently deleted ones), which must not hold up every request.
   */
  static openInPool(path: string, flags: string | number) {
    return new Promise<PositionalFile>((resolve, reject) =>
      open(path, flags, (error, fd) => (error ? reject(error) : resolve(new PositionalFile(fd)))),
    )
  }

  /** Writes `pieces` at `position`, in one writev; resolves to the bytes the disk took. */
  writev(pieces: Uint8Array[], position: number) {
    return new Promise<number>((resolve, reject) =>
      writev(this.fd, pieces, position, (error, written) => (error ? reject(error) : resolve(written))),
    )
  }

  /** Reads up to `length` bytes at `position` into the start of `buffer`; resolves to the bytes read. */
  read(buffer: Uint8Array, length: number, position: number) {
    return new Promise<number>((resolve, reject) =>
      read(this.fd, buffer, 0, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))),
    )
  }

  datasync() {
    return new Promise<void>((resolve, reject) => fdatasync(this.fd, (error) => (error ? reject(error) : resolve())))
  }

  /** fsync: for a directory, makes its entries durable. */
  sync() {
    return new Promise<void>((resolve, reject) => fsync(this.fd, (error) => (error ? reject(error) : resolve())))
  }

  close() {
    closeSync(this.fd)
  }
}
