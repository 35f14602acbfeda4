import { DomainError } from '../core/errors.ts'
import { linkIdOf, type Admission, type Upload } from '../core/records.ts'
import { withLock, type Lock } from '../ports/locker.ts'
import { InterruptedWrite } from '../ports/staging.ts'
import { diskError, drain, limitBytes, unwrap } from './bodies.ts'
import { cleanFileName, mimeTypeOf } from './file-names.ts'
import { Finalization } from './finalize.ts'
import { blobKey, chunkKey, EngineParts, FINALIZATION_LEASE_MS, newUploadId, releaseAll, tryLockAll, uploadKey } from './parts.ts'
import type { ChunkedUploadSpec, EngineDeps, StreamUploadSpec, UploadSpec } from './types.ts'
import { WholeFiles } from './whole-files.ts'

/**
 * An empty upload with more chunks than this is not discarded at once when a request is refused
 * (each chunk's lock would be asked for): it expires like any idle upload.
 */
const MAX_DISCARD_LOCKS = 1024

/** A final tus upload up to this size is answered once it is a file; a larger one at once, assembled in the background. */
const CONCAT_WAIT_BYTES = 16 * 1024 * 1024

export { FINALIZATION_LEASE_MS }

/**
 * A whole file in one request body (a plain multipart file part): written in one go, nothing
 * to resume, and finalised by `complete` with the other files of its request.
 */
const isWholeBody = (upload: Upload) => upload.protocol === 'plain' && upload.chunkCount === 0

/**
 * The upload engine: protocol-neutral. Adapters (protocols/dropzone.ts, protocols/tus/) turn
 * requests into calls here; bytes go to the staging area and, once complete, into the blob store.
 *
 * The API: `begin` (find-or-create by client key; chunked with a layout, or streamed with its
 * length now or later, or a whole file in one body), `write` (bytes at an offset: a chunk, a tus
 * PATCH, or a whole file's body), `declareLength`, `complete` (a whole file streamed in one body
 * becomes a file), `storeWhole` (whole files in memory, in one step: all or none),
 * `concatenate` (tus partials into a final upload: here, as it reads the parts' staged bytes and
 * holds their locks), `cancel`, `find`/`status`. Protocol rules stay in the adapters (Dropzone's
 * chunk arithmetic, tus's checksums); errors are DomainErrors.
 *
 * Invariants:
 * - a chunk is recorded only after its bytes are durable, and counted once;
 * - exactly one finalisation runs per upload: a conditional state change elects it and gives it
 *   a lease (owner, expiry) that it renews while it runs; only the lease's owner records the file,
 *   and another instance takes the finalisation over only once the lease has lapsed or been let go;
 * - a blob's refCount equals the number of files that reference it.
 */
export class UploadEngine extends EngineParts {
  private readonly finalization: Finalization
  private readonly wholeFiles: WholeFiles
  /** Final uploads whose partials this instance is copying in (see `concatenate`). */
  private readonly assemblies = new Map<string, Promise<Upload>>()

  constructor(deps: EngineDeps) {
    super(deps)
    this.finalization = new Finalization(this)
    this.wholeFiles = new WholeFiles(this)
  }

  /**
   * Begins an upload, or (for a client key seen before) finds the one it began and checks the
   * spec agrees with it. With a layout (`chunkBytes`, `chunkCount`) its bytes come as whole chunks
   * in any order; without, in order from offset 0, its length maybe declared later.
   */
  begin(spec: UploadSpec, admit?: Admission): Promise<Upload> {
    return 'chunkBytes' in spec ? this.openChunked(spec, admit) : this.createStream(spec, admit)
  }

  /**
   * Writes `body` at `offset`: one whole chunk of a chunked upload (`offset` at a chunk's start),
   * or the next bytes of a streamed one (`offset` where it stands). `verify` may refuse the bytes
   * once read (a checksum), and none of them count then. Resolves once they are durable and recorded (and, if
   * they were the last ones missing, once the file is finalised) to the upload as it stands.
   */
  async write(upload: Upload, offset: number, body: AsyncIterable<Uint8Array>, verify?: (written: number) => void): Promise<Upload> {
    if (upload.chunkCount === 0) return this.appendAt(upload, offset, body, verify)
    if (!Number.isSafeInteger(offset) || offset % upload.chunkBytes !== 0) {
      throw new DomainError('invalid', `Offset ${offset} is not the start of a ${upload.chunkBytes}-byte chunk`)
    }
    return this.receiveChunk(upload, offset / upload.chunkBytes, body, verify)
  }

