import { DomainError } from '../../core/errors.ts'
import { noteBytesReceived } from '../../platform/collect-garbage.ts'
import { InterruptedWrite, type Staging, type StagingLayout, type WriteOptions } from '../../ports/staging.ts'
import { partBytesFor } from './layout.ts'
import type { Bucket, Log, StoredPart } from './objects.ts'
import { isUploadId, metaName, objectName, OBJECTS, pieceName, pieceRange, piecesUnder, STAGING, TARGET, blobName } from './names.ts'

/** What `staging/<id>/meta` holds. */
interface Meta {
  partBytes: number
  /** Null until the first part of a whole write (never stored: a whole write need not outlive a crash). */
  multipartId: string | null
  /** The exact size when known: a last part may then be sent straight away. */
  totalBytes: number | null
  /** Set by the blob store before it points a blob at this upload's object. */
  adoptedAs?: string
}

interface Piece {
  name: string
  start: number
  end: number
}

/**
 * Staging in an S3 bucket: each upload is a multipart upload (see docs/s3.md). A write's bytes
 * go out in segments cut at part boundaries: a segment that is a whole part is uploaded as that
 * part; any other is a piece object, and once pieces cover a part, the part is assembled from
 * them and they go. `seal` makes the rest into parts and completes the multipart upload, whose
 * object the blob store then adopts where it is. A write holds at most one part in memory.
 */
export class S3Staging implements Staging {
  readonly readsUnsealed = false
  private readonly metas = new Map<string, Meta>()
  private readonly beginning = new Map<string, Promise<Meta>>()
  private readonly sealed = new Set<string>()
  /** Appended uploads this process left pieces of, not yet folded into parts. */
  private readonly withPieces = new Set<string>()

  constructor(
    private readonly bucket: Bucket,
    private readonly log: Log,
    /** The layout of a whole write, whose size is not known before it ends. */
    private readonly wholeLayout: StagingLayout = { totalBytes: null, maxBytes: 160 * 1024 ** 3 },
  ) {}

  begin(uploadId: string, layout?: StagingLayout): Promise<void> {
    if (this.metas.has(uploadId)) return Promise.resolve()
    let begun = this.beginning.get(uploadId)
    if (!begun) {
      begun = this.establish(uploadId, layout).finally(() => this.beginning.delete(uploadId))
      this.beginning.set(uploadId, begun)
    }
    return begun.then(() => {})
  }

  /** Reads the upload's meta, or makes it (with its multipart upload) if it has none yet. */
  private async establish(uploadId: string, layout = this.wholeLayout): Promise<Meta> {
    const found = await this.meta(uploadId)
    if (found) return found
    const meta: Meta = { partBytes: partBytesFor(layout), multipartId: await this.bucket.createMultipart(objectName(uploadId)), totalBytes: layout.totalBytes }
    // Only the first meta counts: two instances beginning the same upload at once share one multipart upload.
    if (await this.bucket.put(metaName(uploadId), encode(meta), { ifAbsent: true })) {
      this.metas.set(uploadId, meta)
      return meta
    }
    await this.bucket.abortMultipart(objectName(uploadId), meta.multipartId!)
    const theirs = await this.meta(uploadId)
    if (!theirs) throw new Error(`the staging of ${uploadId} vanished while it began`)
    return theirs
  }

  private async meta(uploadId: string, fresh = false): Promise<Meta | null> {
    const known = fresh ? undefined : this.metas.get(uploadId)
    if (known) return known
    const bytes = await this.bucket.bytes(metaName(uploadId), 0, 4096)
    if (!bytes) return null
    const meta = JSON.parse(new TextDecoder().decode(bytes)) as Meta
    this.metas.set(uploadId, meta)
    return meta
  }

