import { S3Client } from '@aws-sdk/client-s3'
import type { BlobStore } from '../../ports/blobs.ts'
import type { Staging } from '../../ports/staging.ts'
import { S3BlobStore } from './blobs.ts'
import { Bucket, type Log } from './objects.ts'
import { S3Staging } from './staging.ts'

/** What the adapter needs to reach its bucket (settings.ts, from s3-infra, parses them). */
export interface S3Settings {
  endpoint: string
  region: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  forcePathStyle: boolean
  /** Put before every object name ('' or ending in '/'). */
  prefix: string
}

export function s3Client(settings: S3Settings) {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // Checksums only where S3 requires them: S3-compatible stores do not all take the newer ones.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
  })
}

/** Staging and blob store in one S3 bucket (docs/s3.md). */
export async function openS3Storage(settings: S3Settings, log: Log): Promise<{ staging: Staging; blobs: BlobStore; close(): Promise<void> }> {
  const client = s3Client(settings)
  const bucket = new Bucket(client, settings.bucket, settings.prefix, log)
  const staging = new S3Staging(bucket, log)
  const blobs = new S3BlobStore(bucket, staging, log)
  return {
    staging,
    blobs,
    close: async () => client.destroy(),
  }
}
