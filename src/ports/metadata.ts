import type {
  ActivityEntry, ActivityQuery, ActivityRecord, Admission, AdmissionFigures, Completion, FilePageQuery, FileRecord, Folder, FolderChoice,
  Lease, Link, LinkUsage, NewLink, NewUpload, PurgeResult, StorageSummary, TrashEntry, Upload, UploadState,
} from '../core/records.ts'

/**
 * Everything the server remembers (uploads, folders and files, links, sessions, activity,
 * settings), as small repositories of atomic domain operations. Each adapter makes each
 * operation atomic its own way (SQLite: one synchronous transaction, committed in a group;
 * PostgreSQL: one transaction). Every method is async and returns domain records; no SQL, no
 * driver rows and no row counts cross this line. What every adapter must do:
 * tests/contracts/metadata.ts.
 */
export interface MetadataStore extends Repositories {
  /**
   * Runs `work` in one transaction: all its writes land, or (when it throws) none. Nothing done
   * outside it (other requests' operations) runs inside it while `work` awaits.
   */
  transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T>
  /** Resolves once every commit so far would survive a power cut: call it before acknowledging. */
  durable(): Promise<void>
  close(): Promise<void>
}

export interface Repositories {
  uploads: UploadRecords
  library: Library
  links: LinkRecords
  sessions: SessionRecords
  activity: ActivityLog
  settings: Settings
}

export interface UploadRecords {
  find(id: string): Promise<Upload | undefined>
  findByClientKey(owner: string, clientKey: string): Promise<Upload | undefined>
  /**
   * Inserts the upload unless one with the same owner and client key exists (then returns that
   * one, `created: false`); `admit` is checked in the same transaction. Throws what it throws.
   */
  create(upload: NewUpload, admit?: Admission): Promise<{ upload: Upload; created: boolean }>
  /**
   * Whole files whose bytes are in the blob store already: each upload recorded together with its
   * file, all in one commit (all or none). Null, and nothing recorded, when an upload with the
   * same client key as one of them exists.
   */
  createComplete(items: { upload: Omit<NewUpload, 'state' | 'leaseOwner' | 'leaseExpiresAt'>; sha256: string }[], admit?: Admission): Promise<FileRecord[] | null>
  /** The figures an admission rule looks at, as they are now (for checks before bytes are read). */
  admissionFigures(owner: string): Promise<AdmissionFigures>

  hasChunk(uploadId: string, index: number): Promise<boolean>
  receivedChunks(uploadId: string): Promise<number[]>
  /** The first chunk index at or after `from` (below `count`) not recorded; `count` when all are. */
  firstMissingChunk(uploadId: string, from: number, count: number): Promise<number>
  /**
   * Records a durable chunk and counts it, once; nothing unless the upload is still receiving.
   * When it was the last one missing, the same commit claims the finalisation under `lease`.
   */
  recordChunk(uploadId: string, index: number, sizeBytes: number, now: number, lease: Lease): Promise<{ upload: Upload | undefined; claimed: boolean }>
  /** A streamed upload's offset moves from `fromOffset` by `bytes`, if it is still there and receiving. */
  recordBytes(uploadId: string, fromOffset: number, bytes: number, now: number): Promise<boolean>
  declareLength(uploadId: string, totalBytes: number, now: number): Promise<boolean>
  markPartialComplete(uploadId: string, now: number): Promise<boolean>
  /** Moves an upload between states; true only for the one caller that made the change. */
  transition(uploadId: string, from: UploadState[], to: UploadState, now: number, error?: string): Promise<boolean>
  /** Forgets an upload that ended without a file (failed, expired or cancelled). */
  remove(uploadId: string): Promise<boolean>

  /** The one caller that finds every byte here gets the finalisation, under its lease. */
  claimFinalization(uploadId: string, now: number, lease: Lease): Promise<boolean>
  /** Takes over a finalisation whose lease lapsed or was let go; a live lease is never taken. */
  takeOverFinalization(uploadId: string, now: number, lease: Lease): Promise<boolean>
  unleasedFinalizations(now: number): Promise<Upload[]>
  renewLease(uploadId: string, lease: Lease): Promise<boolean>
  releaseLease(uploadId: string, owner: string): Promise<boolean>
  failFinalization(uploadId: string, owner: string, now: number, error: string): Promise<boolean>
  /**
   * The upload becomes a file: one more reference to its blob, the file under a free name in its
   * folder, the upload complete; only for the owner of its lease (null, nothing changed, otherwise).
   */
  completeUpload(completion: Completion): Promise<FileRecord | null>

