import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { openS3Storage, s3Client, type S3Settings } from '../../src/adapters/s3/index.ts'
import { describeS3, freshBucket } from '../s3/ceph.ts'
import { storageContract } from './storage.ts'

/** Every object and multipart upload in the bucket: what the owner pays for. */
export async function billable(settings: S3Settings): Promise<string[]> {
  const client = s3Client(settings)
  try {
    const objects = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket }))
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: settings.bucket }))
    return [...(objects.Contents ?? []).map((object) => object.Key!), ...(uploads.Uploads ?? []).map((upload) => `${upload.Key} (multipart upload)`)]
  } finally {
    client.destroy()
  }
}

describeS3('S3 storage', () => {
  storageContract('S3 (Ceph RGW)', async () => {
    const settings = await freshBucket()
    const opened = [await openS3Storage(settings, () => {})]
    return {
      staging: opened[0]!.staging,
      blobs: opened[0]!.blobs,
      reopen: async () => {
        const again = await openS3Storage(settings, () => {})
        opened.push(again)
        return again
      },
      stored: () => billable(settings),
      close: async () => {
        for (const storage of opened) await storage.close()
      },
    }
  })
})
