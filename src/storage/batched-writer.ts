import type { FileHandle } from 'node:fs/promises'

/** Network reads are small (~64 KiB); the disk prefers larger writes. */
const BATCH_BYTES = 1024 * 1024
/** Pieces at least this large are written as they are, not copied into a batch first. */
const DIRECT_BYTES = 256 * 1024
/** Start flushing to the platter in the background every so often, so the final sync is short. */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024

/**
 * Writes a stream of pieces at consecutive positions of a file. Two buffers take turns: one is
 * being written while the next fills from the network, so receiving and writing overlap. Every
 * EARLY_SYNC_BYTES a datasync runs alongside, so the durable sync at the end has little left.
 */
export class BatchedWriter {
  /** Allocated when first needed: a body that arrives in large pieces never needs them. */
  private readonly buffers: (Buffer | undefined)[] = [undefined, undefined]
  private readonly batchBytes: number
  private current = 0
  private batched = 0
  /** Bytes handed to writes so far (written or being written). */
  private queued = 0
  private sinceSync = 0
  /** The last write handed off; the next one waits for it (one write at a time, in order). */
  private pending: Promise<void> = Promise.resolve()
  private syncing: Promise<void> = Promise.resolve()
  /** Bytes whose writes completed. */
  written = 0

  constructor(
    private readonly handle: FileHandle,
    private readonly offset: number,
    maxBytes: number,
  ) {
    this.batchBytes = Math.min(BATCH_BYTES, Math.max(maxBytes, 1))
  }

  get received() {
    return this.queued + this.batched
  }

  async add(piece: Uint8Array) {
    if (this.batched === 0 && piece.length >= DIRECT_BYTES) return this.handOff(piece, piece.length)
    let at = 0
    while (at < piece.length) {
      const buffer = (this.buffers[this.current] ??= Buffer.allocUnsafe(this.batchBytes))
      const n = Math.min(piece.length - at, buffer.length - this.batched)
      buffer.set(piece.subarray(at, at + n), this.batched)
      this.batched += n
      at += n
      if (this.batched === buffer.length) await this.handOffBatch()
    }
  }

  /** Starts writing the full buffer and switches to the other one once that is free. */
  private async handOffBatch() {
    const buffer = this.buffers[this.current]!
    const length = this.batched
    this.current ^= 1
    this.batched = 0
    // The buffer switched to was handed to the previous write: handOff waits until it is free.
    await this.handOff(buffer, length)
  }

  /** Queues a write of `length` bytes of `buffer` after the ones before it; resolves when the previous one is done. */
  private async handOff(buffer: Uint8Array, length: number) {
    const position = this.offset + this.queued
    this.queued += length
    this.sinceSync += length
    const previous = this.pending
    this.pending = previous.then(async () => {
      let done = 0
      while (done < length) done += (await this.handle.write(buffer, done, length - done, position + done)).bytesWritten
      this.written += length
    })
    if (this.sinceSync >= EARLY_SYNC_BYTES) {
      this.sinceSync = 0
      const written = this.pending
      this.syncing = Promise.all([this.syncing, written]).then(() => this.handle.datasync())
    }
    await previous
  }

  /** Writes what is left and makes everything durable; resolves to the bytes written. */
  async finish(): Promise<number> {
    if (this.batched > 0) await this.handOffBatch()
    await this.pending
    await this.syncing
    await this.handle.datasync()
    return this.written
  }

  /** After a failure: keeps what arrived if possible; resolves to the bytes now durable (0 if unsure). */
  async salvage(): Promise<number> {
    try {
      await this.syncing.catch(() => {})
      return await this.finish()
    } catch {
      return 0
    }
  }
}
