import { randomBytes } from 'node:crypto'
import { DomainError } from '../core/errors.ts'
import { bothAdmissions, linkIdOf, type Admission, type FileRecord, type Lease, type Upload } from '../core/records.ts'
import { requireLinkStillOpen } from '../links/access.ts'
import { withLock, withLocks, type Lock } from '../ports/locker.ts'
import { InterruptedWrite } from '../ports/staging.ts'
import { diskError, drain, limitBytes, MemoryBudget, once, unwrap, watched } from './bodies.ts'
import { cleanFileName, mimeTypeOf } from './file-names.ts'
import { FreeSpace } from './free-space.ts'
import { finalisationDeferred, isPassingFault } from './passing-fault.ts'
import { Progress } from './progress.ts'
import { RunningHashes } from './running-hash.ts'
import { fileInfo, type ChunkedUploadSpec, type EngineDeps, type StreamUploadSpec, type UploadStatus } from './types.ts'

const newUploadId = () => randomBytes(16).toString('hex')
/** The lock that serialises storing and deleting one blob's bytes (a purge must not delete bytes being stored). */
const blobKey = (sha256: string) => `blob:${sha256}`
/** The lock a request holds while it writes one chunk of an upload. */
const chunkKey = (uploadId: string, index: number) => `chunk:${uploadId}:${index}`
/** The lock a request holds while it appends to a streamed upload, or assembles a finished partial into a final upload. */
const uploadKey = (uploadId: string) => `upload:${uploadId}`
/**
 * An empty upload with more chunks than this is not discarded at once when a request is refused
 * (each chunk's lock would be asked for): it expires like any idle upload.
 */
const MAX_DISCARD_LOCKS = 1024
/** How often a drop link is checked again while one of its uploads streams in. */
const LINK_CHECK_MS = 400
/**
 * How long a finalisation's lease lasts unless renewed (it is, every third of that, while the
 * finalisation runs): how long an upload whose instance stopped mid-finalisation waits before
 * another instance takes it over.
 */
export const FINALIZATION_LEASE_MS = 60_000

/**
 * The upload engine: protocol-neutral. Adapters (Dropzone, plain multipart, later tus) turn
 * requests into calls here; bytes go to the staging area and, once complete, into the blob store.
 *
 * Invariants:
 * - a chunk is recorded only after its bytes are durable, and counted once;
 * - exactly one finalisation runs per upload: a conditional state change elects it and gives it
 *   a lease (owner, expiry) that it renews while it runs; only the lease's owner records the file,
 *   and another instance takes the finalisation over only once the lease has lapsed or been let go;
 * - a blob's refCount equals the number of files that reference it.
 */
export class UploadEngine {
  /** Writes in flight per upload: finalisation waits for them so no byte changes after hashing. */
  private readonly writes = new Map<string, Set<Promise<unknown>>>()
  private readonly finalizing = new Map<string, Promise<Upload>>()
  /**
   * Uploads whose last finalisation a passing fault stopped, with the SHA-256 of their staged
   * bytes if it got that far (they cannot change any more): the next request for them starts it again.
   */
  private readonly heldUp = new Map<string, string | undefined>()

  private readonly hashes: RunningHashes
  private readonly space: FreeSpace
  private readonly progress: Progress
  /** What request bodies read into memory may hold at once, across all protocols and requests. */
  readonly memory: MemoryBudget
  /** Names this engine instance as the owner of the finalisation leases it holds. */
  readonly instanceId: string

  constructor(private readonly deps: EngineDeps) {
    this.instanceId = deps.instanceId ?? `instance:${randomBytes(8).toString('hex')}`
    this.memory = new MemoryBudget(deps.config.uploadMemoryBytes)
    this.hashes = new RunningHashes(deps.staging)
    this.space = new FreeSpace(deps)
    this.progress = new Progress(deps.clock)
  }

  private get store() {
    return this.deps.store
  }

