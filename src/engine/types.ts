import type { Config } from '../config.ts'
import type { FileRecord, Upload } from '../core/records.ts'
import type { Locker } from '../ports/locker.ts'
import type { MetadataStore } from '../ports/metadata.ts'
import type { BlobStore } from '../ports/blobs.ts'
import type { SpaceGauge, Staging } from '../ports/staging.ts'

export interface EngineDeps {
  store: MetadataStore
  config: Config
  staging: Staging
  blobs: BlobStore
  /** Free space where uploads are staged; without it, uploads are not refused for lack of room. */
  space?: SpaceGauge
  /** Blob hashes, chunks and streamed uploads are each written by one request at a time. */
  locker: Locker
  clock: () => number
  log: (message: string, context?: Record<string, unknown>) => void
  /** Owner of this instance's finalisation leases; random per start when omitted. */
  instanceId?: string
  /**
   * Other instances may receive this instance's uploads' chunks (several instances on one
   * database). Then recorded bytes this instance did not see go by in order are not read back as
   * they are recorded (every instance would read nearly the whole file), only once, by the
   * instance that finalises.
   */
  shared?: boolean
}

/** What a client declares when it starts (or continues) a chunked upload. */
export interface ChunkedUploadSpec {
  protocol: 'dropzone'
  owner: string
  clientKey: string
  folderId: number
  fileName: string
  totalBytes: number
  chunkBytes: number
  chunkCount: number
  clientAddress: string | null
  /**
   * The folder is not the client's to choose (a drop link's): an upload already started stays
   * in the folder it began in, even if the link has been pointed elsewhere since.
   */
  keepStartedFolder?: boolean
}

/** What a client declares when it begins an upload: chunked (with a layout) or streamed. */
export type UploadSpec = ChunkedUploadSpec | StreamUploadSpec

/**
 * What a client declares when it starts a streamed upload: a tus upload, or a whole file in one
 * request body (`plain`: a multipart file part, whose length is that of the body).
 */
export interface StreamUploadSpec {
  protocol: 'tus' | 'plain'
  owner: string
  folderId: number
  fileName: string
  /** Null when the client will say later (tus creation-defer-length), or the body's end will (plain). */
  totalBytes: number | null
  /**
   * Without a length: the most it may come to (a plain file is no larger than its request). It is
   * reserved and admitted as if it were the length, and the upload may not grow past it.
   */
  atMostBytes?: number
  clientAddress: string | null
  concat?: 'partial' | 'final'
  /** For a final upload: its partial uploads' ids, in order (JSON array). */
  partIds?: string
  metadata?: string | null
}

export interface FileInfo {
  id: number
  name: string
  folderId: number
  sizeBytes: number
  sha256: string
  mimeType: string
  createdAt: number
  url: string
}

export interface UploadStatus {
  id: string
  clientKey: string | null
  state: Upload['state']
  fileName: string
  folderId: number
  totalBytes: number
  receivedBytes: number
  chunkBytes: number
  chunkCount: number
  receivedChunks: number
  error: string | null
  file: FileInfo | null
}

export function fileInfo(file: FileRecord): FileInfo {
  return {
    id: file.id,
    name: file.name,
    folderId: file.folderId,
    sizeBytes: file.sizeBytes,
    sha256: file.sha256,
    mimeType: file.mimeType,
    createdAt: file.createdAt,
    url: `/files/${file.id}/download`,
  }
}
