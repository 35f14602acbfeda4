import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readSync, rmSync, statSync, truncateSync, writeSync, openSync, closeSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { nodeFileSystem, type FileSystem, type OpenFile, type OpenMode } from '../../src/adapters/local-disk/file-system.ts'
import { routeWalSyncs } from '../../src/adapters/sqlite/durable.ts'
import type { Db } from '../../src/adapters/sqlite/open.ts'
import { syncPath } from '../../src/platform/sync-path.ts'

/**
 * A file system that can lose power. It passes every call to the real one and remembers what a
 * power cut would undo: per file (inode), the bytes each write replaced since the last sync of
 * that file and the size it had then; per directory, the names added and removed since its last
 * sync. `cut()` then writes what the disk would hold after the cut into a new directory: the
 * files as they are, less every write not followed by a sync, and the directories as they were
 * at their last sync (a removed name comes back with its file, an added one is gone). From the
 * cut on, every call that would change something fails as on a dead disk (reads still answer,
 * for the server shutting down), until `powerOn()`. The data directory's other files (the lock,
 * the space reserve) are taken as they are.
 *
 * A sync covers the writes and name changes that completed before it was asked for: one that
 * races with it may or may not be on the disk, so it is taken as lost. That is the most a real
 * disk may lose, and what the server must survive.
 *
 * The database is not written through here (SQLite writes its files itself): `watchDatabase`
 * runs it without automatic checkpoints, so that its main file never changes while the server
 * runs and everything new is appended to the WAL, and notes the WAL's size each time the server
 * syncs it. With `synchronous = NORMAL` those syncs are the only ones, so at a cut the WAL is
 * cut back to that size: the frames written since may never have reached the disk. (Without
 * -shm, SQLite rebuilds its index of the WAL from the frames themselves on the next open.)
 */
export class PowerCutFileSystem implements FileSystem {
  private readonly real = nodeFileSystem
  private on = true
  private sequence = 0
  /** Per inode: its size at its last sync and the pre-images of the writes since, in order. */
  private files = new Map<number, { syncedSize: number; undo: { offset: number; end: number; before: Uint8Array; doneAt: number | null }[] }>()
  /** Per directory: name changes since its last sync, in order; `was` is where the removed name's file is kept. */
  private directories = new Map<string, { name: string; was: string | null; at: number }[]>()
  /** Where removed files are kept (by a second name) in case a cut brings their name back. */
  private readonly stash = mkdtempSync(join(tmpdir(), 'dropfold-power-stash-'))
  private stashed = 0
  private wal: { path: string; syncedBytes: number } | null = null
  /** Called before each call that changes something (the test cuts the power from here). */
  beforeChange: () => void = () => {}

  get powered() {
    return this.on
  }

  /** After a cut: a fresh disk (the data directory replaced by what `cut` wrote), nothing remembered. */
  powerOn() {
    this.files = new Map()
    this.directories = new Map()
    this.wal = null
    this.on = true
  }

  /** Runs the server's database as described above; call it as soon as the database is open. */
  watchDatabase(db: Db) {
    db.$client.exec('PRAGMA wal_autocheckpoint = 0')
    const path = `${db.$client.filename}-wal`
    // What the WAL holds when the server opens it survived the last cut (or was synced at the first open).
    const wal = { path, syncedBytes: existsSync(path) ? statSync(path).size : 0 }
    this.wal = wal
    routeWalSyncs(db, async (walPath) => {
      if (!this.on) throw deadDisk()
      const bytes = statSync(walPath).size
      await syncPath(walPath, 'data')
      if (this.wal === wal) wal.syncedBytes = Math.max(wal.syncedBytes, bytes)
    })
  }

  /** Takes the power away; resolves to a new directory holding what `dataDir` holds after the cut. */
  cut(dataDir: string): string {
    this.on = false
    const into = mkdtempSync(join(tmpdir(), 'dropfold-after-cut-'))
    const copied = new Map<number, string>()
    const copyDirectory = (from: string, to: string) => {
      for (const [name, source] of this.namesAfterCut(from)) {
        const target = join(to, name)
        // Renamed and then removed since: gone from where the cut would look for it.
        if (!existsSync(source)) continue
        const stat = statSync(source)
        if (stat.isDirectory()) {
          mkdirSync(target)
          copyDirectory(source, target)
        } else if (from === dataDir && name === basename(this.wal?.path ?? '-')) {
          copyFileSync(source, target)
          truncateSync(target, Math.min(this.wal!.syncedBytes, stat.size))
        } else if (from === dataDir && name.endsWith('-shm')) {
          continue
        } else if (copied.has(stat.ino)) {
          linkSync(copied.get(stat.ino)!, target)
        } else {
          copyFileSync(source, target)
          this.undoUnsynced(stat.ino, target)
          copied.set(stat.ino, target)
        }
      }
    }
    copyDirectory(dataDir, into)
    return into
  }

  /** The names in `dir` as of its last sync, each with where its file is now. */
  private namesAfterCut(dir: string): Map<string, string> {
    const names = new Map(readdirSync(dir).map((name) => [name, join(dir, name)] as [string, string | null]))
    for (const change of [...(this.directories.get(dir) ?? [])].reverse()) names.set(change.name, change.was)
    return new Map([...names].filter((entry): entry is [string, string] => entry[1] !== null))
  }

