import { DomainError } from '../core/errors.ts'
import type { Upload } from '../core/records.ts'
import { withLock } from '../ports/locker.ts'
import { finalisationDeferred, isPassingFault } from './passing-fault.ts'
import { blobKey, FINALIZATION_LEASE_MS, type EngineParts } from './parts.ts'

/**
 * Finalisation: an upload whose bytes are all here becomes a file, exactly once. A conditional
 * state change elects one finalisation and gives it a lease (owner, expiry) that it renews while
 * it runs; only the lease's owner records the file, and another instance takes the finalisation
 * over only once the lease has lapsed or been let go.
 */
export class Finalization {
  constructor(private readonly parts: EngineParts) {}

  readonly finalizing = new Map<string, Promise<Upload>>()

  /**
   * Uploads whose last finalisation a passing fault stopped, with the SHA-256 of their staged
   * bytes if it got that far (they cannot change any more): the next request for them starts it again.
   */
  private readonly heldUp = new Map<string, string | undefined>()

  /**
   * A status request or a tus HEAD answers at once; a finalisation that a passing fault held up,
   * or whose instance died and whose lease has lapsed, starts again meanwhile (a tus client that
   * sees all its bytes there sends nothing more).
   */
  retriedInBackground<T extends Upload | undefined>(upload: T): T {
    // Only for what a passing fault held up here, or what nobody holds any more: a look-up must not write for every upload.
    const lapsed = upload?.state === 'finalizing' && (upload.leaseExpiresAt ?? 0) < this.parts.deps.clock()
    if (upload && (this.heldUp.has(upload.id) || lapsed)) this.resumeFinalization(upload.id).catch(() => {})
    return upload
  }

  /** Runs the one finalisation of an upload whose chunks are all here; others wait for it. */
  async finalize(uploadId: string, claimed = false): Promise<Upload> {
    if (claimed || (await this.parts.store.uploads.claimFinalization(uploadId, this.parts.deps.clock(), this.parts.lease()))) return this.startFinalization(uploadId)
    const row = await this.awaitFinalization(uploadId)
    await this.parts.store.durable()
    return row
  }

  /**
   * The upload once its finalisation has ended, wherever it runs: joins the one running here,
   * takes over one whose lease lapsed, or watches the row while another instance holds the lease
   * (a chunk sent twice is answered with the file, not with 'finalizing'). Bounded by the lease:
   * an instance that stops lets its lease lapse, and this one then takes the finalisation over.
   */
  async awaitFinalization(uploadId: string): Promise<Upload> {
    for (let waitMs = 5; ; waitMs = Math.min(waitMs * 2, 250)) {
      const upload = await this.resumeFinalization(uploadId)
      if (upload.state !== 'finalizing') return upload
      await Bun.sleep(waitMs)
    }
  }


  /**
   * Joins the finalisation running here for an upload, or takes it over if nobody holds its lease
   * any more (a passing fault stopped it, or the instance running it stopped). (Only the request
   * that claimed it starts the first: between its claim and that start, others see 'finalizing'
   * with nothing running yet, and a live lease.)
   */
  async resumeFinalization(uploadId: string, now = this.parts.deps.clock()): Promise<Upload> {
    const running = this.finalizing.get(uploadId)
    if (running) return running
    const upload = (await this.parts.store.uploads.find(uploadId))!
    // Read first, so that a look-up writes only when there is something to take over.
    const stale = upload.state === 'finalizing' && (upload.leaseExpiresAt === null || upload.leaseExpiresAt < now)
    if (stale && (await this.parts.store.uploads.takeOverFinalization(uploadId, now, this.parts.lease()))) return this.startFinalization(uploadId)
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
  async resumeFinalizations(now = this.parts.deps.clock()) {
    for (const upload of await this.parts.store.uploads.unleasedFinalizations(now)) await this.resumeFinalization(upload.id, now).catch(() => {})
  }


  /** Renews this instance's lease on a running finalisation until `stop`; logs it if the lease was lost. */
  private keepLease(uploadId: string): () => void {
    const timer = setInterval(async () => {
      try {
        if (await this.parts.store.uploads.renewLease(uploadId, this.parts.lease())) return
        this.parts.deps.log('finalisation lease lost; another instance finishes this upload', { uploadId, owner: this.parts.instanceId })
        clearInterval(timer)
      } catch (error) {
        // A passing fault: the lease still runs until it expires, and the next renewal may succeed.
        this.parts.deps.log('finalisation lease not renewed', { uploadId, error: String(error) })
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
    const { staging, blobs, clock } = this.parts.deps
    await Promise.allSettled(this.parts.writes.get(uploadId) ?? [])
    const upload = (await this.parts.store.uploads.find(uploadId))!
    let digest = stagedDigest
    let recorded = true
    try {
      let sha256 = upload.sha256
      const stagedSize = await staging.size(uploadId)
      if (stagedSize !== null) {
        if (stagedSize !== upload.totalBytes) {
          throw new DomainError('failed', `Staged file has ${stagedSize} bytes; expected ${upload.totalBytes}`)
        }
        await staging.seal(uploadId, upload.totalBytes)
        sha256 = digest ??= await this.parts.hashes.digest(uploadId, upload.totalBytes)
      }
      const hash = sha256
      if (!hash) throw new DomainError('failed', 'The staged bytes of this upload are missing')
      // Under the blob's lock, so a purge cannot remove these bytes between adopting and counting them.
      await withLock(this.parts.deps.locker, blobKey(hash), async () => {
        if (stagedSize !== null) await blobs.adopt(uploadId, hash, (await this.parts.store.library.blobIsReferenced(hash)) ? 'trusted' : 'replace')
        else if (!(await blobs.has(hash))) throw new DomainError('failed', 'The staged bytes of this upload are missing')
        recorded = await this.parts.store.uploads.completeUpload({
          uploadId,
          folderId: upload.folderId,
          name: upload.fileName,
          sizeBytes: upload.totalBytes,
          sha256: hash,
          mimeType: upload.mimeType,
          now: clock(),
          leaseOwner: this.parts.instanceId,
        }) !== null
      })
      // Taken over meanwhile: the new owner records the file and needs the staged bytes.
      if (!recorded) this.parts.deps.log('finalisation lease lost; another instance finishes this upload', { uploadId, owner: this.parts.instanceId })
      // The staged file goes only once the database durably says where its bytes are now.
      await this.parts.store.durable()
      if (recorded && stagedSize !== null) await this.parts.removeStaged(uploadId)
    } catch (error) {
      if (isPassingFault(error)) {
        // Every byte was acknowledged: they stay staged, the upload stays 'finalizing', and the
        // next chunk, HEAD, status request, housekeeping or start-up tries again.
        this.parts.deps.log('finalisation deferred by a passing fault', { uploadId, error: String(error) })
        const after = (await this.parts.store.uploads.find(uploadId))!
        if (after.state !== 'finalizing') return after
        this.heldUp.set(uploadId, digest)
        // Whoever comes first tries again (if the database itself refuses, the lease lapses instead).
        try {
          await this.parts.store.uploads.releaseLease(uploadId, this.parts.instanceId)
        } catch {}
        throw finalisationDeferred()
      }
      this.parts.deps.log('finalisation failed', { uploadId, error: String(error) })
      await this.parts.store.uploads.failFinalization(uploadId, this.parts.instanceId, clock(), error instanceof DomainError ? error.message : 'Finalisation failed')
      await this.parts.store.durable()
    }
    return (await this.parts.store.uploads.find(uploadId))!
  }

}