  /** A finalisation lease of this instance, from now. */
  private lease(): Lease {
    return { owner: this.instanceId, expiresAt: this.deps.clock() + FINALIZATION_LEASE_MS }
  }

  async requireFolder(folderId: number) {
    if (!(await this.store.library.folder(folderId))) throw new DomainError('not-found', `Folder ${folderId} does not exist`)
    if (await this.store.library.isInTrash(folderId)) throw new DomainError('not-found', `Folder ${folderId} is in the trash`)
  }

  /** Checks what a chunk says about its upload against the server's limits and itself. */
  private checkChunkedSpec(spec: ChunkedUploadSpec) {
    const { config } = this.deps
    if (spec.totalBytes > config.maxFileBytes) {
      throw new DomainError('too-large', `The file is ${spec.totalBytes} bytes; the limit is ${config.maxFileBytes} bytes`)
    }
    if (spec.chunkBytes > config.maxChunkBytes) {
      throw new DomainError('too-large', `Chunks of ${spec.chunkBytes} bytes are too large; the limit is ${config.maxChunkBytes} bytes`)
    }
    const expectedCount = Math.max(1, Math.ceil(spec.totalBytes / spec.chunkBytes))
    if (spec.chunkCount !== expectedCount) {
      throw new DomainError('invalid', `A ${spec.totalBytes}-byte file in ${spec.chunkBytes}-byte chunks has ${expectedCount} chunks, not ${spec.chunkCount}`)
    }
  }

