import { constants, linkSync, renameSync, statfsSync, statSync, unlinkSync } from 'node:fs'
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises'
import { PositionalFile } from '../../platform/positional-file.ts'
import { syncDirectory } from '../../platform/sync-path.ts'

/** A file open by descriptor (see PositionalFile). */
export interface OpenFile {
  /** Writes `pieces` at `position`, in one writev; resolves to the bytes the disk took. */
  writev(pieces: Uint8Array[], position: number): Promise<number>
  /** Reads up to `length` bytes at `position` into the start of `buffer`; resolves to the bytes read. */
  read(buffer: Uint8Array, length: number, position: number): Promise<number>
  /** Makes the bytes written so far (and the size) durable, whichever descriptor wrote them. */
  datasync(): Promise<void>
  close(): void
}

/**
 * `read`, `write` (read and write): an existing file. `create`: made if missing. `create-new`:
 * fails with EEXIST if present.
 */
export type OpenMode = 'read' | 'write' | 'create' | 'create-new'

/**
 * Every call the local-disk adapter makes on files, passed in so that a test can stand between
 * (tests/helpers/power-cut.ts forgets what was not synced). Errors are Node's (`code`: ENOENT, EEXIST).
 */
export interface FileSystem {
  open(path: string, mode: OpenMode): Promise<OpenFile>
  /** Makes a directory's entries durable: a new name, a link, a rename, a removal. */
  syncDirectory(dir: string): Promise<void>
  link(existing: string, target: string): void
  rename(from: string, to: string): void
  unlink(path: string): void
  /** Unlinks a file whose blocks may take long to free (in the thread pool). No error if missing. */
  remove(path: string): Promise<void>
  /** Makes a directory and its missing parents; true if it made any. */
  mkdir(dir: string): Promise<boolean>
  /** Removes an empty directory. */
  removeDirectory(dir: string): Promise<void>
  readdir(dir: string): Promise<string[]>
  /** Size and number of names of a file (or directory), or null if there is none. */
  stat(path: string): { size: number; links: number; directory: boolean } | null
  freeBytes(dir: string): number
  /** The bytes [start, end) of a file, ready to be a response body. */
  slice(path: string, start: number, end: number): Blob
}

const FLAGS: Record<OpenMode, string | number> = {
  read: 'r',
  write: 'r+',
  create: constants.O_RDWR | constants.O_CREAT,
  'create-new': constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
}

/** The real one. */
export const nodeFileSystem: FileSystem = {
  // A new file goes to the thread pool (finding a free inode can take milliseconds); opening an
  // existing one is quicker in place (see PositionalFile).
  open: async (path, mode) => (mode === 'read' || mode === 'write' ? PositionalFile.open(path, FLAGS[mode]) : PositionalFile.openInPool(path, FLAGS[mode])),
  syncDirectory,
  link: linkSync,
  rename: renameSync,
  unlink: unlinkSync,
  remove: (path) => rm(path, { force: true }),
  mkdir: async (dir) => (await mkdir(dir, { recursive: true })) !== undefined,
  removeDirectory: (dir) => rmdir(dir),
  readdir: (dir) => readdir(dir),
  stat(path) {
    try {
      const s = statSync(path)
      return { size: s.size, links: s.nlink, directory: s.isDirectory() }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
  },
  freeBytes(dir) {
    const s = statfsSync(dir)
    return s.bavail * s.bsize
  },
  slice: (path, start, end) => Bun.file(path).slice(start, end),
}
