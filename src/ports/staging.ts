/**
 * The bytes of uploads still in progress, written at byte offsets. The engine knows nothing of
 * where they live: the local disk keeps one file per upload, an S3 adapter a multipart upload.
 * tests/contracts/storage.ts says what every adapter must do.
 */
export interface Staging {
  /**
   * Begins an upload's staging, empty, or leaves it as it is when begun already. Durable once it
   * resolves: after a crash the upload's staging is still there (with what was written to it
   * durably). Cheap when called again for the same upload. `layout` (taken from the first begin)
   * lets an object store choose its part size; without it, a default fits files of any size the
   * adapter accepts.
   */
  begin(uploadId: string, layout?: StagingLayout): Promise<void>
  /**
   * Streams `body` into the upload's staging from byte `offset` and makes it durable before
   * resolving to the number of bytes written. A body longer than `maxBytes` is an error. When the
   * body fails part-way (the client went away), rejects with InterruptedWrite telling how many
   * leading bytes are nevertheless durable. The upload must have been begun (its `begin()` may
   * still be running), unless `whole`: this one write holds all of a file that is adopted into
   * the blob store before anything about it is acknowledged, so its staging begins here and need
   * not outlive a crash.
   */
  write(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number, options?: WriteOptions): Promise<number>
  /**
   * Completes the staging of an upload whose `totalBytes` bytes are all written: afterwards
   * `read` works everywhere and nothing more is written. Again on a sealed upload: nothing.
   * Rejects with a DomainError 'failed' when it finds bytes missing (the local disk does nothing
   * here, and cannot tell a hole from zeros).
   */
  seal(uploadId: string, totalBytes: number): Promise<void>
  /**
   * Whether `read` works before `seal` (the local disk). An object store cannot read an
   * unfinished multipart upload: its running hash is then finished from the sealed bytes.
   */
  readonly readsUnsealed: boolean
  /**
   * The staged bytes [start, end), in order (of a sealed upload, unless `readsUnsealed`); rejects
   * if the staging ends before `end`. With
   * `borrowed`, a piece is valid only until the next one is asked for (its memory is reused):
   * cheaper for a consumer that is done with each piece at once, such as a hash.
   */
  read(uploadId: string, start: number, end: number, options?: { borrowed?: boolean }): AsyncIterable<Uint8Array>
  /** Bytes staged (the end of the furthest write), or null when the upload has no staging. */
  size(uploadId: string): Promise<number | null>
  /** The uploads that have staging. */
  list(): Promise<string[]>
  /** Drops an upload's staging (nothing if there is none). */
  remove(uploadId: string): Promise<void>
}

/** What an upload's staging will hold, as far as known when it begins. */
export interface StagingLayout {
  /** The upload's exact size, when known. */
  totalBytes: number | null
  /** What it may grow to at most when its size is not known yet. */
  maxBytes: number
  /** The protocol's chunk size, when chunks are written at multiples of it (Dropzone). */
  chunkBytes?: number
}

export interface WriteOptions {
  /** See `write`: this one write holds all of a file, and begins its staging. */
  whole?: boolean
  /**
   * The write continues an upload where its accepted bytes end (a streamed upload, such as a tus
   * PATCH): whatever is staged at or past `offset` was refused and is void, and these bytes may
   * yet be refused too (a checksum), so they must stay rewritable until a later append or the
   * seal shows they count.
   */
  append?: boolean
}

/**
 * Free space where uploads are staged, for refusing uploads that would fill it. A capability,
 * not part of Staging: an object store has no such limit, and the engine then checks nothing.
 */
export interface SpaceGauge {
  freeBytes(): Promise<number>
}

/** A write that stopped early; its first `durableBytes` bytes are durable nevertheless. */
export class InterruptedWrite extends Error {
  constructor(
    readonly durableBytes: number,
    override readonly cause: unknown,
  ) {
    super(`write interrupted after ${durableBytes} durable bytes: ${String(cause)}`)
  }
}
