import { randomBytes } from 'node:crypto'
import { DomainError } from '../core/errors.ts'
import { bothAdmissions, linkIdOf, type Admission, type Lease, type Upload } from '../core/records.ts'
import { requireLinkStillOpen } from '../links/access.ts'
import type { Lock, Locker } from '../ports/locker.ts'
import { MemoryBudget, watched } from './bodies.ts'
import { FreeSpace } from './free-space.ts'
import { Progress } from './progress.ts'
import { RunningHashes } from './running-hash.ts'
import { fileInfo, type EngineDeps, type UploadStatus } from './types.ts'

export const newUploadId = () => randomBytes(16).toString('hex')
/** The lock that serialises storing and deleting one blob's bytes (a purge must not delete bytes being stored). */
export const blobKey = (sha256: string) => `blob:${sha256}`
/** The lock a request holds while it writes one chunk of an upload. */
export const chunkKey = (uploadId: string, index: number) => `chunk:${uploadId}:${index}`
/** The lock a request holds while it appends to a streamed upload, or assembles a finished partial into a final upload. */
export const uploadKey = (uploadId: string) => `upload:${uploadId}`
/** How often a drop link is checked again while one of its uploads streams in. */
const LINK_CHECK_MS = 400
/**
 * How long a finalisation's lease lasts unless renewed (it is, every third of that, while the
 * finalisation runs): how long an upload whose instance stopped mid-finalisation waits before
 * another instance takes it over.
 */
export const FINALIZATION_LEASE_MS = 60_000

/**
 * What every part of the upload engine shares (the engine's ports, the running hashes, free space,
 * progress, writes in flight) and the small steps they all take. The parts: UploadEngine
 * (engine.ts: begin, write, declare length, cancel, …), Finalization (finalize.ts), WholeFiles
 * (whole-files.ts).
 */
export class EngineParts {
  /** Writes in flight per upload: finalisation waits for them so no byte changes after hashing. */
  readonly writes = new Map<string, Set<Promise<unknown>>>()

  readonly hashes: RunningHashes

  readonly space: FreeSpace

  readonly progress: Progress

  /** What request bodies read into memory may hold at once, across all protocols and requests. */
  readonly memory: MemoryBudget

  /** Names this engine instance as the owner of the finalisation leases it holds. */
  readonly instanceId: string


  constructor(readonly deps: EngineDeps) {
    this.instanceId = deps.instanceId ?? `instance:${randomBytes(8).toString('hex')}`
    this.memory = new MemoryBudget(deps.config.uploadMemoryBytes)
    this.hashes = new RunningHashes(deps.staging, { readAhead: !deps.shared })
    this.space = new FreeSpace(deps)
    this.progress = new Progress(deps.clock)
  }


  get store() {
    return this.deps.store
  }


  /** A finalisation lease of this instance, from now. */
  lease(): Lease {
    return { owner: this.instanceId, expiresAt: this.deps.clock() + FINALIZATION_LEASE_MS }
  }


  async requireFolder(folderId: number) {
    if (!(await this.store.library.folder(folderId))) throw new DomainError('not-found', `Folder ${folderId} does not exist`)
    if (await this.store.library.isInTrash(folderId)) throw new DomainError('not-found', `Folder ${folderId} is in the trash`)
  }


  /** A drop link's upload streams in only while its link stays open (see requireLinkStillOpen). */
  whileLinkOpen(owner: string, body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    if (linkIdOf(owner) === null) return body
    return watched(body, () => requireLinkStillOpen(this.store, owner, this.deps.clock()), LINK_CHECK_MS)
  }


  /** Checks `admit` against the figures as they are now (the check that counts runs again when the upload is recorded). */
  async admits(admit: Admission | undefined, upload: { fileName: string; totalBytes: number }) {
    if (admit) admit.check(await this.store.uploads.admissionFigures(admit.owner), upload)
  }


  /** Checks there is room for a new upload; resolves to `admit` joined with the owner's reserve (see FreeSpace). */
  async roomFor(totalBytes: number, owner: string, admit?: Admission): Promise<Admission | undefined> {
    const reserve = await this.space.forNewUpload(totalBytes, owner)
    return bothAdmissions(admit, reserve)
  }


  notReceiving(upload: Upload) {
    const why = { expired: 'has expired', cancelled: 'was cancelled', failed: `failed: ${upload.error ?? 'unknown error'}` }
    return new DomainError('gone', `This upload ${why[upload.state as keyof typeof why] ?? 'is closed'}; start it again`)
  }


  async removeStaged(uploadId: string) {
    await this.deps.staging.remove(uploadId)
  }


  /**
   * Everything an acknowledgement of a not yet finished upload promises is on disk: its records,
   * and its staging (begun already; an upload that finishes in one request never needs this, its
   * bytes are durable in the blob store instead).
   */
  acknowledgeable(uploadId: string) {
    return Promise.all([this.store.durable(), this.deps.staging.begin(uploadId)])
  }


  track<T>(uploadId: string, work: Promise<T>): Promise<T> {
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


  async fail(uploadId: string, reason: string) {
    await this.store.uploads.transition(uploadId, ['receiving'], 'failed', this.deps.clock(), reason)
    this.hashes.forget(uploadId)
    await this.store.durable()
    await this.removeStaged(uploadId)
  }

}

/** Every lock of `keys`, or (when one is held by anybody) none of them and null. */
export async function tryLockAll(locker: Locker, keys: string[]): Promise<Lock[] | null> {
  const locks: Lock[] = []
  for (const key of [...new Set(keys)].sort()) {
    const lock = await locker.tryLock(key)
    if (!lock) {
      await releaseAll(locks)
      return null
    }
    locks.push(lock)
  }
  return locks
}

export async function releaseAll(locks: Lock[]) {
  for (const lock of locks) await lock.release()
}