  /** Whole files in memory, stored all or none (see WholeFiles). */
  storeWhole(...args: Parameters<WholeFiles['storeWhole']>) {
    return this.wholeFiles.storeWhole(...args)
  }

  /**
   * Finalises a whole file streamed in one body (see `write`): it waited for this, so that the
   * files of one request are stored all or none (the request cancels the others if one is refused).
   */
  async complete(upload: Upload): Promise<Upload> {
    const current = await this.current(upload.id)
    if (!isWholeBody(current) || current.state !== 'receiving' || current.lengthDeferred) throw this.notReceiving(current)
    return this.finalize(upload.id)
  }

  /** Runs the one finalisation of an upload whose chunks are all here; others wait for it. */
  finalize(uploadId: string, claimed = false) {
    return this.finalization.finalize(uploadId, claimed)
  }

  /** Takes over the finalisations nobody holds a live lease on (housekeeping, start-up). */
  async resumeFinalizations(now = this.deps.clock()) {
    for (const upload of await this.store.uploads.inState('receiving')) this.resumeAssembly(upload)
    return this.finalization.resumeFinalizations(now)
  }

  /** Checks a chunked upload's declared size and layout against the server's limits and itself. */
  checkLayout(spec: ChunkedUploadSpec) {
    const { config } = this.deps
    if (spec.totalBytes > config.maxFileBytes) {
      throw new DomainError('too-large', `The file is ${spec.totalBytes} bytes; the limit is ${config.maxFileBytes} bytes`)
    }
    if (spec.chunkBytes > config.maxChunkBytes) {
      throw new DomainError('too-large', `Chunks of ${spec.chunkBytes} bytes are too large; the limit is ${config.maxChunkBytes} bytes`)
    }
    // Every chunk but the last is full, and the last holds at least one byte (unless the file is empty).
    const covered = spec.chunkBytes >= 1 && spec.chunkCount >= 1 && spec.totalBytes <= spec.chunkCount * spec.chunkBytes
    if (!covered || (spec.totalBytes > 0 && spec.totalBytes <= (spec.chunkCount - 1) * spec.chunkBytes)) {
      throw new DomainError('invalid', `${spec.chunkCount} chunks of ${spec.chunkBytes} bytes do not hold ${spec.totalBytes} bytes`)
    }
  }

  /** Finds the upload a chunk belongs to, creating it on its first chunk, and checks the chunk agrees with it. */
  private async openChunked(spec: ChunkedUploadSpec, admit?: Admission): Promise<Upload> {
    this.checkLayout(spec)
    const fileName = cleanFileName(spec.fileName)
    const existing = await this.store.uploads.findByClientKey(spec.owner, spec.clientKey)
    if (existing) {
      await this.checkSameUpload(existing, spec, fileName)
      return existing
    }
    await this.requireFolder(spec.folderId)
    const admitted = await this.roomFor(spec.totalBytes, spec.owner, admit)
    const now = this.deps.clock()
    const { upload, created } = await this.store.uploads.create({
      id: newUploadId(),
      protocol: spec.protocol,
      owner: spec.owner,
      clientKey: spec.clientKey,
      folderId: spec.folderId,
      fileName,
      mimeType: mimeTypeOf(fileName),
      totalBytes: spec.totalBytes,
      chunkBytes: spec.chunkBytes,
      chunkCount: spec.chunkCount,
      state: 'receiving',
      clientAddress: spec.clientAddress,
      createdAt: now,
      updatedAt: now,
    }, admitted)
    if (!created) await this.checkSameUpload(upload, spec, fileName)
    return upload
  }

  /**
   * Refuses, before its bytes are read, an upload (a chunk that would start one, or a whole file)
   * that its own fields or `admit` (a drop link's limits) forbid; one without a length, for what
   * it is whatever its size. The checks that count run again when it is recorded.
   */
  async precheck(spec: UploadSpec, admit?: Admission) {
    const chunked = 'chunkBytes' in spec
    if (chunked) {
      this.checkLayout(spec)
      if (await this.store.uploads.findByClientKey(spec.owner, spec.clientKey)) return
    }
    await this.requireFolder(spec.folderId)
    const totalBytes = chunked ? spec.totalBytes : (spec.totalBytes ?? spec.atMostBytes ?? 0)
    await this.admits(admit, { fileName: cleanFileName(spec.fileName), totalBytes })
  }

