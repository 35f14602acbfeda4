import type { Staging } from '../ports/staging.ts'

interface State {
  hasher: Bun.CryptoHasher
  /** Bytes [0, offset) are in the hash. */
  offset: number
  /** Steps queued on the chain and not finished. */
  queued: number
  /** Hashing work runs one step after another. */
  chain: Promise<void>
  /** For chunked uploads: the first chunk index not yet known to be durable. */
  nextChunk: number
}

/**
 * The SHA-256 of each upload's durable prefix, kept up to date while the upload arrives, so
 * that finalising a large file does not have to read it all again. It reads back from the
 * staging file (recently written, so usually from the page cache) only bytes that are recorded,
 * and recorded bytes never change. After a restart the state is gone and `digest` simply
 * hashes the whole file. A staging that cannot be read before it is sealed (an object store's
 * multipart upload) is not read on the way: `digest`, after the seal, reads once what the hash
 * did not see go by.
 */
export class RunningHashes {
  private readonly states = new Map<string, State>()

  /**
   * `readAhead`: read recorded bytes back as soon as everything before them is recorded, so that
   * finalising has little left to hash. Off when other instances share the uploads: only the
   * instance that finalises needs the hash, and it reads back, once, what it did not see.
   */
  constructor(
    private readonly staging: Staging,
    private readonly options: { readAhead: boolean } = { readAhead: true },
  ) {}

  private state(uploadId: string): State {
    let state = this.states.get(uploadId)
    if (!state) {
      state = { hasher: new Bun.CryptoHasher('sha256'), offset: 0, queued: 0, chain: Promise.resolve(), nextChunk: 0 }
      this.states.set(uploadId, state)
    }
    return state
  }

  /** The first chunk the contiguous prefix does not include yet. */
  nextChunk(uploadId: string): number {
    return this.state(uploadId).nextChunk
  }

  /** For chunked uploads: moves past recorded chunks and returns the new durable prefix in bytes. */
  contiguousPrefix(uploadId: string, chunkBytes: number, totalBytes: number, isRecorded: (index: number) => boolean): number {
    const state = this.state(uploadId)
    while (state.nextChunk * chunkBytes < totalBytes && isRecorded(state.nextChunk)) state.nextChunk++
    return Math.min(state.nextChunk * chunkBytes, totalBytes)
  }

  /** Hashes, in the background, whatever of [0, prefix) is not hashed yet. */
  advance(uploadId: string, prefix: number) {
    if (!this.staging.readsUnsealed || !this.options.readAhead) return
    const state = this.state(uploadId)
    state.queued++
    state.chain = state.chain.then(() => this.hashUpTo(uploadId, state, prefix)).finally(() => state.queued--)
  }

  private async hashUpTo(uploadId: string, state: State, end: number) {
    if (this.states.get(uploadId) !== state || end <= state.offset) return
    try {
      await this.hashRange(state.hasher, uploadId, state.offset, end)
      state.offset = end
    } catch {
      // The staging file went away (cancelled, expired): nothing left to hash.
      this.states.delete(uploadId)
    }
  }

  /**
   * For a body that continues exactly where the running hash stands (a sequential upload):
   * hashes it on its way to disk instead of reading it back later. `settle` must follow with
   * where the recorded bytes now end; if that is not where the body got to, the hash goes back
   * to where it stood, and `advance` reads what counts from the file.
   */
  tap(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>) {
    const state = this.state(uploadId)
    // Only when the hash is idle right where this body starts; never make the body wait for
    // reading back earlier bytes.
    if (state.queued > 0 || state.offset !== offset) {
      // Not where the hash stands (a chunk out of order, or after a restart): the bytes are read
      // back later, once everything before them is recorded (see advance).
      return { body, settle: (_recordedEnd: number) => {} }
    }
    let tapped = 0
    // What the hash was before this body, to go back to if the body does not count in full.
    const before = state.hasher.copy()
    // Nothing is read back into the hash until this body settles: its bytes may be recorded (and
    // seen recorded by another request) before `settle` says where the hash stands, and reading
    // them back then would hash them twice.
    const { promise: settled, resolve: endTap } = Promise.withResolvers<void>()
    state.queued++
    state.chain = state.chain.then(() => settled).finally(() => state.queued--)
    async function* hashed() {
      for await (const piece of body) {
        state.hasher.update(piece)
        tapped += piece.length
        yield piece
      }
    }
    return {
      body: hashed(),
      settle: (recordedEnd: number) => {
        endTap()
        if (this.states.get(uploadId) !== state) return
        if (recordedEnd === offset + tapped) {
          state.offset = recordedEnd
          return
        }
        // Bytes that count but were not all seen here (an interrupted body) are read back by advance.
        state.hasher = before
      },
    }
  }

  /** The hash of all `totalBytes` bytes, once sealed: finishes from wherever the running hash got to. */
  async digest(uploadId: string, totalBytes: number): Promise<string> {
    const state = this.state(uploadId)
    state.chain = state.chain.then(() => this.hashUpTo(uploadId, state, totalBytes))
    await state.chain
    this.states.delete(uploadId)
    if (state.offset !== totalBytes) {
      // Lost on the way (the file vanished while hashing): start from scratch.
      const fresh = new Bun.CryptoHasher('sha256')
      await this.hashRange(fresh, uploadId, 0, totalBytes)
      return fresh.digest('hex')
    }
    return state.hasher.digest('hex')
  }

  private async hashRange(hasher: Bun.CryptoHasher, uploadId: string, start: number, end: number) {
    for await (const piece of this.staging.read(uploadId, start, end, { borrowed: true })) hasher.update(piece)
  }

  forget(uploadId: string) {
    this.states.delete(uploadId)
  }
}
