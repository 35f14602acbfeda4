import type { BlobStore } from '../../ports/blobs.ts'
import type { Staging } from '../../ports/staging.ts'
import { S3BlobStore } from './blobs.ts'
import { Bucket, type Log } from './objects.ts'
import { makeS3Client, type S3Settings } from './settings.ts'
import { S3Staging } from './staging.ts'

/** Staging and blob store in one S3 bucket (docs/s3.md). */
export async function openS3Storage(settings: S3Settings, log: Log): Promise<{ staging: Staging; blobs: BlobStore; close(): Promise<void> }> {
  const client = makeS3Client(settings)
  const bucket = new Bucket(client, settings.bucket, settings.prefix, log)
  const staging = new S3Staging(bucket, log)
  const blobs = new S3BlobStore(bucket, staging, log)
  return {
    staging,
    blobs,
    close: async () => client.destroy(),
  }
}