  inState(state: UploadState): Promise<Upload[]>
  /** Receiving uploads (and unused finished partials) idle since before the cut-offs. */
  stale(olderThan: number, linksOlderThan: number): Promise<Upload[]>
  /** Everything not (yet) a file, most recently active first. */
  unfinished(limit: number): Promise<Upload[]>
  ofLink(linkId: number, limit?: number): Promise<Upload[]>
  stagedBytes(): Promise<number>
}

export interface Library {
  folder(id: number): Promise<Folder | undefined>
  file(id: number): Promise<FileRecord | undefined>
  blobIsReferenced(sha256: string): Promise<boolean>
  filePage(q: FilePageQuery): Promise<FileRecord[]>
  countLiveFiles(folderId: number, filter?: string): Promise<number>
  liveSubfolders(parentId: number): Promise<Folder[]>
  /** The folder and its ancestors, root first. */
  folderPath(folderId: number): Promise<Folder[]>
  /** "/" for Home, "/Projects/2024" below it, elided when deep. */
  folderPathText(folderId: number): Promise<string>
  isInTrash(folderId: number): Promise<boolean>
  allFolderPaths(): Promise<FolderChoice[]>
  folderMoveTargets(id: number): Promise<FolderChoice[]>
  createFolder(parentId: number, name: string, now: number): Promise<Folder>
  renameFolder(id: number, name: string): Promise<Folder>
  moveFolder(id: number, targetId: number): Promise<Folder>
  trashFolder(id: number, now: number): Promise<Folder>
  renameFile(id: number, name: string): Promise<FileRecord>
  moveFiles(ids: number[], targetId: number): Promise<FileRecord[]>
  trashFiles(ids: number[], now: number): Promise<FileRecord[]>
  trashEntries(): Promise<TrashEntry[]>
  restoreFile(id: number): Promise<FileRecord>
  restoreFolder(id: number): Promise<Folder>
  /** Deletes for good what is in the trash since before `olderThan` (everything when omitted). */
  purgeTrash(olderThan?: number): Promise<PurgeResult>
  storageSummary(): Promise<StorageSummary>
  /** The password hash guarding a folder: its own or its nearest protected ancestor's. */
  folderPasswordHash(folderId: number): Promise<string | null>
  setFolderPassword(folderId: number, passwordHash: string | null): Promise<Folder | undefined>
  protectedFolders(): Promise<{ id: number }[]>
}

export interface LinkRecords {
  find(id: number): Promise<Link | undefined>
  findByTokenHash(tokenHash: string): Promise<Link | undefined>
  all(): Promise<Link[]>
  create(link: NewLink): Promise<Link>
  update(id: number, change: Partial<NewLink>): Promise<Link | undefined>
  remove(id: number): Promise<Link | undefined>
  /** What a link has taken in so far; uploads in progress count with their full size. */
  usage(linkId: number): Promise<LinkUsage>
}

export interface SessionRecords {
  /** Keeps a new session (by its id's hash) and forgets expired ones. */
  create(session: { idHash: string; createdAt: number; expiresAt: number; clientAddress: string | null }): Promise<void>
  isLive(idHash: string, now: number): Promise<boolean>
  remove(idHash: string): Promise<void>
  /** Every session, or every one but `exceptIdHash`'s. */
  removeAll(exceptIdHash?: string): Promise<void>
}

export interface ActivityLog {
  log(at: number, entry: ActivityEntry): Promise<void>
  list(q: ActivityQuery): Promise<ActivityRecord[]>
  actions(): Promise<string[]>
}

export interface Settings {
  get(key: string): Promise<string | null>
  set(key: string, value: string): Promise<void>
  /** Stores `value` unless the key has one; resolves to the value in force. */
  setIfAbsent(key: string, value: string): Promise<string>
}
