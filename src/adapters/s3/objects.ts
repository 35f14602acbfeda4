import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { DomainError } from '../../core/errors.ts'

export type Log = (message: string, context?: Record<string, unknown>) => void

/** How long a client waits before trying again when the store does not answer. */
const RETRY_AFTER_SECONDS = 5

export interface StoredPart {
  /** 1-based, as S3 numbers them. */
  number: number
  sizeBytes: number
  etag: string
}

/**
 * One bucket (under a prefix), in the few operations the adapter needs. Every failure of the
 * store itself (unreachable, 5xx, throttled, a request cut off) becomes a DomainError
 * 'unavailable' that the HTTP layer answers with 503 and Retry-After; its message never holds
 * credentials, and the original goes to the log (the SDK's own messages name no secret).
 */
export class Bucket {
  constructor(
    private readonly client: S3Client,
    readonly name: string,
    private readonly prefix: string,
    private readonly log: Log,
  ) {}

  key(name: string) {
    return this.prefix + name
  }

  private async call<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (error) {
      throw this.translate(what, error)
    }
  }

  private translate(what: string, error: unknown): unknown {
    if (error instanceof DomainError) return error
    const status = (error as S3ServiceException).$metadata?.httpStatusCode
    // A refusal of this request (4xx) is ours to handle; anything else is the store failing.
    if (error instanceof S3ServiceException && status !== undefined && status < 500 && status !== 408 && status !== 429) return error
    this.log('object store unavailable', { operation: what, error: describe(error) })
    return new DomainError('unavailable', 'The file store is not answering; try again shortly', { retryAfterSeconds: RETRY_AFTER_SECONDS })
  }

  async put(name: string, body: Uint8Array, options: { metadata?: Record<string, string>; ifAbsent?: boolean } = {}): Promise<boolean> {
    try {
      await this.call('put', () =>
        this.client.send(new PutObjectCommand({ Bucket: this.name, Key: this.key(name), Body: body, ContentLength: body.length, Metadata: options.metadata, IfNoneMatch: options.ifAbsent ? '*' : undefined })),
      )
      return true
    } catch (error) {
      if (options.ifAbsent && statusOf(error) === 412) return false
      throw error
    }
  }

  /** Size and metadata of an object, or null when there is none. */
  async head(name: string): Promise<{ sizeBytes: number; metadata: Record<string, string> } | null> {
    try {
      const head = await this.call('head', () => this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: this.key(name) })))
      return { sizeBytes: head.ContentLength ?? 0, metadata: head.Metadata ?? {} }
    } catch (error) {
      if (statusOf(error) === 404) return null
      throw error
    }
  }

  /** The bytes [start, end) of an object, streamed; null when there is no such object. */
  async get(name: string, start: number, end: number): Promise<ReadableStream<Uint8Array> | null> {
    if (end <= start) return new ReadableStream({ start: (controller) => controller.close() })
    try {
      const answer = await this.call('get', () => this.client.send(new GetObjectCommand({ Bucket: this.name, Key: this.key(name), Range: `bytes=${start}-${end - 1}` })))
      return answer.Body!.transformToWebStream() as ReadableStream<Uint8Array>
    } catch (error) {
      if (statusOf(error) === 404) return null
      throw error
    }
  }

  /** The bytes [start, end) of an object, in memory (for pieces, at most a part). */
  async bytes(name: string, start: number, end: number): Promise<Uint8Array | null> {
    if (end <= start) return new Uint8Array(0)
    try {
      return await this.call('get', async () => {
        const answer = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: this.key(name), Range: `bytes=${start}-${end - 1}` }))
        return answer.Body!.transformToByteArray()
      })
    } catch (error) {
      if (statusOf(error) === 404) return null
      throw error
    }
  }

  async delete(name: string) {
    await this.call('delete', () => this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: this.key(name) })))
  }

  /** Names (without the prefix) of the objects under `under`, each with its size. */
  async list(under: string): Promise<{ name: string; sizeBytes: number }[]> {
    const found: { name: string; sizeBytes: number }[] = []
    let token: string | undefined
    do {
      const page = await this.call('list', () => this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: this.key(under), ContinuationToken: token })))
      for (const object of page.Contents ?? []) found.push({ name: object.Key!.slice(this.prefix.length), sizeBytes: object.Size ?? 0 })
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return found
  }

  /** The distinct next path segments under `under` (`under` + segment + '/…'). */
  async folders(under: string): Promise<string[]> {
    const found: string[] = []
    let token: string | undefined
    do {
      const page = await this.call('list', () => this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: this.key(under), Delimiter: '/', ContinuationToken: token })))
      for (const common of page.CommonPrefixes ?? []) found.push(common.Prefix!.slice(this.key(under).length).replace(/\/$/, ''))
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return found
  }

  async createMultipart(name: string): Promise<string> {
    const created = await this.call('create multipart upload', () => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.name, Key: this.key(name) })))
    return created.UploadId!
  }

  async uploadPart(name: string, multipartId: string, number: number, body: Uint8Array): Promise<StoredPart> {
    const stored = await this.call('upload part', () =>
      this.client.send(new UploadPartCommand({ Bucket: this.name, Key: this.key(name), UploadId: multipartId, PartNumber: number, Body: body, ContentLength: body.length })),
    )
    return { number, sizeBytes: body.length, etag: stored.ETag! }
  }

  /** The parts stored so far, or null when the multipart upload is no more (completed or aborted). */
  async parts(name: string, multipartId: string): Promise<StoredPart[] | null> {
    const found: StoredPart[] = []
    let marker: string | undefined
    try {
      do {
        const page = await this.call('list parts', () => this.client.send(new ListPartsCommand({ Bucket: this.name, Key: this.key(name), UploadId: multipartId, PartNumberMarker: marker })))
        for (const part of page.Parts ?? []) found.push({ number: part.PartNumber!, sizeBytes: part.Size ?? 0, etag: part.ETag! })
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined
      } while (marker)
    } catch (error) {
      if (statusOf(error) === 404) return null
      throw error
    }
    return found
  }

  async completeMultipart(name: string, multipartId: string, parts: StoredPart[]) {
    await this.call('complete multipart upload', () =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.name,
          Key: this.key(name),
          UploadId: multipartId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.number, ETag: part.etag })) },
        }),
      ),
    )
  }

  async abortMultipart(name: string, multipartId: string) {
    try {
      await this.call('abort multipart upload', () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: this.key(name), UploadId: multipartId })))
    } catch (error) {
      if (statusOf(error) !== 404) throw error
    }
  }

  /** The multipart uploads in progress under `under`: object name (without the prefix) and id. */
  async multiparts(under: string): Promise<{ name: string; multipartId: string }[]> {
    const found: { name: string; multipartId: string }[] = []
    let keyMarker: string | undefined
    let idMarker: string | undefined
    do {
      const page = await this.call('list multipart uploads', () =>
        this.client.send(new ListMultipartUploadsCommand({ Bucket: this.name, Prefix: this.key(under), KeyMarker: keyMarker, UploadIdMarker: idMarker })),
      )
      for (const upload of page.Uploads ?? []) found.push({ name: upload.Key!.slice(this.prefix.length), multipartId: upload.UploadId! })
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
      idMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined
    } while (keyMarker)
    return found
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as S3ServiceException)?.$metadata?.httpStatusCode
}

/** An error for the log: its name, code and message only (never a request with its signature). */
function describe(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string }
  return [e?.name, e?.code, e?.message].filter(Boolean).join(': ') || String(error)
}