  private async checkSameUpload(upload: Upload, spec: ChunkedUploadSpec, fileName: string) {
    const differs = (what: string, theirs: unknown, ours: unknown) => {
      if (theirs !== ours) throw new DomainError('invalid', `This chunk says ${what} is ${theirs}, but the upload started with ${ours}`)
    }
    differs('the total file size', spec.totalBytes, upload.totalBytes)
    differs('the chunk size', spec.chunkBytes, upload.chunkBytes)
    differs('the chunk count', spec.chunkCount, upload.chunkCount)
    // A folder purged since the upload began no longer exists: the upload goes on into the home folder.
    if (!spec.keepStartedFolder && (await this.store.library.folder(spec.folderId))) differs('the folder', spec.folderId, upload.folderId)
    differs('the file name', fileName, upload.fileName)
  }

  /**
   * Receives chunk `index` of a chunked upload from `body`. Resolves once its bytes are durable and
   * recorded (and, if it was the last one missing, once the file is finalised).
   */
  private async receiveChunk(upload: Upload, index: number, body: AsyncIterable<Uint8Array>, verify?: (written: number) => void): Promise<Upload> {
    if (!Number.isSafeInteger(index) || index < 0 || index >= upload.chunkCount) {
      throw new DomainError('invalid', `Chunk index ${index} is outside 0..${upload.chunkCount - 1}`)
    }
    const offset = index * upload.chunkBytes
    const expected = Math.min(upload.chunkBytes, upload.totalBytes - offset)
    const current = await this.store.uploads.find(upload.id)
    // Discarded meanwhile by a refused request that created it (see discardIfEmpty).
    if (!current) throw new DomainError('not-found', 'No such upload; start it again')
    const done = current.state === 'finalizing' || current.state === 'complete'
    if (!done && current.state !== 'receiving') throw this.notReceiving(current)
    if (done || (await this.store.uploads.hasChunk(upload.id, index))) return this.acknowledgeHeld(current, body)
    const lock = await this.lockChunk(upload.id, index)
    // Recorded by a request that held the lock until just now.
    if (await this.store.uploads.hasChunk(upload.id, index)) {
      await this.unlockChunk(upload.id, lock)
      return this.acknowledgeHeld(current, body)
    }
    let written = 0
    let recorded: Awaited<ReturnType<typeof this.store.uploads.recordChunk>>
    // The chunk that continues the running hash is hashed on its way to disk.
    const tap = this.hashes.tap(upload.id, offset, this.whileLinkOpen(upload.owner, body))
    try {
      await this.space.forChunk(expected)
      // A file in one chunk is staged by its one write, and adopted into the store before it is acknowledged.
      const whole = upload.chunkCount === 1
      // The upload's staging must be durable before any record of bytes in it is committed
      // (another request's WAL sync may make that record durable at any moment): begun while the
      // bytes are written.
      const named = whole ? undefined : this.deps.staging.begin(upload.id, { totalBytes: upload.totalBytes, maxBytes: upload.totalBytes, chunkBytes: upload.chunkBytes })
      // A chunk is all or nothing: bytes of an interrupted chunk are simply not recorded.
      const writing = this.track(upload.id, this.deps.staging.write(upload.id, offset, tap.body, expected, { whole })).catch((error) => {
        throw diskError(unwrap(error))
      })
      // Both settle before anything else: a failed sync must not free this chunk for a retry
      // (or settle its hash) while its bytes are still being written.
      const [wrote, synced] = await Promise.allSettled([writing, named])
      if (wrote.status === 'rejected') throw wrote.reason
      if (synced.status === 'rejected') throw synced.reason
      written = wrote.value
      if (written !== expected) {
        throw new DomainError('invalid', `Chunk ${index} has ${written} bytes; expected ${expected}`)
      }
      verify?.(written)
      // Tracked like the write, so a stopping server commits it before the database closes.
      recorded = await this.track(upload.id, this.store.uploads.recordChunk(upload.id, index, written, this.deps.clock(), this.lease()))
      // Discarded (see discardIfEmpty) before this chunk took its lock: its bytes are nobody's.
      if (!recorded.upload) {
        await this.removeStaged(upload.id)
        throw new DomainError('not-found', 'No such upload; start it again')
      }
    } catch (error) {
      tap.settle(offset)
      throw error
    } finally {
      await this.unlockChunk(upload.id, lock)
    }
    tap.settle(offset + written)
    this.progress.note(upload.id, written)
    const firstMissing = await this.store.uploads.firstMissingChunk(upload.id, this.hashes.nextChunk(upload.id), upload.chunkCount)
    this.hashes.advance(
      upload.id,
      this.hashes.contiguousPrefix(upload.id, upload.chunkBytes, upload.totalBytes, (i) => i < firstMissing),
    )
    // A duplicate that finished writing after another request began finalising waits for it too.
    if (recorded.claimed || recorded.upload?.state === 'finalizing') await this.finalize(upload.id, recorded.claimed)
    else {
      await this.acknowledgeable(upload.id)
      // The last chunk may have landed meanwhile, and its request claimed the finalisation (here
      // or at another instance) without having started it yet: answer with what it made.
      const now = await this.current(upload.id)
      if (now.state !== 'finalizing') return now
      await this.finalization.awaitFinalization(upload.id)
    }
    return this.current(upload.id)
  }