  async write(uploadId: string, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number, options: WriteOptions = {}) {
    const meta = options.whole ? this.wholeMeta(uploadId) : await (this.beginning.get(uploadId) ?? this.meta(uploadId))
    if (!meta) throw new Error(`no staging for upload ${uploadId}`)
    const partBytes = meta.partBytes
    if (options.append && offset > 0 && (offset % partBytes !== 0 || this.withPieces.has(uploadId))) await this.settleBefore(uploadId, meta, offset)
    const boundaryAfter = (at: number) => (Math.floor(at / partBytes) + 1) * partBytes
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(partBytes, maxBytes)))
    let start = offset
    let filled = 0
    let received = 0
    const touched = new Set<number>()
    const flush = async () => {
      const part = await this.flush(uploadId, meta, start, buffer.subarray(0, filled), options.whole === true && start === 0 && received === filled)
      if (part !== null) touched.add(part)
      start += filled
      filled = 0
    }
    try {
      for await (const piece of body) {
        if (received + piece.length > maxBytes) throw new DomainError('invalid', `The data is longer than the ${maxBytes} bytes expected`)
        received += piece.length
        noteBytesReceived(piece.length)
        for (let from = 0; from < piece.length; ) {
          const take = Math.min(boundaryAfter(start) - (start + filled), piece.length - from)
          buffer.set(piece.subarray(from, from + take), filled)
          filled += take
          from += take
          if (start + filled === boundaryAfter(start)) await flush()
        }
      }
      if (filled > 0) await flush()
    } catch (error) {
      // What arrived before the body broke off is kept as a piece, if the store takes it.
      if (filled > 0 && !(error instanceof DomainError && error.kind === 'invalid')) await flush().catch(() => {})
      throw new InterruptedWrite(start - offset, error)
    }
    // An append's bytes may still be refused by the engine (a tus checksum): its pieces are
    // folded into a part only once a later append (or the seal) shows they were accepted.
    if (!options.append) {
      for (const part of touched) await this.assembleIfCovered(uploadId, meta, part).catch((error) => this.log('part not assembled yet; sealing does it', { uploadId, part, error: String(error) }))
    } else if (touched.size > 0) this.withPieces.add(uploadId)
    return received
  }

  private wholeMeta(uploadId: string): Meta {
    const meta: Meta = { partBytes: partBytesFor(this.wholeLayout), multipartId: null, totalBytes: null }
    this.metas.set(uploadId, meta)
    this.sealed.delete(uploadId)
    return meta
  }

  /**
   * Stores bytes [start, start + length) durably: as their part when they are one, else as a
   * piece (returning the part it belongs to, to be assembled when covered). A whole write that
   * ends within its first part is the object itself: sealed already.
   */
  private async flush(uploadId: string, meta: Meta, start: number, bytes: Uint8Array, wholeSmall: boolean): Promise<number | null> {
    const end = start + bytes.length
    const part = Math.floor(start / meta.partBytes)
    if (wholeSmall && bytes.length < meta.partBytes) {
      await this.bucket.put(objectName(uploadId), bytes)
      this.sealed.add(uploadId)
      return null
    }
    const isPart = start % meta.partBytes === 0 && (bytes.length === meta.partBytes || end === meta.totalBytes)
    if (isPart) {
      await this.uploadPart(uploadId, meta, part, bytes)
      return null
    }
    await this.bucket.put(pieceName(uploadId, start, end), bytes)
    return part
  }

  private async uploadPart(uploadId: string, meta: Meta, part: number, bytes: Uint8Array): Promise<StoredPart> {
    meta.multipartId ??= await this.bucket.createMultipart(objectName(uploadId))
    return this.bucket.uploadPart(objectName(uploadId), meta.multipartId, part + 1, bytes)
  }

  private async pieces(uploadId: string): Promise<Piece[]> {
    const found: Piece[] = []
    for (const { name } of await this.bucket.list(piecesUnder(uploadId))) {
      const range = pieceRange(name)
      if (range) found.push({ name, ...range })
    }
    return found
  }

  /**
   * Before an append at `offset` (where the engine's accepted bytes end): pieces at or past it
   * are what a refused append left, and go; parts that end at or before it, which pieces cover,
   * are assembled from them (their bytes are accepted now).
   */
  private async settleBefore(uploadId: string, meta: Meta, offset: number) {
    const pieces = await this.pieces(uploadId)
    const stale = pieces.filter((piece) => piece.start >= offset)
    await this.dropPieces(stale)
    const kept = pieces.filter((piece) => piece.start < offset)
    const parts = new Set(kept.filter((piece) => Math.floor(piece.start / meta.partBytes + 1) * meta.partBytes <= offset).map((piece) => Math.floor(piece.start / meta.partBytes)))
    for (const part of parts) await this.assembleIfCovered(uploadId, meta, part, kept)
    if (kept.every((piece) => parts.has(Math.floor(piece.start / meta.partBytes)))) this.withPieces.delete(uploadId)
  }

  /** The bytes of part `part`, from pieces, when they cover all of it and it is not the last. */
  private async assembleIfCovered(uploadId: string, meta: Meta, part: number, listed?: Piece[]) {
    const start = part * meta.partBytes
    const end = meta.totalBytes === null ? start + meta.partBytes : Math.min(start + meta.partBytes, meta.totalBytes)
    const pieces = listed ?? (await this.pieces(uploadId))
    const bytes = await this.gather(pieces, start, end)
    if (!bytes) return
    await this.uploadPart(uploadId, meta, part, bytes)
    await this.dropPieces(pieces.filter((piece) => piece.start >= start && piece.end <= end))
  }

  /** Bytes [start, end) read from pieces, or null when they do not cover it (or one vanished meanwhile). */
  private async gather(pieces: Piece[], start: number, end: number): Promise<Uint8Array | null> {
    const sorted = pieces.filter((piece) => piece.end > start && piece.start < end).sort((a, b) => a.start - b.start || b.end - a.end)
    const plan: { piece: Piece; from: number; to: number }[] = []
    let at = start
    for (const piece of sorted) {
      if (at >= end) break
      if (piece.start > at) return null
      if (piece.end <= at) continue
      const to = Math.min(piece.end, end)
      plan.push({ piece, from: at, to })
      at = to
    }
    if (at < end) return null
    const bytes = Buffer.allocUnsafe(end - start)
    for (const { piece, from, to } of plan) {
      const got = await this.bucket.bytes(piece.name, from - piece.start, to - piece.start)
      if (!got || got.length !== to - from) return null
      bytes.set(got, from - start)
    }
    return bytes
  }

  private async dropPieces(pieces: Piece[]) {
    for (const piece of pieces) await this.bucket.delete(piece.name)
  }

  async seal(uploadId: string, totalBytes: number) {
    if (this.sealed.has(uploadId)) return
    const done = await this.bucket.head(objectName(uploadId))
    if (!done) await this.complete(uploadId, totalBytes)
    else if (done.sizeBytes !== totalBytes) throw new DomainError('failed', `Staged file has ${done.sizeBytes} bytes; expected ${totalBytes}`)
    await this.dropPieces(await this.pieces(uploadId))
    this.sealed.add(uploadId)
  }

  /** Makes every part that is not stored yet from its pieces, and completes the multipart upload. */
  private async complete(uploadId: string, totalBytes: number) {
    const meta = await this.meta(uploadId)
    const missing = () => new DomainError('failed', 'The staged bytes of this upload are missing')
    if (!meta) throw missing()
    const stored = new Map<number, StoredPart>()
    for (const part of (meta.multipartId && (await this.bucket.parts(objectName(uploadId), meta.multipartId))) || []) stored.set(part.number, part)
    const pieces = await this.pieces(uploadId)
    const count = Math.max(1, Math.ceil(totalBytes / meta.partBytes))
    if (count === 1 && stored.get(1)?.sizeBytes !== totalBytes) {
      // One part's worth: a plain object, no multipart upload needed.
      const bytes = await this.gather(pieces, 0, totalBytes)
      if (!bytes) throw missing()
      await this.bucket.put(objectName(uploadId), bytes)
      if (meta.multipartId) await this.bucket.abortMultipart(objectName(uploadId), meta.multipartId)
      return
    }
    const parts: StoredPart[] = []
    for (let part = 0; part < count; part++) {
      const start = part * meta.partBytes
      const end = Math.min(start + meta.partBytes, totalBytes)
      const have = stored.get(part + 1)
      // Pieces that cover a part are newer than a stored one: a refused append may have sent
      // the part whole before the accepted bytes came as pieces.
      const bytes = await this.gather(pieces, start, end)
      if (bytes) parts.push(await this.uploadPart(uploadId, meta, part, bytes))
      else if (have?.sizeBytes === end - start) parts.push(have)
      else throw missing()
    }
    await this.bucket.completeMultipart(objectName(uploadId), meta.multipartId!, parts)
  }

  async *read(uploadId: string, start: number, end: number): AsyncGenerator<Uint8Array> {
    if (end <= start && (await this.size(uploadId)) !== null) return
    const stream = await this.bucket.get(objectName(uploadId), start, end)
    if (!stream) throw new Error(`staging of ${uploadId} is not sealed or not there`)
    let at = start
    for await (const piece of stream as unknown as AsyncIterable<Uint8Array>) {
      at += piece.length
      yield piece
    }
    if (at !== end) throw new Error(`staging of ${uploadId} ends at ${at}, before ${end}`)
  }

  async size(uploadId: string): Promise<number | null> {
    const object = await this.bucket.head(objectName(uploadId))
    if (object) return object.sizeBytes
    const meta = await this.meta(uploadId)
    if (!meta) return null
    let end = 0
    if (meta.multipartId) {
      const parts = await this.bucket.parts(objectName(uploadId), meta.multipartId)
      if (!parts) {
        // Removed by another instance meanwhile (or sealed: then the object is there now).
        this.forget(uploadId)
        return (await this.bucket.head(objectName(uploadId)))?.sizeBytes ?? ((await this.meta(uploadId, true)) ? 0 : null)
      }
      for (const part of parts) end = Math.max(end, (part.number - 1) * meta.partBytes + part.sizeBytes)
    }
    for (const piece of await this.pieces(uploadId)) end = Math.max(end, piece.end)
    return end
  }

  async list(): Promise<string[]> {
    const ids = new Set((await this.bucket.folders(STAGING)).filter(isUploadId))
    // A multipart upload whose meta was never written (a crash between the two, a whole write).
    for (const { name } of await this.bucket.multiparts(OBJECTS)) {
      const id = name.slice(OBJECTS.length)
      if (isUploadId(id)) ids.add(id)
    }
    return [...ids]
  }

  /**
   * Aborts the multipart upload, deletes the pieces, and the object unless a blob points at it
   * (the blob store adopted it); the meta goes last, so that a remove cut short is listed still.
   */
  async remove(uploadId: string) {
    await this.beginning.get(uploadId)?.catch(() => {})
    const meta = await this.meta(uploadId, true)
    for (const upload of await this.bucket.multiparts(objectName(uploadId))) {
      if (upload.name === objectName(uploadId)) await this.bucket.abortMultipart(upload.name, upload.multipartId)
    }
    await this.dropPieces(await this.pieces(uploadId))
    if (await this.bucket.head(objectName(uploadId))) {
      const adopted = meta?.adoptedAs ? (await this.bucket.head(blobName(meta.adoptedAs)))?.metadata[TARGET] === objectName(uploadId) : false
      if (!adopted) await this.bucket.delete(objectName(uploadId))
    }
    await this.bucket.delete(metaName(uploadId))
    this.forget(uploadId)
  }

  /** Records, before a blob points at this upload's object, that it may: `remove` then keeps it. */
  async markAdopted(uploadId: string, sha256: string) {
    const meta = (await this.meta(uploadId)) ?? { partBytes: 0, multipartId: null, totalBytes: null }
    const marked = { ...meta, adoptedAs: sha256 }
    await this.bucket.put(metaName(uploadId), encode(marked))
    this.metas.set(uploadId, marked)
  }

  private forget(uploadId: string) {
    this.metas.delete(uploadId)
    this.sealed.delete(uploadId)
    this.withPieces.delete(uploadId)
  }
}

const encode = (meta: Meta) => new TextEncoder().encode(JSON.stringify(meta))
