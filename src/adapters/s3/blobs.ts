import type { BlobStore } from '../../ports/blobs.ts'
import { blobName, objectName, TARGET } from './names.ts'
import type { Bucket, Log } from './objects.ts'
import type { S3Staging } from './staging.ts'

/** Blobs whose object is remembered; a stale entry costs one more look-up (see body). */
const REMEMBERED = 10_000

/**
 * Blobs in an S3 bucket. An adopted upload's object stays where its multipart upload put it:
 * `blobs/<sha256>` is an empty pointer naming it. A small file written from memory is the
 * pointer's own bytes. Downloads are ranged GETs, streamed.
 */
export class S3BlobStore implements BlobStore {
  /** sha256 → the object holding its bytes. */
  private readonly objects = new Map<string, string>()

  constructor(
    private readonly bucket: Bucket,
    private readonly staging: S3Staging,
    private readonly log: Log,
  ) {}

  async has(sha256: string) {
    return (await this.bucket.head(blobName(sha256))) !== null
  }

  /** The object a blob's pointer names (its own name for a blob holding its bytes), or null without a blob. */
  private async lookUp(sha256: string): Promise<string | null> {
    const pointer = await this.bucket.head(blobName(sha256))
    if (!pointer) return null
    const object = pointer.metadata[TARGET] ?? blobName(sha256)
    this.remember(sha256, object)
    return object
  }

  private remember(sha256: string, object: string) {
    this.objects.delete(sha256)
    this.objects.set(sha256, object)
    if (this.objects.size > REMEMBERED) this.objects.delete(this.objects.keys().next().value!)
  }

  async adopt(uploadId: string, sha256: string, existing: 'trusted' | 'replace') {
    const object = objectName(uploadId)
    if (!(await this.bucket.head(object))) throw new Error(`the staging of ${uploadId} is not sealed`)
    const current = await this.lookUp(sha256)
    // Kept: the staging's remove deletes this upload's object, as no blob points at it.
    if (current && existing === 'trusted') return
    await this.staging.markAdopted(uploadId, sha256)
    await this.bucket.put(blobName(sha256), new Uint8Array(0), { metadata: { [TARGET]: object } })
    this.remember(sha256, object)
    await this.dropReplaced(current, object)
  }

  async write(sha256: string, bytes: Uint8Array, _vouched: boolean) {
    // One PUT replaces an object at once: nobody sees a part of the new bytes.
    const current = await this.lookUp(sha256)
    await this.bucket.put(blobName(sha256), bytes)
    this.remember(sha256, blobName(sha256))
    await this.dropReplaced(current, blobName(sha256))
  }

  /** Deletes the object a replaced pointer named, unless it is the pointer itself or the new object. */
  private async dropReplaced(previous: string | null, now: string) {
    if (previous && previous !== now && !previous.startsWith('blobs/')) {
      await this.bucket.delete(previous).catch((error) => this.log('replaced blob object not deleted', { object: previous, error: String(error) }))
    }
  }

  async body(sha256: string, start: number, end: number) {
    const remembered = this.objects.get(sha256)
    const first = remembered ?? (await this.lookUp(sha256))
    let stream = first ? await this.bucket.get(first, start, end) : null
    // Replaced meanwhile by another instance: look again.
    if (!stream && remembered) {
      const object = await this.lookUp(sha256)
      stream = object ? await this.bucket.get(object, start, end) : null
    }
    if (!stream) throw new Error(`blob ${sha256} is missing from the object store`)
    return stream
  }

  async remove(sha256: string) {
    const object = await this.lookUp(sha256)
    if (object && object !== blobName(sha256)) await this.bucket.delete(object)
    await this.bucket.delete(blobName(sha256))
    this.objects.delete(sha256)
  }
}