  /** A retry of bytes we already hold: acknowledged without touching them again. */
  private async acknowledgeHeld(read: Upload, body: AsyncIterable<Uint8Array>): Promise<Upload> {
    await drain(body)
    // Read again: the request that recorded these bytes may have claimed the finalisation since.
    const current = await this.current(read.id)
    const done = current.state === 'finalizing' || current.state === 'complete'
    if (current.state === 'finalizing') await this.finalization.awaitFinalization(current.id)
    // Recorded by another request, maybe not yet on disk.
    if (done) await this.store.durable()
    else await this.acknowledgeable(current.id)
    return this.current(current.id)
  }

  /** The upload as it stands: gone meanwhile only if a refused request discarded it (see discardIfEmpty). */
  private async current(uploadId: string): Promise<Upload> {
    const upload = await this.store.uploads.find(uploadId)
    if (!upload) throw new DomainError('not-found', 'No such upload')
    return upload
  }

  /**
   * Two requests writing one chunk at once could leave other bytes than the ones recorded (and
   * hashed): the second is refused (423), retries, and then finds the chunk held.
   */
  private async lockChunk(uploadId: string, index: number): Promise<Lock> {
    const lock = await this.deps.locker.tryLock(chunkKey(uploadId, index))
    if (lock) return lock
    throw new DomainError('busy', `Chunk ${index} is being received by another request; retry shortly`)
  }

  private async unlockChunk(_uploadId: string, lock: Lock) {
    await lock.release()
  }

  /**
   * Runs `work` as the only request appending to a streamed upload (a tus PATCH): another one at
   * the same time is refused (423), never interleaved.
   */
  async appendingAlone<T>(uploadId: string, work: () => Promise<T>): Promise<T> {
    const lock = await this.deps.locker.tryLock(uploadKey(uploadId))
    if (!lock) throw new DomainError('busy', 'Another request is writing to this upload; try again shortly')
    try {
      return await work()
    } finally {
      await lock.release()
    }
  }

  /**
   * Starts a streamed upload (bytes arrive in order, from offset 0); its length may come later.
   * Without a length, its row's `totalBytes` holds the most it may come to (0: the server's limit).
   */
  private async createStream(spec: StreamUploadSpec, admit?: Admission): Promise<Upload> {
    const { config } = this.deps
    if (spec.totalBytes !== null && spec.totalBytes > config.maxFileBytes) {
      throw new DomainError('too-large', `The file is ${spec.totalBytes} bytes; the limit is ${config.maxFileBytes} bytes`)
    }
    const fileName = spec.concat === 'partial' && spec.fileName === '' ? 'partial' : cleanFileName(spec.fileName)
    await this.requireFolder(spec.folderId)
    const bound = spec.totalBytes ?? (spec.atMostBytes === undefined ? null : Math.min(spec.atMostBytes, config.maxFileBytes))
    if (bound !== null) admit = await this.roomFor(bound, spec.owner, admit)
    const now = this.deps.clock()
    const { upload } = await this.store.uploads.create({
      id: newUploadId(),
      protocol: spec.protocol,
      owner: spec.owner,
      folderId: spec.folderId,
      fileName,
      mimeType: mimeTypeOf(fileName),
      totalBytes: bound ?? 0,
      lengthDeferred: spec.totalBytes === null,
      chunkBytes: 0,
      chunkCount: 0,
      concat: spec.concat ?? null,
      partIds: spec.partIds ?? null,
      metadata: spec.metadata ?? null,
      state: 'receiving',
      clientAddress: spec.clientAddress,
      createdAt: now,
      updatedAt: now,
    }, admit)
    // A whole file's one write begins its staging: nothing about it is acknowledged before it is stored.
    if (isWholeBody(upload)) return upload
    await this.deps.staging.begin(upload.id, { totalBytes: spec.totalBytes, maxBytes: spec.totalBytes ?? this.deps.config.maxFileBytes })
    if (spec.totalBytes === 0) await this.completeStream(upload.id)
    // The client may send its bytes much later: the new staging file must outlive a crash.
    return this.acknowledgeStream(upload.id)
  }

