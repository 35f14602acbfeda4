/**
 * Where bytes live. The engine talks only to these interfaces, so a store on another medium
 * (S3, say) is a new implementation, not a new engine.
 */

/** Bytes of uploads still in progress, written at byte offsets. */
export interface Staging {
  /**
   * Creates the staging file for an upload at its full size; does nothing if it exists. The new
   * name is durable only after `syncNames` (an upload finished in one request never needs it).
   */
  create(uploadId: string, totalBytes: number): Promise<void>
  /** Makes the names of the staging files created so far durable. */
  syncNames(): Promise<void>
  /** The uploads that have a staging file. */
  list(): Promise<string[]>
  /**
   * Streams `body` into the upload's file starting at `offset` and makes it durable before
   * resolving to the number of bytes written. A body longer than `maxBytes` is an error. When
   * the body fails part-way (the client went away), rejects with InterruptedWrite telling how
   * many leading bytes are nevertheless durable. With `create`, a missing file is created (for
   * an upload whose one write fills it, so it has its full size once written).
   */
  write(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number, options?: { create?: boolean }): Promise<number>
  /** Size of the staging file, or null if there is none. */
  size(uploadId: string): Promise<number | null>
  /** All the staged bytes, as a stream. */
  read(uploadId: string): ReadableStream<Uint8Array>
  /**
   * Hands the staged bytes [start, end) to `take` piece by piece, in order. A piece is only
   * valid during the call (its memory is reused): cheaper than a stream for hashing.
   */
  scan(uploadId: string, start: number, end: number, take: (piece: Uint8Array) => void): Promise<void>
  /** A local path to the staged bytes, for a blob store that can adopt them by linking. */
  pathOf(uploadId: string): string
  remove(uploadId: string): Promise<void>
  /** Bytes available for new data on the staging volume. */
  freeBytes(): Promise<number>
}

/** Finished content, addressed by SHA-256. */
export interface BlobStore {
  has(sha256: string): Promise<boolean>
  /**
   * Adds a finished staging file to the store under its hash, durably, leaving the staged file
   * where it is (the caller removes it once the database says where the bytes went). An existing
   * copy is kept when `trusted` (a committed row vouches for it) and replaced otherwise: a file
   * no row refers to may be anything (what a crash left, a hand-made copy).
   */
  adopt(stagedPath: string, sha256: string, existing: 'trusted' | 'replace'): Promise<void>
  /**
   * Stores bytes held in memory as the blob `sha256`, durably (bytes and name), in place of any
   * copy at its path; the caller holds the blob's lock. `vouched`: a committed row refers to
   * this blob (its bytes went missing), so its name shows the new bytes only once all are
   * durable. Otherwise a write cut short leaves at most a file no row refers to.
   */
  write(sha256: string, bytes: Uint8Array, vouched: boolean): Promise<void>
  /** The bytes [start, end) of a blob, ready to be a response body. */
  body(sha256: string, start: number, end: number): Blob
  remove(sha256: string): Promise<void>
}

/** A write that stopped early; its first `durableBytes` bytes are safely on disk. */
export class InterruptedWrite extends Error {
  constructor(
    readonly durableBytes: number,
    override readonly cause: unknown,
  ) {
    super(`write interrupted after ${durableBytes} durable bytes: ${String(cause)}`)
  }
}