  private undoUnsynced(ino: number, copy: string) {
    const file = this.files.get(ino)
    if (!file) return
    const fd = openSync(copy, 'r+')
    try {
      for (const write of [...file.undo].reverse()) writeSync(fd, write.before, 0, write.before.length, write.offset)
    } finally {
      closeSync(fd)
    }
    truncateSync(copy, Math.min(file.syncedSize, statSync(copy).size))
  }

  private change() {
    if (!this.on) throw deadDisk()
    this.beforeChange()
    if (!this.on) throw deadDisk()
  }

  private noteName(path: string, was: string | null) {
    const dir = dirname(path)
    const changes = this.directories.get(dir) ?? this.directories.set(dir, []).get(dir)!
    changes.push({ name: basename(path), was, at: ++this.sequence })
  }

  /** Keeps the file at `path` under a second name, for a cut that brings `path` back. */
  private keep(path: string): string | null {
    if (!existsSync(path)) return null
    const kept = join(this.stash, String(++this.stashed))
    linkSync(path, kept)
    return kept
  }

  private track(ino: number, sizeIfNew: number) {
    return this.files.get(ino) ?? this.files.set(ino, { syncedSize: sizeIfNew, undo: [] }).get(ino)!
  }

  async open(path: string, mode: OpenMode): Promise<OpenFile> {
    if (mode === 'read') return this.real.open(path, mode)
    this.change()
    const existed = existsSync(path)
    const file = await this.real.open(path, mode)
    const { ino, size } = statSync(path)
    if (!existed) this.noteName(path, null)
    // A file that was there before this power-on is on the disk as it is.
    const state = this.track(ino, existed ? size : 0)
    const fd = (file as unknown as { fd: number }).fd
    return {
      read: (buffer, length, position) => file.read(buffer, length, position),
      close: () => file.close(),
      writev: async (pieces, position) => {
        this.change()
        const length = pieces.reduce((sum, piece) => sum + piece.length, 0)
        // A new file opened write-only has nothing to read back (and cannot be read).
        const before = Buffer.alloc(mode === 'create-new' ? 0 : length)
        const entry = { offset: position, end: position + length, before: before.length === 0 ? before : before.subarray(0, readSync(fd, before, 0, before.length, position)), doneAt: null as number | null }
        state.undo.push(entry)
        const written = await file.writev(pieces, position)
        entry.doneAt = ++this.sequence
        return written
      },
      datasync: async () => {
        this.change()
        const asked = ++this.sequence
        await file.datasync()
        if (!this.on) throw deadDisk()
        const covered = state.undo.filter((write) => write.doneAt !== null && write.doneAt < asked)
        for (const write of covered) state.syncedSize = Math.max(state.syncedSize, write.end)
        state.undo = state.undo.filter((write) => !covered.includes(write))
      },
    }
  }

  async syncDirectory(dir: string) {
    this.change()
    const asked = ++this.sequence
    await this.real.syncDirectory(dir)
    if (!this.on) throw deadDisk()
    this.directories.set(dir, (this.directories.get(dir) ?? []).filter((change) => change.at > asked))
  }

  link(existing: string, target: string) {
    this.change()
    this.real.link(existing, target)
    this.noteName(target, null)
  }

  rename(from: string, to: string) {
    this.change()
    const replaced = this.keep(to)
    this.real.rename(from, to)
    this.noteName(to, replaced)
    this.noteName(from, to)
  }

  unlink(path: string) {
    this.change()
    const kept = this.keep(path)
    this.real.unlink(path)
    this.noteName(path, kept)
  }

  async remove(path: string) {
    this.change()
    const kept = this.keep(path)
    await this.real.remove(path)
    if (kept) this.noteName(path, kept)
  }

  async mkdir(dir: string) {
    this.change()
    // Only the directories this call made (another call may have made them a moment before).
    const first = await mkdir(dir, { recursive: true })
    if (first === undefined) return false
    const made = [dir]
    while (made.at(-1) !== first) made.push(dirname(made.at(-1)!))
    for (const path of made.reverse()) this.noteName(path, null)
    return true
  }

  async removeDirectory(dir: string) {
    this.change()
    await this.real.removeDirectory(dir)
    // Only an empty directory can go: a cut brings back an empty one.
    const kept = join(this.stash, String(++this.stashed))
    mkdirSync(kept)
    this.noteName(dir, kept)
  }

  readdir(dir: string) {
    return this.real.readdir(dir)
  }

  stat(path: string) {
    return this.real.stat(path)
  }

  freeBytes(dir: string) {
    return this.real.freeBytes(dir)
  }

  slice(path: string, start: number, end: number) {
    return this.real.slice(path, start, end)
  }

  /** Removes what it kept of removed files. */
  dispose() {
    rmSync(this.stash, { recursive: true, force: true })
  }
}

function deadDisk() {
  return Object.assign(new Error('EIO: the power is off'), { code: 'EIO' })
}
