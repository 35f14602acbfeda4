/**
 * Finished content, addressed by SHA-256. tests/contracts/storage.ts says what every adapter
 * must do (together with its Staging).
 */
export interface BlobStore {
  has(sha256: string): Promise<boolean>
  /**
   * Takes the staged bytes of `uploadId` (all of them, whose hash is `sha256`) into the store,
   * durably, leaving the upload's staging as it is (the caller removes it once the database says
   * where the bytes went). An existing copy is kept when `trusted` (a committed row vouches for
   * it) and replaced otherwise: a copy no row refers to may be anything (what a crash left, a
   * hand-made copy). The local disk links the staged file; an object store keeps the object where
   * it is.
   */
  adopt(uploadId: string, sha256: string, existing: 'trusted' | 'replace'): Promise<void>
  /**
   * Stores bytes held in memory as the blob `sha256`, durably, in place of any copy; the caller
   * holds the blob's lock. `vouched`: a committed row refers to this blob (its bytes went missing),
   * so the blob shows the new bytes only once all are durable. Otherwise a write cut short leaves
   * at most a copy no row refers to.
   */
  write(sha256: string, bytes: Uint8Array, vouched: boolean): Promise<void>
  /**
   * The bytes [start, end) of a blob, ready to be a response body: streamed from the store as the
   * client reads them (an object store answers with a ranged GET), never held whole in memory.
   */
  body(sha256: string, start: number, end: number): Promise<Blob | ReadableStream<Uint8Array>>
  remove(sha256: string): Promise<void>
}