  /** Fixes the length of a streamed upload created without one. */
  async declareLength(upload: Upload, totalBytes: number): Promise<Upload> {
    if (!upload.lengthDeferred) {
      if (totalBytes !== upload.totalBytes) throw new DomainError('invalid', `The upload's length is already ${upload.totalBytes}`)
      return upload
    }
    if (totalBytes > this.deps.config.maxFileBytes) {
      throw new DomainError('too-large', `The file is ${totalBytes} bytes; the limit is ${this.deps.config.maxFileBytes} bytes`)
    }
    if (totalBytes < upload.receivedBytes) throw new DomainError('invalid', `The length ${totalBytes} is less than the ${upload.receivedBytes} bytes received`)
    await this.space.forNewUpload(totalBytes - upload.receivedBytes, upload.owner)
    await this.store.uploads.declareLength(upload.id, totalBytes, this.deps.clock())
    await this.store.durable()
    return (await this.store.uploads.find(upload.id))!
  }

  /**
   * Appends `body` to a streamed upload at `offset`, which must be where it stands. Every byte
   * that reaches the disk counts, even when the body breaks off; unless `verify` rejects the
   * bytes, in which case none of this body counts. A whole file's body (see isWholeBody) is all
   * of it: the upload is as long as the body, waits for `complete`, and fails if the body does.
   */
  private async appendAt(
    upload: Upload,
    offset: number,
    body: AsyncIterable<Uint8Array>,
    verify?: (written: number) => void,
  ): Promise<Upload> {
    const current = (await this.store.uploads.find(upload.id))!
    const allHere = (current.state === 'complete' || current.state === 'finalizing') && offset === current.totalBytes
    if (current.state !== 'receiving' && !allHere) throw this.notReceiving(current)
    if (offset !== current.receivedBytes) {
      throw new DomainError('conflict', `The upload is at offset ${current.receivedBytes}, not ${offset}`)
    }
    if (allHere) {
      await drain(body)
      return this.finalization.resumeFinalization(upload.id)
    }
    const whole = isWholeBody(current)
    const limit = (current.lengthDeferred ? current.totalBytes || this.deps.config.maxFileBytes : current.totalBytes) - offset
    await this.space.forChunk(0)
    const open = this.whileLinkOpen(upload.owner, body)
    const tap = this.hashes.tap(upload.id, offset, whole ? limitBytes(open, limit) : open)
    let written: number
    try {
      written = await this.track(upload.id, this.deps.staging.write(upload.id, offset, tap.body, limit, { whole, append: !whole }))
      verify?.(written)
    } catch (error) {
      if (whole) {
        tap.settle(offset)
        // Nothing can resume it: its bytes are of no use to anyone.
        const cause = unwrap(error)
        await this.fail(upload.id, cause instanceof DomainError ? cause.message : 'The upload was interrupted')
        throw diskError(cause)
      }
      const kept = error instanceof InterruptedWrite && !verify && !(error.cause instanceof DomainError) ? error.durableBytes : 0
      const recorded = kept > 0 && (await this.store.uploads.recordBytes(upload.id, offset, kept, this.deps.clock()))
      tap.settle(recorded ? offset + kept : offset)
      if (recorded) {
        this.hashes.advance(upload.id, offset + kept)
        await this.acknowledgeable(upload.id)
        // Cut off after its last byte: the upload is whole, whatever became of the connection.
        if (this.holdsEveryByte((await this.store.uploads.find(upload.id))!)) await this.completeStream(upload.id).catch(() => {})
      }
      throw diskError(unwrap(error))
    }
    const end = await this.store.uploads.recordBytes(upload.id, offset, written, this.deps.clock()) ? offset + written : offset
    tap.settle(end)
    this.hashes.advance(upload.id, end)
    this.progress.note(upload.id, written)
    if (whole) {
      await this.store.uploads.declareLength(upload.id, end, this.deps.clock())
      return this.current(upload.id)
    }
    if (this.holdsEveryByte((await this.store.uploads.find(upload.id))!)) await this.completeStream(upload.id)
    return this.acknowledgeStream(upload.id)
  }

