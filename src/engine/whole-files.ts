import { DomainError } from '../core/errors.ts'
import type { Admission, FileRecord } from '../core/records.ts'
import { withLocks } from '../ports/locker.ts'
import { diskError, unwrap } from './bodies.ts'
import { cleanFileName, mimeTypeOf } from './file-names.ts'
import { blobKey, newUploadId, type EngineParts } from './parts.ts'
import type { UploadStatus } from './types.ts'

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

/**
 * Whole files in memory, all in one request, stored in one step (all or none) without staging.
 * A whole file too large to hold is streamed like any upload (UploadEngine: begin, write, complete).
 */
export class WholeFiles {
  constructor(private readonly parts: EngineParts) {}

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
}
