/**
 * What the server remembers, as plain data: the domain's records, whatever store keeps them
 * (see ports/metadata.ts). Timestamps are milliseconds since the epoch.
 */

export const ROOT_FOLDER_ID = 1

export const UPLOAD_STATES = ['receiving', 'finalizing', 'complete', 'failed', 'expired', 'cancelled'] as const
export type UploadState = (typeof UPLOAD_STATES)[number]

export interface Upload {
  /** Server-chosen id; also names the staging file, so it never comes from a client. */
  id: string
  protocol: 'dropzone' | 'plain' | 'tus'
  /** Who may touch this upload: "admin", or a drop link ("link:<id>"). */
  owner: string
  /** The client's own id for the upload (Dropzone's dzuuid), unique per owner. */
  clientKey: string | null
  folderId: number
  fileName: string
  mimeType: string
  totalBytes: number
  chunkBytes: number
  chunkCount: number
  /** Streamed uploads (tus) may start before their length is known. */
  lengthDeferred: boolean
  /** tus concatenation: a partial upload, or the final upload assembled from partials. */
  concat: 'partial' | 'final' | null
  /** For a final upload: the ids of its partial uploads, in order (JSON array). */
  partIds: string | null
  /** The client's metadata as sent (tus Upload-Metadata). */
  metadata: string | null
  receivedChunks: number
  receivedBytes: number
  state: UploadState
  sha256: string | null
  fileId: number | null
  error: string | null
  clientAddress: string | null
  createdAt: number
  updatedAt: number
  completedAt: number | null
  /** The engine instance running this upload's finalisation, while it runs (a lease). */
  leaseOwner: string | null
  /** When that lease lapses unless renewed. */
  leaseExpiresAt: number | null
}

/** A new upload: what its creator says; the rest starts empty. */
export type NewUpload = Pick<Upload, 'id' | 'protocol' | 'owner' | 'folderId' | 'fileName' | 'mimeType' | 'totalBytes' | 'chunkBytes' | 'chunkCount' | 'state' | 'createdAt' | 'updatedAt'> &
  Partial<Pick<Upload, 'clientKey' | 'lengthDeferred' | 'concat' | 'partIds' | 'metadata' | 'clientAddress' | 'receivedBytes' | 'receivedChunks' | 'leaseOwner' | 'leaseExpiresAt'>>

/**
 * Who runs an upload's finalisation, and until when: an engine instance renews its lease while it
 * works; once it lapses, another may take the finalisation over.
 */
export interface Lease {
  owner: string
  expiresAt: number
}

export interface FileRecord {
  id: number
  folderId: number
  name: string
  sizeBytes: number
  sha256: string
  mimeType: string
  uploadId: string | null
  createdAt: number
  /** Set while the file is in the trash. */
  deletedAt: number | null
}

export interface Folder {
  id: number
  /** Null only for the root folder. */
  parentId: number | null
  name: string
  createdAt: number
  deletedAt: number | null
  passwordHash: string | null
}

export interface Link {
  id: number
  tokenHash: string
  tokenHint: string
  folderId: number
  label: string
  passwordHash: string | null
  expiresAt: number | null
  maxFileBytes: number | null
  maxTotalBytes: number | null
  maxFiles: number | null
  allowedTypes: string | null
  allowDownload: boolean
  disabled: boolean
  createdAt: number
}

export type NewLink = Pick<Link, 'tokenHash' | 'folderId' | 'label' | 'createdAt'> & Partial<Omit<Link, 'id' | 'tokenHash' | 'folderId' | 'label' | 'createdAt'>>

export interface LinkUsage {
  /** Uploads that became files. */
  files: number
  fileBytes: number
  /** Uploads still receiving or being finalised (counted against the limits too). */
  inProgress: number
  inProgressBytes: number
}

/**
 * Bytes that uploads in progress have been promised but not yet written (staging files are
 * sparse), split by who promised them.
 */
export interface Outstanding {
  /** Of uploads through drop links. */
  links: number
  /** Of every other upload (the admin's). */
  others: number
  /** Of the given owner's uploads. */
  own: number
}

/** What an admission rule may look at, read by the store inside the transaction that creates the upload. */
export interface AdmissionFigures {
  /** The owner's drop link's usage, when the owner is a drop link. */
  link?: LinkUsage
  outstanding: Outstanding
}

/**
 * Whether a new upload may start: a pure rule over figures the store reads in the same
 * transaction that inserts the upload, so parallel creations cannot overshoot a limit. `check`
 * throws (a DomainError) to refuse.
 */
export interface Admission {
  owner: string
  check(figures: AdmissionFigures, upload: AdmittedUpload): void
}

/** What an admission rule is asked about. */
export interface AdmittedUpload {
  fileName: string
  totalBytes: number
  /** tus concatenation: a partial counts as bytes only; a final's bytes are its partials', counted already. */
  concat?: 'partial' | 'final' | null
  /** Already among the figures (a deferred length declared later): only its bytes and size are checked. */
  counted?: boolean
}

/** Both rules, in order. */
export function bothAdmissions(first: Admission | undefined, second: Admission | undefined): Admission | undefined {
  if (!first || !second) return first ?? second
  return {
    owner: first.owner,
    check(figures, upload) {
      first.check(figures, upload)
      second.check(figures, upload)
    },
  }
}

export const linkOwner = (linkId: number) => `link:${linkId}`

/** The link behind an upload owner ("link:<id>"), or null for the admin's uploads. */
export function linkIdOf(owner: string): number | null {
  const m = /^link:(\d+)$/.exec(owner)
  return m ? Number(m[1]) : null
}

export interface ActivityEntry {
  actor: string
  action: string
  target?: string | null
  details?: Record<string, unknown> | string | null
  clientAddress?: string | null
}

export interface ActivityRecord {
  id: number
  at: number
  /** "admin", "link:<id>", or "anonymous" for failed sign-ins. */
  actor: string
  action: string
  target: string | null
  details: string | null
  clientAddress: string | null
}

export interface ActivityQuery {
  action?: string
  actor?: string
  /** Substring of target or details. */
  text?: string
  /** Only entries older than this id (for "older" pages). */
  beforeId?: number
  limit: number
}

export type FileSort = 'name' | 'size' | 'date'
export type SortDirection = 'asc' | 'desc'

export interface FilePageQuery {
  folderId: number
  sort: FileSort
  direction: SortDirection
  /** Case-insensitive substring of the name. */
  filter: string
  limit: number
  offset: number
}

/** A live folder as a "move to" or "share" choice; `depth` is 0 for Home, 1 for a folder in it. */
export interface FolderChoice {
  id: number
  path: string
  depth: number
}

export interface TrashEntry {
  kind: 'file' | 'folder'
  id: number
  name: string
  /** Where it was: the path of its folder (or parent folder). */
  from: string
  sizeBytes: number | null
  deletedAt: number
}

export interface PurgeResult {
  files: number
  folders: number
  /** Hashes of blobs no file needs any more: their bytes may go. */
  unusedBlobs: string[]
  /** Uploads that were aimed at a purged folder (now aimed at Home). */
  rehomedUploads: { id: string; owner: string }[]
}

export interface StorageSummary {
  storedBytes: number
  logicalBytes: number
  blobCount: number
  fileCount: number
}

/** What completeUpload records: the finished upload's file, under its lease. */
export interface Completion {
  uploadId: string
  folderId: number
  name: string
  sizeBytes: number
  sha256: string
  mimeType: string
  now: number
  leaseOwner: string
}