  /**
   * Assembles finished partial uploads, in order, into one new upload, which it answers at once
   * (nothing received yet): the bytes are copied in the background (see `assemble`), its
   * offset growing as they are recorded, and it is finalised once whole. A final upload of at
   * most CONCAT_WAIT_BYTES is answered once it is a file, as quickly as a copy would be.
   */
  async concatenate(spec: Omit<StreamUploadSpec, 'totalBytes' | 'concat' | 'partIds'>, partIds: string[], admit?: Admission): Promise<Upload> {
    if (partIds.length === 0) throw new DomainError('invalid', 'A final upload needs at least one partial upload')
    const parts: Upload[] = []
    for (const id of partIds) {
      const part = await this.store.uploads.find(id)
      if (!part || part.owner !== spec.owner || part.concat !== 'partial') throw new DomainError('invalid', `${id} is not a partial upload of yours`)
      if (part.state !== 'complete') throw new DomainError('invalid', `Partial upload ${id} is not complete`)
      parts.push(part)
    }
    // Held until the parts are used up, on every instance: two final uploads never share a part,
    // and a part is neither cancelled nor expired while it is read.
    const locks = await tryLockAll(this.deps.locker, partIds.map(uploadKey))
    if (!locks) throw new DomainError('busy', 'A partial upload is being used by another request; try again shortly')
    let upload: Upload
    try {
      const totalBytes = parts.reduce((sum, part) => sum + part.totalBytes, 0)
      upload = await this.createStream({ ...spec, totalBytes: null, concat: 'final', partIds: JSON.stringify(partIds) }, admit)
      upload = await this.declareLength(upload, totalBytes)
      // The final upload's own lock says its assembly runs (see resumeAssembly); it is brand new, so free.
      locks.push((await this.deps.locker.tryLock(uploadKey(upload.id)))!)
    } catch (error) {
      await releaseAll(locks)
      throw error
    }
    const assembly = this.startAssembly(upload.id, locks)
    if (upload.totalBytes <= CONCAT_WAIT_BYTES) return assembly
    assembly.catch(() => {})
    return upload
  }

  /**
   * A final upload whose assembly stopped (its instance stopped or died, or a passing fault
   * interrupted it) and that nobody assembles now (its lock is free): this instance carries on
   * from the upload's recorded offset. Called at start-up, by housekeeping and by look-ups.
   */
  private resumeAssembly(upload: Upload) {
    if (upload.concat !== 'final' || upload.state !== 'receiving' || upload.lengthDeferred || upload.receivedBytes >= upload.totalBytes) return
    if (this.assemblies.has(upload.id)) return
    const parts = JSON.parse(upload.partIds ?? '[]') as string[]
    const resume = async () => {
      const locks = await tryLockAll(this.deps.locker, [upload.id, ...parts].map(uploadKey))
      if (!locks) return
      if (this.assemblies.has(upload.id)) return releaseAll(locks)
      await this.startAssembly(upload.id, locks)
    }
    resume().catch(() => {})
  }

  private startAssembly(uploadId: string, locks: Lock[]): Promise<Upload> {
    const run = this.assemble(uploadId)
      .catch((error) => {
        this.deps.log('assembly of a final upload stopped', { uploadId, error: String(error) })
        throw error
      })
      .finally(async () => {
        this.assemblies.delete(uploadId)
        await releaseAll(locks)
      })
    this.assemblies.set(uploadId, run)
    return run
  }

  /**
   * Copies the final upload's partials into its staging, in order, from where it stands (each
   * byte recorded once durable, hashed on the way), finalises it, then uses the parts up. After a
   * stop it carries on from the recorded offset: acknowledged parts stay until the final is whole.
   */
  private async assemble(uploadId: string): Promise<Upload> {
    const upload = (await this.store.uploads.find(uploadId))!
    let start = 0
    for (const id of JSON.parse(upload.partIds ?? '[]') as string[]) {
      const part = await this.store.uploads.find(id)
      const row = (await this.store.uploads.find(uploadId))!
      if (row.state !== 'receiving') break
      if (!part || part.state !== 'complete' || (await this.deps.staging.size(id)) === null) {
        await this.fail(uploadId, 'A partial upload was already used')
        throw new DomainError('gone', `Partial upload ${id} was already used by another final upload`)
      }
      const end = start + part.totalBytes
      if (row.receivedBytes < end) {
        await this.deps.staging.seal(id, part.totalBytes)
        await this.appendAt(row, row.receivedBytes, this.deps.staging.read(id, row.receivedBytes - start, part.totalBytes))
      }
      start = end
    }
    // Partials holding no byte at all leave nothing to append: the upload is whole already.
    if (this.holdsEveryByte((await this.store.uploads.find(uploadId))!)) await this.completeStream(uploadId)
    // The final upload durably holds their bytes now: the parts are used up, rows and bytes.
    if ((await this.store.uploads.find(uploadId))!.state === 'complete') {
      for (const id of JSON.parse(upload.partIds ?? '[]') as string[]) {
        if (await this.store.uploads.transition(id, ['complete'], 'cancelled', this.deps.clock())) await this.store.uploads.remove(id)
        await this.removeStaged(id)
      }
    }
    return (await this.store.uploads.find(uploadId))!
  }

