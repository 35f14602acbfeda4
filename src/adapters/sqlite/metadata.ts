import type { Admission, NewUpload } from '../../core/records.ts'
import type { MetadataStore, Repositories } from '../../ports/metadata.ts'
import * as activity from './activity.ts'
import { busyAsDomainError } from './busy.ts'
import { commitTogether, durable, gateCommits } from './durable.ts'
import * as files from './files.ts'
import * as library from './library.ts'
import * as links from './links.ts'
import { openDatabase } from './open.ts'
import { atomically } from './prepared.ts'
import * as sessions from './sessions.ts'
import * as settings from './settings.ts'
import type { Db } from './types.ts'
import * as uploads from './uploads.ts'

export type { Db }

/** Runs a synchronous piece of database work at the right moment (see SqliteMetadataStore.outside). */
type Run = <T>(work: () => T) => T | Promise<T>
/** Like Run, for work committed in a group with others (see commitTogether). */
type Commit = <T>(work: () => T) => Promise<T>

/**
 * The metadata store on SQLite (bun:sqlite, one connection, WAL). Each operation is one
 * synchronous transaction; the hot ones (a chunk, a small file) are committed in a group with
 * those that arrive while the WAL is being synced, and durable() is that group's shared sync.
 *
 * A transaction whose work awaits holds the connection across turns of the event loop: while it
 * is open, every operation from outside it waits at a gate (a resolved check when none is open),
 * so nothing lands inside it, and it is never committed early.
 */
export class SqliteMetadataStore implements MetadataStore {
  private gate: Promise<void> | null = null
  readonly uploads: Repositories['uploads']
  readonly library: Repositories['library']
  readonly links: Repositories['links']
  readonly sessions: Repositories['sessions']
  readonly activity: Repositories['activity']
  readonly settings: Repositories['settings']

  constructor(readonly db: Db) {
    gateCommits(db, () => this.gate)
    const repos = repositories(
      db,
      (work) => this.outside(work),
      (work) => commitTogether(db, work).catch(rethrowBusy),
    )
    this.uploads = repos.uploads
    this.library = repos.library
    this.links = repos.links
    this.sessions = repos.sessions
    this.activity = repos.activity
    this.settings = repos.settings
  }

  /** Opens (creating and migrating if needed) the database file at `path`. */
  static open(path: string, now = Date.now()): SqliteMetadataStore {
    return new SqliteMetadataStore(openDatabase(path, now))
  }

  /**
   * Runs `work` now when no transaction is open, else once none is. A database held by another
   * program comes out as the domain's passing fault (see busyAsDomainError), not as SQLite's code.
   */
  outside<T>(work: () => T): T | Promise<T> {
    if (this.gate) return this.afterGate(work)
    try {
      return work()
    } catch (error) {
      throw busyAsDomainError(error)
    }
  }

  private async afterGate<T>(work: () => T): Promise<T> {
    while (this.gate) await this.gate
    return this.outside(work)
  }

  async transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate
    const { promise, resolve } = Promise.withResolvers<void>()
    this.gate = promise
    const client = this.db.$client
    let open = true
    // Inside: straight to the connection, and a group commit becomes part of this transaction.
    const inside: Run = (work) => {
      if (!open) throw new Error('This transaction has ended')
      return work()
    }
    try {
      client.run('BEGIN IMMEDIATE')
      try {
        const result = await work(repositories(this.db, inside, async (w) => inside(() => inSavepoint(client, w))))
        client.run('COMMIT')
        return result
      } catch (error) {
        if (client.inTransaction) client.run('ROLLBACK')
        throw error
      }
    } catch (error) {
      throw busyAsDomainError(error)
    } finally {
      open = false
      this.gate = null
      resolve()
    }
  }

  durable(): Promise<void> {
    return durable(this.db)
  }

  async close(): Promise<void> {
    while (this.gate) await this.gate
    this.db.$client.close()
  }
}

