import { DomainError } from '../core/errors.ts'
import type { Admission, FileRecord } from '../core/records.ts'
import { withLocks } from '../ports/locker.ts'
import { diskError, limitBytes, unwrap } from './bodies.ts'
import { cleanFileName, mimeTypeOf } from './file-names.ts'
import type { Finalization } from './finalize.ts'
import { blobKey, newUploadId, type EngineParts } from './parts.ts'
import type { UploadStatus } from './types.ts'

/**
 * Whole files, all in one request: in memory (stored in one step, all or none) or streamed to
 * staging (received with `hold`, then finalised together or abandoned together).
 */
/** Who stores whole files where; a client key (Dropzone's) makes a retry find the upload it made. */
export interface WholeFilesSpec {
  protocol: 'dropzone' | 'plain'
  owner: string
  folderId: number
  clientAddress: string | null
  clientKey: string | null
  /** The chunk size the client declared (a Dropzone file in one chunk), shown in its status. */
  chunkBytes?: number
}

export class WholeFiles {
  constructor(
    private readonly parts: EngineParts,
    private readonly finalization: Finalization,
  ) {}

  /**
   * Whole files already in memory (a plain multipart request's, or a Dropzone file in one chunk):
   * all stored, or (when one is refused) none, in one step (see storeInOne). A refusal names the
   * file it is about. Resolves to null, storing nothing, when the client key names an upload
   * already (a retry): the caller writes to that one instead.
   */
  async storeWhole(spec: WholeFilesSpec, files: { fileName: string; bytes: Uint8Array }[], admit?: Admission): Promise<UploadStatus[] | null> {
    if (spec.clientKey !== null && (await this.parts.store.uploads.findByClientKey(spec.owner, spec.clientKey))) return null
    const limit = this.parts.deps.config.maxFileBytes
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
    return this.storeInOne({ ...spec, chunkCount: 1 }, checked, admitEach)
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
    const { blobs, clock } = this.parts.deps
    const named = files.map((file) => ({ ...file, fileName: cleanFileName(file.fileName) }))
    await this.parts.requireFolder(spec.folderId)
    admit = await this.parts.roomFor(named.reduce((sum, file) => sum + file.bytes.length, 0), spec.owner, admit)
    // Refused before a byte is written. The commit checks again (all files together), and that check is the one that counts.
    for (const { fileName, bytes } of named) await this.parts.admits(admit, { fileName, totalBytes: bytes.length })
    const items = named.map((file) => ({ ...file, id: newUploadId(), sha256: new Bun.CryptoHasher('sha256').update(file.bytes).digest('hex') }))
    const contents = new Map(items.map((item) => [item.sha256, item.bytes]))
    const recorded = await withLocks(this.parts.deps.locker, [...contents.keys()].map(blobKey), async () => {
      const present = new Set<string>()
      let result: FileRecord[] | null = null
      try {
        for (const [sha256, bytes] of contents) {
          const referenced = await this.parts.store.library.blobIsReferenced(sha256)
          if (referenced && (await blobs.has(sha256))) present.add(sha256)
          else {
            await this.parts.track(items[0]!.id, blobs.write(sha256, bytes, referenced)).catch((error) => {
              throw diskError(unwrap(error))
            })
          }
        }
        const now = clock()
        result = await this.parts.track(items[0]!.id, this.parts.store.uploads.createComplete(items.map((item) => ({
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
          for (const sha256 of contents.keys()) if (!present.has(sha256) && !(await this.parts.store.library.blobIsReferenced(sha256))) await blobs.remove(sha256)
        }
      }
      return result
    })
    if (!recorded) return null
    await this.parts.store.durable()
    return Promise.all(items.map((item) => this.parts.status(item.id)))
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
    await this.parts.requireFolder(args.folderId)
    admit = await this.parts.roomFor(Math.min(args.declaredBytes, this.parts.deps.config.maxFileBytes), args.owner, admit)
    // Limits are checked against the declared size, and the upload may not exceed it.
    const limit = admit ? Math.min(args.declaredBytes, this.parts.deps.config.maxFileBytes) : this.parts.deps.config.maxFileBytes
    const now = this.parts.deps.clock()
    const { upload } = await this.parts.store.uploads.create({
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
      const limited = limitBytes(this.parts.whileLinkOpen(args.owner, body), limit)
      const written = await this.parts.track(upload.id, this.parts.deps.staging.write(upload.id, 0, limited, Number.MAX_SAFE_INTEGER, { whole: true }))
      await this.parts.store.uploads.setWholeSize(upload.id, written)
      claimed = (await this.parts.store.uploads.recordChunk(upload.id, 0, written, this.parts.deps.clock(), this.parts.lease())).claimed
    } catch (error) {
      // A plain upload cannot be resumed, so its partial bytes are of no use to anyone.
      const cause = unwrap(error)
      await this.parts.fail(upload.id, cause instanceof DomainError ? cause.message : 'The upload was interrupted')
      throw diskError(cause)
    }
    if (!hold) await this.finalization.finalize(upload.id, claimed)
    return this.parts.status(upload.id)
  }


  /** Finalises whole files received with `hold` (their finalisation was claimed when their bytes were all there). */
  async finishHeld(held: UploadStatus[]): Promise<UploadStatus[]> {
    for (const upload of held) await this.finalization.finalize(upload.id, upload.state === 'finalizing')
    return Promise.all(held.map((upload) => this.parts.status(upload.id)))
  }


  /** Forgets whole files received with `hold` whose request was refused: no row, no staged bytes. */
  async abandonHeld(held: UploadStatus[]) {
    for (const upload of held) {
      if (await this.parts.store.uploads.transition(upload.id, ['receiving', 'finalizing'], 'failed', this.parts.deps.clock())) await this.parts.store.uploads.remove(upload.id)
      this.parts.hashes.forget(upload.id)
    }
    await this.parts.store.durable()
    for (const upload of held) await this.parts.removeStaged(upload.id)
  }

}
