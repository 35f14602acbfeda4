import { openS3Storage } from '../../src/adapters/s3/index.ts'
import { billable } from '../s3/billable.ts'
import { describeS3, freshBucket, type TestBucket } from '../helpers/s3.ts'
import { storageContract } from './storage.ts'

describeS3('S3 storage', () => {
  storageContract('S3 (Ceph RGW)', async () => {
    const bucket: TestBucket = await freshBucket()
    const opened = [await openS3Storage(bucket.settings, () => {})]
    return {
      staging: opened[0]!.staging,
      blobs: opened[0]!.blobs,
      reopen: async () => {
        const again = await openS3Storage(bucket.settings, () => {})
        opened.push(again)
        return again
      },
      stored: () => billable(bucket),
      close: async () => {
        for (const storage of opened) await storage.close()
        await bucket.drop()
      },
    }
  })
})
