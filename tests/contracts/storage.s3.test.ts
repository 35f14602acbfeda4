import { openS3Storage } from '../../src/adapters/s3/index.ts'
import { billable, describeS3, freshBucket } from '../s3/ceph.ts'
import { storageContract } from './storage.ts'

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