  /** A streamed upload, still receiving, whose every byte is recorded (a whole file's waits for `complete`). */
  private holdsEveryByte(upload: Upload): boolean {
    return upload.state === 'receiving' && upload.chunkCount === 0 && !upload.lengthDeferred && upload.receivedBytes === upload.totalBytes && !isWholeBody(upload)
  }

  /** All bytes of a streamed upload are here: a partial waits for its final, anything else becomes a file. */
  private async completeStream(uploadId: string) {
    const upload = (await this.store.uploads.find(uploadId))!
    if (upload.concat === 'partial') {
      await this.store.uploads.markPartialComplete(uploadId, this.deps.clock())
      this.hashes.forget(uploadId)
    }
    else await this.finalize(uploadId)
  }

  /** Bytes per second over the last few seconds; 0 when idle. */
  speed(uploadId: string): number {
    return this.progress.speed(uploadId)
  }

  /** The upload; looking one up also retries its finalisation if a passing fault held it up. */
  async find(uploadId: string) {
    const upload = await this.store.uploads.find(uploadId)
    if (upload) this.resumeAssembly(upload)
    return this.finalization.retriedInBackground(upload)
  }

  receivedChunks(uploadId: string): Promise<number[]> {
    return this.store.uploads.receivedChunks(uploadId)
  }

  async findByClientKey(owner: string, clientKey: string) {
    return this.finalization.retriedInBackground(await this.store.uploads.findByClientKey(owner, clientKey))
  }

  /**
   * Deletes for good what has been in the trash since before `olderThan` (all of it when
   * omitted), and removes from disk the blobs no file references any more.
   */
  async purgeTrash(olderThan?: number) {
    const result = await this.store.library.purgeTrash(olderThan)
    // Bytes are removed only once no committed row can come back after a power cut to need them.
    await this.store.durable()
    await this.cancelOrphanedLinkUploads(result.rehomedUploads)
    for (const sha256 of result.unusedBlobs) {
      await withLock(this.deps.locker, blobKey(sha256), async () => {
        // A finalisation may have claimed the same content again since the rows were deleted.
        if (!(await this.store.library.blobIsReferenced(sha256))) await this.deps.blobs.remove(sha256)
      })
    }
    return result
  }

  /**
   * Uploads whose folder was purged land in the home folder, except a drop link's: the link went with its folder, so its uploads are cancelled and their bytes freed.
   */
  private async cancelOrphanedLinkUploads(moved: { id: string; owner: string }[]) {
    for (const upload of moved) {
      if (linkIdOf(upload.owner) === null) continue
      if (await this.store.uploads.transition(upload.id, ['receiving'], 'cancelled', this.deps.clock(), 'The folder of this drop link was deleted')) {
        this.hashes.forget(upload.id)
        await this.store.durable()
        await this.removeStaged(upload.id)
      }
    }
  }

  /** Resolves once no write or finalisation is running (before the database is closed). */
  async settle() {
    while (this.writes.size > 0 || this.finalization.finalizing.size > 0 || this.assemblies.size > 0) {
      await Promise.allSettled([...this.assemblies.values(), ...this.finalization.finalizing.values(), ...[...this.writes.values()].flatMap((set) => [...set])])
      // Let the requests that awaited them run on to their end.
      await Bun.sleep(0)
    }
  }

  /**
   * Finishes what a stopped server left half-done. `sole`: nothing else can be running on this
   * data (the caller holds its lock), so every lease is stale, however recent; otherwise only
   * finalisations whose lease has lapsed are taken over.
   */
  async recover(options: { sole?: boolean } = {}) {
    // Staging files nothing needs any more: a finalisation or a cancellation cut short between
    // its commit and the unlink.
    for (const id of await this.deps.staging.list()) {
      const upload = await this.store.uploads.find(id)
      const needed = upload && (upload.state === 'receiving' || upload.state === 'finalizing' || (upload.state === 'complete' && upload.concat === 'partial'))
      if (!needed) await this.removeStaged(id)
    }
    // Nothing runs here yet: every finalisation a stop (or a passing fault) cut short whose lease
    // is stale starts again, under a lease won by one conditional update; so does the assembly of
    // a final upload that stopped.
    await this.resumeFinalizations(options.sole ? Number.MAX_SAFE_INTEGER : this.deps.clock())
    // A streamed upload whose last bytes were recorded by a request stopped before it claimed the
    // finalisation: its client sees every byte taken and sends nothing more.
    for (const upload of await this.store.uploads.inState('receiving')) {
      if (this.holdsEveryByte(upload)) await this.completeStream(upload.id).catch(() => {})
      // Its request is gone, unanswered, and nothing can resume it.
      else if (options.sole && isWholeBody(upload)) await this.fail(upload.id, 'The upload was interrupted')
    }
  }