  /** Finds the upload a chunk belongs to, creating it on its first chunk, and checks the chunk agrees with it. */
  async openChunked(spec: ChunkedUploadSpec, admit?: Admission): Promise<Upload> {
    this.checkChunkedSpec(spec)
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
   * Refuses, before its bytes are read, a chunk that would start an upload its own fields or
   * `admit` (a drop link's limits) forbid. The checks that count run again when it is recorded.
   */
  async precheckChunked(spec: ChunkedUploadSpec, admit?: Admission) {
    this.checkChunkedSpec(spec)
    if (await this.store.uploads.findByClientKey(spec.owner, spec.clientKey)) return
    await this.requireFolder(spec.folderId)
    await this.admits(admit, { fileName: cleanFileName(spec.fileName), totalBytes: spec.totalBytes })
  }

  /** Refuses, before its bytes are read, a whole file its folder or limits cannot take whatever its size. */
  async precheckWhole(folderId: number, fileName: string, admit?: Admission) {
    await this.requireFolder(folderId)
    await this.admits(admit, { fileName: cleanFileName(fileName), totalBytes: 0 })
  }

  /** A drop link's upload streams in only while its link stays open (see requireLinkStillOpen). */
  private whileLinkOpen(owner: string, body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    if (linkIdOf(owner) === null) return body
    return watched(body, () => requireLinkStillOpen(this.store, owner, this.deps.clock()), LINK_CHECK_MS)
  }

  /** Checks `admit` against the figures as they are now (the check that counts runs again when the upload is recorded). */
  private async admits(admit: Admission | undefined, upload: { fileName: string; totalBytes: number }) {
    if (admit) admit.check(await this.store.uploads.admissionFigures(admit.owner), upload)
  }

  /** Checks there is room for a new upload; resolves to `admit` joined with the owner's reserve (see FreeSpace). */
  private async roomFor(totalBytes: number, owner: string, admit?: Admission): Promise<Admission | undefined> {
    const reserve = await this.space.forNewUpload(totalBytes, owner)
    return bothAdmissions(admit, reserve)
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
  async receiveChunk(upload: Upload, index: number, body: AsyncIterable<Uint8Array>): Promise<UploadStatus> {
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
      const named = whole ? undefined : this.deps.staging.begin(upload.id)
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
      // The last chunk may have landed meanwhile: answer with what its finalisation made.
      await this.finalizing.get(upload.id)
    }
    return this.status(upload.id)
  }

  /** A retry of bytes we already hold: acknowledged without touching them again. */
  private async acknowledgeHeld(current: Upload, body: AsyncIterable<Uint8Array>): Promise<UploadStatus> {
    await drain(body)
    const done = current.state === 'finalizing' || current.state === 'complete'
    if (current.state === 'finalizing') await this.resumeFinalization(current.id)
    // Recorded by another request, maybe not yet on disk.
    if (done) await this.store.durable()
    else await this.acknowledgeable(current.id)
    return this.status(current.id)
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
   * The one chunk of a one-chunk upload (a small file from Dropzone), already in memory: stored in
   * one step (see storeInOne). A retry of an upload that is known already goes the chunked way.
   */
  async receiveSoleChunk(spec: ChunkedUploadSpec, bytes: Uint8Array, admit?: Admission): Promise<UploadStatus> {
    this.checkChunkedSpec(spec)
    if (spec.chunkCount === 1 && !(await this.store.uploads.findByClientKey(spec.owner, spec.clientKey))) {
      if (bytes.length !== spec.totalBytes) throw new DomainError('invalid', `Chunk 0 has ${bytes.length} bytes; expected ${spec.totalBytes}`)
      const stored = await this.storeInOne({ ...spec, chunkCount: 1 }, [{ fileName: spec.fileName, bytes }], admit)
      if (stored) return stored[0]!
    }
    // Known already (a retry, or a request for the same upload that got in first): the chunked
    // way answers it.
    const upload = await this.openChunked(spec, admit)
    return this.receiveChunk(upload, 0, once(bytes))
  }

  /**
   * Whole files from one plain multipart request, already in memory: all stored, or (when one is
   * refused) none, in one step (see storeInOne). A refusal names the file it is about.
   */
  async receiveWholeFiles(
    args: { owner: string; folderId: number; clientAddress: string | null },
    files: { fileName: string; bytes: Uint8Array }[],
    admit?: Admission,
  ): Promise<UploadStatus[]> {
    const limit = this.deps.config.maxFileBytes
    const several = files.length > 1
    const refusal = (error: unknown, fileName: string) =>
      several && error instanceof DomainError
        ? error.reworded(`“${fileName.slice(0, 255)}”: ${error.message} None of the ${files.length} files was stored.`)
        : error
    const checked = files.map(({ fileName, bytes }) => {
      try {
        if (bytes.length > limit) throw new DomainError('too-large', `The file is larger than the ${limit}-byte limit.`)
        return { fileName: cleanFileName(fileName), bytes }
      } catch (error) {
        throw refusal(error, fileName)
      }
    })
    const admitEach: Admission | undefined = admit && {
      owner: admit.owner,
      check(figures, upload) {
        try {
          admit.check(figures, upload)
        } catch (error) {
          throw refusal(error, upload.fileName)
        }
      },
    }
    const spec = { ...args, protocol: 'plain' as const, clientKey: null, chunkCount: 1 }
    return (await this.storeInOne(spec, checked, admitEach))!
  }

  /**
   * Stores whole files that are in memory in one step: hashed first, so bytes the store holds
   * already are not written at all; otherwise written straight into the store and synced; then
   * recorded, uploads and files, in one commit (so either all are stored or none). There is no
   * upload row before that commit: a crash before it leaves at most a blob that nothing refers to
   * (replaced by the next upload of the same bytes), and the client, never answered, sends again.
   * Resolves to null, having recorded nothing, when an upload with the same client key got in first.
   */
  private async storeInOne(
    spec: { protocol: 'dropzone' | 'plain'; owner: string; clientKey: string | null; folderId: number; clientAddress: string | null; chunkBytes?: number; chunkCount: number },
    files: { fileName: string; bytes: Uint8Array }[],
    admit?: Admission,
  ): Promise<UploadStatus[] | null> {
    const { blobs, clock } = this.deps
    const named = files.map((file) => ({ ...file, fileName: cleanFileName(file.fileName) }))
    await this.requireFolder(spec.folderId)
    admit = await this.roomFor(named.reduce((sum, file) => sum + file.bytes.length, 0), spec.owner, admit)
    // Refused before a byte is written. The commit checks again (all files together), and that check is the one that counts.
    for (const { fileName, bytes } of named) await this.admits(admit, { fileName, totalBytes: bytes.length })
    const items = named.map((file) => ({ ...file, id: newUploadId(), sha256: new Bun.CryptoHasher('sha256').update(file.bytes).digest('hex') }))
    const contents = new Map(items.map((item) => [item.sha256, item.bytes]))
    const recorded = await withLocks(this.deps.locker, [...contents.keys()].map(blobKey), async () => {
      const present = new Set<string>()
      let result: FileRecord[] | null = null
      try {
        for (const [sha256, bytes] of contents) {
          const referenced = await this.store.library.blobIsReferenced(sha256)
          if (referenced && (await blobs.has(sha256))) present.add(sha256)
          else {
            await this.track(items[0]!.id, blobs.write(sha256, bytes, referenced)).catch((error) => {
              throw diskError(unwrap(error))
            })
          }
        }
        const now = clock()
        result = await this.track(items[0]!.id, this.store.uploads.createComplete(items.map((item) => ({
          upload: {
            id: item.id, protocol: spec.protocol, owner: spec.owner, clientKey: spec.clientKey, folderId: spec.folderId, fileName: item.fileName,
            mimeType: mimeTypeOf(item.fileName), totalBytes: item.bytes.length, chunkBytes: spec.chunkBytes ?? Math.max(item.bytes.length, 1),
            chunkCount: spec.chunkCount, receivedBytes: item.bytes.length, receivedChunks: spec.chunkCount, clientAddress: spec.clientAddress,
            createdAt: now, updatedAt: now,
          },
          sha256: item.sha256,
        })), admit))
      } finally {
        // Cut short, refused, or another request for the same upload got in first: a blob
        // written here that no committed row refers to goes again, as if never made.
        if (!result) {
          for (const sha256 of contents.keys()) if (!present.has(sha256) && !(await this.store.library.blobIsReferenced(sha256))) await blobs.remove(sha256)
        }
      }
      return result
    })
    if (!recorded) return null
    await this.store.durable()
    return Promise.all(items.map((item) => this.status(item.id)))
  }

  /**
   * Receives a whole file in one stream (a plain multipart upload). The size is learnt from the
   * stream; `declaredBytes` (e.g. from Content-Length) is used only to check space up front.
   */
  async receiveWhole(
    args: { owner: string; folderId: number; fileName: string; clientAddress: string | null; declaredBytes: number },
    body: AsyncIterable<Uint8Array>,
    admit?: Admission,
    /** Received but not finalised yet (see finishHeld and abandonHeld): one of several files that are stored all or none. */
    hold = false,
  ): Promise<UploadStatus> {
    const fileName = cleanFileName(args.fileName)
    await this.requireFolder(args.folderId)
    admit = await this.roomFor(Math.min(args.declaredBytes, this.deps.config.maxFileBytes), args.owner, admit)
    // Limits are checked against the declared size, and the upload may not exceed it.
    const limit = admit ? Math.min(args.declaredBytes, this.deps.config.maxFileBytes) : this.deps.config.maxFileBytes
    const now = this.deps.clock()
    const { upload } = await this.store.uploads.create({
      id: newUploadId(),
      protocol: 'plain',
      owner: args.owner,
      folderId: args.folderId,
      fileName,
      mimeType: mimeTypeOf(fileName),
      totalBytes: limit,
      chunkBytes: 1,
      chunkCount: 1,
      lengthDeferred: true,
      state: 'receiving',
      clientAddress: args.clientAddress,
      createdAt: now,
      updatedAt: now,
    }, admit)
    let claimed = false
    try {
      const limited = limitBytes(this.whileLinkOpen(args.owner, body), limit)
      const written = await this.track(upload.id, this.deps.staging.write(upload.id, 0, limited, Number.MAX_SAFE_INTEGER, { whole: true }))
      await this.store.uploads.setWholeSize(upload.id, written)
      claimed = (await this.store.uploads.recordChunk(upload.id, 0, written, this.deps.clock(), this.lease())).claimed
    } catch (error) {
      // A plain upload cannot be resumed, so its partial bytes are of no use to anyone.
      const cause = unwrap(error)
      await this.fail(upload.id, cause instanceof DomainError ? cause.message : 'The upload was interrupted')
      throw diskError(cause)
    }
    if (!hold) await this.finalize(upload.id, claimed)
    return this.status(upload.id)
  }

  /** Finalises whole files received with `hold` (their finalisation was claimed when their bytes were all there). */
  async finishHeld(held: UploadStatus[]): Promise<UploadStatus[]> {
    for (const upload of held) await this.finalize(upload.id, upload.state === 'finalizing')
    return Promise.all(held.map((upload) => this.status(upload.id)))
  }

  /** Forgets whole files received with `hold` whose request was refused: no row, no staged bytes. */
  async abandonHeld(held: UploadStatus[]) {
    for (const upload of held) {
      if (await this.store.uploads.transition(upload.id, ['receiving', 'finalizing'], 'failed', this.deps.clock())) await this.store.uploads.remove(upload.id)
      this.hashes.forget(upload.id)
    }
    await this.store.durable()
    for (const upload of held) await this.removeStaged(upload.id)
  }

  /** Starts a streamed upload (bytes arrive in order, from offset 0); its length may come later. */
  async createStream(spec: StreamUploadSpec, admit?: Admission): Promise<Upload> {
    const { config } = this.deps
    if (spec.totalBytes !== null && spec.totalBytes > config.maxFileBytes) {
      throw new DomainError('too-large', `The file is ${spec.totalBytes} bytes; the limit is ${config.maxFileBytes} bytes`)
    }
    const fileName = spec.concat === 'partial' && spec.fileName === '' ? 'partial' : cleanFileName(spec.fileName)
    await this.requireFolder(spec.folderId)
    if (spec.totalBytes !== null) admit = await this.roomFor(spec.totalBytes, spec.owner, admit)
    const now = this.deps.clock()
    const { upload } = await this.store.uploads.create({
      id: newUploadId(),
      protocol: spec.protocol,
      owner: spec.owner,
      folderId: spec.folderId,
      fileName,
      mimeType: mimeTypeOf(fileName),
      totalBytes: spec.totalBytes ?? 0,
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
    await this.deps.staging.begin(upload.id)
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
   * bytes, in which case none of this body counts.
   */
  async appendAt(
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
      return this.resumeFinalization(upload.id)
    }
    const limit = (current.lengthDeferred ? this.deps.config.maxFileBytes : current.totalBytes) - offset
    await this.space.forChunk(0)
    const tap = this.hashes.tap(upload.id, offset, this.whileLinkOpen(upload.owner, body))
    let written: number
    try {
      written = await this.track(upload.id, this.deps.staging.write(upload.id, offset, tap.body, limit))
      verify?.(written)
    } catch (error) {
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
    if (this.holdsEveryByte((await this.store.uploads.find(upload.id))!)) await this.completeStream(upload.id)
    return this.acknowledgeStream(upload.id)
  }

  /**
   * Assembles finished partial uploads, in order, into one new upload and finalises it. The parts
   * are released afterwards.
   */
  async concatenate(spec: Omit<StreamUploadSpec, 'totalBytes' | 'concat' | 'partIds'>, partIds: string[]): Promise<Upload> {
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
    const locks = await this.tryLockAll(partIds.map(uploadKey))
    if (!locks) throw new DomainError('busy', 'A partial upload is being used by another request; try again shortly')
    try {
      const totalBytes = parts.reduce((sum, part) => sum + part.totalBytes, 0)
      const upload = await this.createStream({ ...spec, totalBytes: null, concat: 'final', partIds: JSON.stringify(partIds) })
      await this.declareLength(upload, totalBytes)
      let offset = 0
      for (const part of parts) {
        if ((await this.deps.staging.size(part.id)) === null) {
          await this.fail(upload.id, 'A partial upload was already used')
          throw new DomainError('gone', `Partial upload ${part.id} was already used by another final upload`)
        }
        const row = (await this.store.uploads.find(upload.id))!
        await this.appendAt(row, offset, this.deps.staging.read(part.id, 0, part.totalBytes))
        offset += part.totalBytes
      }
      // The final upload durably holds their bytes now: the parts are used up, rows and bytes.
      for (const part of parts) {
        if (await this.store.uploads.transition(part.id, ['complete'], 'cancelled', this.deps.clock())) await this.store.uploads.remove(part.id)
        await this.removeStaged(part.id)
      }
      return (await this.store.uploads.find(upload.id))!
    } finally {
      await releaseAll(locks)
    }
  }

  /** A streamed upload, still receiving, whose every byte is recorded. */
  private holdsEveryByte(upload: Upload): boolean {
    return upload.state === 'receiving' && upload.chunkCount === 0 && !upload.lengthDeferred && upload.receivedBytes === upload.totalBytes
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
    return this.retriedInBackground(await this.store.uploads.find(uploadId))
  }

  async status(uploadId: string): Promise<UploadStatus> {
    const upload = await this.store.uploads.find(uploadId)
    if (!upload) throw new DomainError('not-found', 'No such upload')
    const file = upload.fileId != null ? await this.store.library.file(upload.fileId) : undefined
    return {
      id: upload.id,
      clientKey: upload.clientKey,
      state: upload.state,
      fileName: upload.fileName,
      folderId: upload.folderId,
      totalBytes: upload.totalBytes,
      receivedBytes: upload.receivedBytes,
      chunkBytes: upload.chunkBytes,
      chunkCount: upload.chunkCount,
      receivedChunks: upload.receivedChunks,
      error: upload.error,
      file: file ? fileInfo(file) : null,
    }
  }

  receivedChunks(uploadId: string): Promise<number[]> {
    return this.store.uploads.receivedChunks(uploadId)
  }

  async findByClientKey(owner: string, clientKey: string) {
    return this.retriedInBackground(await this.store.uploads.findByClientKey(owner, clientKey))
  }

  /**
   * A status request or a tus HEAD answers at once; a finalisation that a passing fault held up
   * starts again meanwhile (a tus client that sees all its bytes there sends nothing more).
   */
  private retriedInBackground<T extends Upload | undefined>(upload: T): T {
    // Only for what a passing fault held up here: a look-up must not write for every upload.
    if (upload && this.heldUp.has(upload.id)) this.resumeFinalization(upload.id).catch(() => {})
    return upload
  }

  /** Runs the one finalisation of an upload whose chunks are all here; others wait for it. */
  async finalize(uploadId: string, claimed = false): Promise<Upload> {
    if (claimed || (await this.store.uploads.claimFinalization(uploadId, this.deps.clock(), this.lease()))) return this.startFinalization(uploadId)
    const row = await this.resumeFinalization(uploadId)
    await this.store.durable()
    return row
  }

  /**
   * Joins the finalisation running here for an upload, or takes it over if nobody holds its lease
   * any more (a passing fault stopped it, or the instance running it stopped). (Only the request
   * that claimed it starts the first: between its claim and that start, others see 'finalizing'
   * with nothing running yet, and a live lease.)
   */
  private async resumeFinalization(uploadId: string, now = this.deps.clock()): Promise<Upload> {
    const running = this.finalizing.get(uploadId)
    if (running) return running
    const upload = (await this.store.uploads.find(uploadId))!
    // Read first, so that a look-up writes only when there is something to take over.
    const stale = upload.state === 'finalizing' && (upload.leaseExpiresAt === null || upload.leaseExpiresAt < now)
    if (stale && (await this.store.uploads.takeOverFinalization(uploadId, now, this.lease()))) return this.startFinalization(uploadId)
    // Another request here may have taken it over meanwhile: wait for that one.
    return this.finalizing.get(uploadId) ?? upload
  }

  private startFinalization(uploadId: string): Promise<Upload> {
    const digest = this.heldUp.get(uploadId)
    this.heldUp.delete(uploadId)
    const run = this.runFinalization(uploadId, digest).finally(() => this.finalizing.delete(uploadId))
    this.finalizing.set(uploadId, run)
    return run
  }

  /**
   * Takes over the finalisations nobody holds a live lease on: those a passing fault stopped, and
   * those of an instance that stopped (housekeeping, start-up).
   */
  async resumeFinalizations(now = this.deps.clock()) {
    for (const upload of await this.store.uploads.unleasedFinalizations(now)) await this.resumeFinalization(upload.id, now).catch(() => {})
  }

  /** Renews this instance's lease on a running finalisation until `stop`; logs it if the lease was lost. */
  private keepLease(uploadId: string): () => void {
    const timer = setInterval(async () => {
      try {
        if (await this.store.uploads.renewLease(uploadId, this.lease())) return
        this.deps.log('finalisation lease lost; another instance finishes this upload', { uploadId, owner: this.instanceId })
        clearInterval(timer)
      } catch (error) {
        // A passing fault: the lease still runs until it expires, and the next renewal may succeed.
        this.deps.log('finalisation lease not renewed', { uploadId, error: String(error) })
      }
    }, FINALIZATION_LEASE_MS / 3)
    return () => clearInterval(timer)
  }

  private async runFinalization(uploadId: string, stagedDigest?: string): Promise<Upload> {
    const stopRenewing = this.keepLease(uploadId)
    try {
      return await this.finalizeUnderLease(uploadId, stagedDigest)
    } finally {
      stopRenewing()
    }
  }

  private async finalizeUnderLease(uploadId: string, stagedDigest?: string): Promise<Upload> {
    const { staging, blobs, clock } = this.deps
    await Promise.allSettled(this.writes.get(uploadId) ?? [])
    const upload = (await this.store.uploads.find(uploadId))!
    let digest = stagedDigest
    let recorded = true
    try {
      let sha256 = upload.sha256
      const stagedSize = await staging.size(uploadId)
      if (stagedSize !== null) {
        if (stagedSize !== upload.totalBytes) {
          throw new DomainError('failed', `Staged file has ${stagedSize} bytes; expected ${upload.totalBytes}`)
        }
        sha256 = digest ??= await this.hashes.digest(uploadId, upload.totalBytes)
      }
      const hash = sha256
      if (!hash) throw new DomainError('failed', 'The staged bytes of this upload are missing')
      // Under the blob's lock, so a purge cannot remove these bytes between adopting and counting them.
      await withLock(this.deps.locker, blobKey(hash), async () => {
        if (stagedSize !== null) await blobs.adopt(uploadId, hash, (await this.store.library.blobIsReferenced(hash)) ? 'trusted' : 'replace')
        else if (!(await blobs.has(hash))) throw new DomainError('failed', 'The staged bytes of this upload are missing')
        recorded = await this.store.uploads.completeUpload({
          uploadId,
          folderId: upload.folderId,
          name: upload.fileName,
          sizeBytes: upload.totalBytes,
          sha256: hash,
          mimeType: upload.mimeType,
          now: clock(),
          leaseOwner: this.instanceId,
        }) !== null
      })
      // Taken over meanwhile: the new owner records the file and needs the staged bytes.
      if (!recorded) this.deps.log('finalisation lease lost; another instance finishes this upload', { uploadId, owner: this.instanceId })
      // The staged file goes only once the database durably says where its bytes are now.
      await this.store.durable()
      if (recorded && stagedSize !== null) await this.removeStaged(uploadId)
    } catch (error) {
      if (isPassingFault(error)) {
        // Every byte was acknowledged: they stay staged, the upload stays 'finalizing', and the
        // next chunk, HEAD, status request, housekeeping or start-up tries again.
        this.deps.log('finalisation deferred by a passing fault', { uploadId, error: String(error) })
        const after = (await this.store.uploads.find(uploadId))!
        if (after.state !== 'finalizing') return after
        this.heldUp.set(uploadId, digest)
        // Whoever comes first tries again (if the database itself refuses, the lease lapses instead).
        try {
          await this.store.uploads.releaseLease(uploadId, this.instanceId)
        } catch {}
        throw finalisationDeferred()
      }
      this.deps.log('finalisation failed', { uploadId, error: String(error) })
      await this.store.uploads.failFinalization(uploadId, this.instanceId, clock(), error instanceof DomainError ? error.message : 'Finalisation failed')
      await this.store.durable()
    }
    return (await this.store.uploads.find(uploadId))!
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
    while (this.writes.size > 0 || this.finalizing.size > 0) {
      await Promise.allSettled([...this.finalizing.values(), ...[...this.writes.values()].flatMap((set) => [...set])])
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
    // is stale starts again, under a lease won by one conditional update.
    await this.resumeFinalizations(options.sole ? Number.MAX_SAFE_INTEGER : this.deps.clock())
    // A streamed upload whose last bytes were recorded by a request stopped before it claimed the
    // finalisation: its client sees every byte taken and sends nothing more.
    for (const upload of await this.store.uploads.inState('receiving')) {
      if (this.holdsEveryByte(upload)) await this.completeStream(upload.id).catch(() => {})
    }
  }

  async fail(uploadId: string, reason: string) {
    await this.store.uploads.transition(uploadId, ['receiving'], 'failed', this.deps.clock(), reason)
    this.hashes.forget(uploadId)
    await this.store.durable()
    await this.removeStaged(uploadId)
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
    const locks = await this.tryLockAll(keys)
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

  /** Every lock of `keys`, or (when one is held by anybody) none of them and null. */
  private async tryLockAll(keys: string[]): Promise<Lock[] | null> {
    const locks: Lock[] = []
    for (const key of [...new Set(keys)].sort()) {
      const lock = await this.deps.locker.tryLock(key)
      if (!lock) {
        await releaseAll(locks)
        return null
      }
      locks.push(lock)
    }
    return locks
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

  private notReceiving(upload: Upload) {
    const why = { expired: 'has expired', cancelled: 'was cancelled', failed: `failed: ${upload.error ?? 'unknown error'}` }
    return new DomainError('gone', `This upload ${why[upload.state as keyof typeof why] ?? 'is closed'}; start it again`)
  }

  private async removeStaged(uploadId: string) {
    await this.deps.staging.remove(uploadId)
  }

  /** Makes what a streamed upload's answer will say durable; resolves to the upload as it is. */
  private async acknowledgeStream(uploadId: string): Promise<Upload> {
    const latest = (await this.store.uploads.find(uploadId))!
    // Still arriving, or a finished tus partial (its staged bytes wait for their final upload).
    if (latest.state === 'receiving' || latest.concat === 'partial') await this.acknowledgeable(uploadId)
    else await this.store.durable()
    return (await this.store.uploads.find(uploadId))!
  }

  /**
   * Everything an acknowledgement of a not yet finished upload promises is on disk: its records,
   * and its staging (begun already; an upload that finishes in one request never needs this, its
   * bytes are durable in the blob store instead).
   */
  private acknowledgeable(uploadId: string) {
    return Promise.all([this.store.durable(), this.deps.staging.begin(uploadId)])
  }

  private track<T>(uploadId: string, work: Promise<T>): Promise<T> {
    let set = this.writes.get(uploadId)
    if (!set) this.writes.set(uploadId, (set = new Set()))
    set.add(work)
    const done = () => {
      set.delete(work)
      if (set.size === 0) this.writes.delete(uploadId)
    }
    work.then(done, done)
    return work
  }
}

async function releaseAll(locks: Lock[]) {
  for (const lock of locks) await lock.release()
}