/** The repositories over `db`, each operation run through `run` (or `commit`, for the hot ones). */
function repositories(db: Db, run: Run, commit: Commit): Repositories {
  const r = <A extends unknown[], T>(fn: (db: Db, ...args: A) => T) => async (...args: A): Promise<T> => run(() => fn(db, ...args))
  return {
    uploads: {
      find: r(uploads.findUpload),
      findByClientKey: r(uploads.findUploadByClientKey),
      create: r((d, upload: NewUpload, admit?: Admission) => uploads.insertUploadOnce(d, upload, admit)),
      createComplete: (items, admit) =>
        commit(() =>
          atomically(db, () => {
            const made = items.map((item) => files.insertCompleteUpload(db, item.upload, item.sha256, admit))
            if (made.every((file) => file !== null)) return made as files.FileRow[]
            // One of them exists already: none is recorded.
            throw new Unrecorded()
          }),
        ).catch((error) => {
          if (error instanceof Unrecorded) return null
          throw error
        }),
      admissionFigures: r(uploads.admissionFigures),
      hasChunk: r(uploads.hasChunk),
      receivedChunks: r(uploads.receivedChunkIndexes),
      firstMissingChunk: r((d, uploadId: string, from: number, count: number) => {
        let index = from
        while (index < count && uploads.hasChunk(d, uploadId, index)) index++
        return index
      }),
      recordChunk: (uploadId, index, sizeBytes, now, lease) => commit(() => uploads.recordChunk(db, uploadId, index, sizeBytes, now, lease)),
      recordBytes: r(uploads.recordBytes),
      declareLength: r(uploads.declareLength),
      markPartialComplete: r(uploads.markPartialComplete),
      transition: r(uploads.transition),
      remove: r(uploads.deleteUploadRecord),
      claimFinalization: r(uploads.claimFinalization),
      takeOverFinalization: r(uploads.takeOverFinalization),
      unleasedFinalizations: r(uploads.unleasedFinalizations),
      renewLease: r(uploads.renewLease),
      releaseLease: r(uploads.releaseLease),
      failFinalization: r(uploads.failFinalization),
      completeUpload: r(files.completeUpload),
      inState: r(uploads.uploadsInState),
      stale: r(uploads.staleUploads),
      unfinished: r(uploads.unfinishedUploads),
      ofLink: r(links.linkUploads),
      stagedBytes: r(uploads.stagedBytes),
    },
    library: {
      folder: r(files.findFolder),
      file: r(files.findFile),
      blobIsReferenced: r(files.blobIsReferenced),
      filePage: r(library.filePage),
      countLiveFiles: r(library.countLiveFiles),
      liveSubfolders: r(library.liveSubfolders),
      folderPath: r(library.folderPath),
      folderPathText: r(library.folderPathText),
      isInTrash: r(library.isInTrash),
      allFolderPaths: r(library.allFolderPaths),
      folderMoveTargets: r(library.folderMoveTargets),
      createFolder: r(library.createFolder),
      renameFolder: r(library.renameFolder),
      moveFolder: r(library.moveFolder),
      trashFolder: r(library.trashFolder),
      renameFile: r(library.renameFile),
      moveFiles: r(library.moveFiles),
      trashFiles: r(library.trashFiles),
      trashEntries: r(library.trashEntries),
      restoreFile: r(library.restoreFile),
      restoreFolder: r(library.restoreFolder),
      purgeTrash: r(library.purgeTrash),
      storageSummary: r(library.storageSummary),
      folderPasswordHash: r(links.folderPasswordHash),
      setFolderPassword: r(links.setFolderPassword),
      protectedFolders: r(links.protectedFolders),
    },
    links: {
      find: r(links.findLink),
      findByTokenHash: r(links.findLinkByTokenHash),
      all: r(links.allLinks),
      create: r(links.insertLink),
      update: r(links.updateLink),
      remove: r(links.deleteLink),
      usage: r(links.linkUsage),
    },
    sessions: {
      create: r(sessions.createSession),
      isLive: r(sessions.isLiveSession),
      remove: r(sessions.deleteSession),
      removeAll: r(sessions.deleteSessions),
    },
    activity: {
      log: r(activity.logActivity),
      list: r(activity.listActivity),
      actions: r(activity.activityActions),
    },
    settings: {
      get: r(settings.getSetting),
      set: r(settings.setSetting),
      setIfAbsent: r(settings.setSettingIfAbsent),
    },
  }
}

class Unrecorded extends Error {}

const rethrowBusy = (error: unknown): never => {
  throw busyAsDomainError(error)
}

/** Inside an open transaction, what a group commit would undo alone is undone alone. */
function inSavepoint<T>(client: Db['$client'], work: () => T): T {
  client.run('SAVEPOINT together')
  try {
    const result = work()
    client.run('RELEASE together')
    return result
  } catch (error) {
    client.run('ROLLBACK TO together')
    client.run('RELEASE together')
    throw error
  }
}