  /** Forgets an upload that ended without a file. */
  async dismiss(uploadId: string) {
    if (!(await this.store.uploads.remove(uploadId))) throw new DomainError('conflict', 'Only failed, expired or cancelled uploads can be removed')
    await this.store.durable()
    await this.removeStaged(uploadId)
    this.progress.forget(uploadId)
  }

  /**
   * Forgets an upload that a refused request created and in which nothing is recorded: a refused
   * request leaves no row and no staging file. Kept while another request is writing to it.
   */
  async discardIfEmpty(uploadId: string) {
    const isEmpty = (upload: Upload | undefined) => upload !== undefined && upload.receivedBytes === 0 && upload.receivedChunks === 0
    const upload = await this.store.uploads.find(uploadId)
    if (!isEmpty(upload) || upload!.chunkCount > MAX_DISCARD_LOCKS) return
    // A request writing to it, here or on another instance, holds the lock of its chunk (or, for a
    // streamed upload, of the upload): while this holds them all, nothing can be recorded.
    const keys = upload!.chunkCount === 0 ? [uploadKey(uploadId)] : Array.from({ length: upload!.chunkCount }, (_, i) => chunkKey(uploadId, i))
    const locks = await tryLockAll(this.deps.locker, keys)
    if (!locks) return
    try {
      if (!isEmpty(await this.store.uploads.find(uploadId))) return
      if (!(await this.store.uploads.transition(uploadId, ['receiving'], 'cancelled', this.deps.clock()))) return
      await this.store.uploads.remove(uploadId)
      this.hashes.forget(uploadId)
      this.progress.forget(uploadId)
      await this.store.durable()
      await this.removeStaged(uploadId)
    } finally {
      await releaseAll(locks)
    }
  }

  /**
   * Runs `work` with the states an upload may be cancelled or expire from: receiving, or a
   * finished partial that no final upload is reading (on any instance: it holds the part's lock).
   */
  private async whileCancellable<T>(upload: Upload, work: (from: Upload['state'][]) => Promise<T>): Promise<T> {
    if (upload.concat !== 'partial') return work(['receiving'])
    const lock = await this.deps.locker.tryLock(uploadKey(upload.id))
    try {
      return await work(lock ? ['receiving', 'complete'] : ['receiving'])
    } finally {
      await lock?.release()
    }
  }

  async cancel(uploadId: string) {
    const upload = await this.store.uploads.find(uploadId)
    const cancelled = upload && (await this.whileCancellable(upload, (from) => this.store.uploads.transition(uploadId, from, 'cancelled', this.deps.clock())))
    if (!cancelled) return false
    this.hashes.forget(uploadId)
    await this.store.durable()
    await this.removeStaged(uploadId)
    return true
  }

  /** When an upload left idle from now on expires: drop links' uploads sooner (LINK_UPLOAD_TTL_HOURS). */
  expiresAt(upload: Upload): number {
    const { uploadTtlMs, linkUploadTtlMs } = this.deps.config
    return upload.updatedAt + (linkIdOf(upload.owner) === null ? uploadTtlMs : linkUploadTtlMs)
  }

  /** Expires uploads without activity for longer than the configured time and frees their bytes. */
  async expireStale(): Promise<number> {
    const now = this.deps.clock()
    let expired = 0
    const { uploadTtlMs, linkUploadTtlMs } = this.deps.config
    for (const upload of await this.store.uploads.stale(now - uploadTtlMs, now - linkUploadTtlMs)) {
      if (this.writes.get(upload.id)?.size) continue
      if (await this.whileCancellable(upload, (from) => this.store.uploads.transition(upload.id, from, 'expired', now))) {
        this.hashes.forget(upload.id)
        await this.store.durable()
        await this.removeStaged(upload.id)
        expired++
      }
    }
    return expired
  }

  /** Makes what a streamed upload's answer will say durable; resolves to the upload as it is. */
  private async acknowledgeStream(uploadId: string): Promise<Upload> {
    const latest = (await this.store.uploads.find(uploadId))!
    // Still arriving, or a finished tus partial (its staged bytes wait for their final upload).
    if (latest.state === 'receiving' || latest.concat === 'partial') await this.acknowledgeable(uploadId)
    else await this.store.durable()
    return (await this.store.uploads.find(uploadId))!
  }
}
