import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { s3Client, type S3Settings } from '../../src/adapters/s3/index.ts'
import { describeNeeding, type Service } from '../helpers/services.ts'

// TEMPORARY until s3infra's tests/helpers/s3.ts is merged: the same idea, to be replaced by it.
const ceph: Service = {
  name: 'Ceph RGW',
  missing: () => (process.env.TEST_S3_ENDPOINT ? null : 'TEST_S3_ENDPOINT is not set'),
  howToRun: 'eval "$(.ci/services/ceph.sh start)"',
}

export const describeS3 = (name: string, body: () => void) => describeNeeding([ceph], name, body)

/** Settings for a new, empty bucket of the test store. */
export async function freshBucket(): Promise<S3Settings> {
  const settings: S3Settings = {
    endpoint: process.env.TEST_S3_ENDPOINT!,
    region: process.env.TEST_S3_REGION ?? 'default',
    accessKeyId: process.env.TEST_S3_ACCESS_KEY_ID!,
    secretAccessKey: process.env.TEST_S3_SECRET_ACCESS_KEY!,
    forcePathStyle: true,
    bucket: `dropfold-${randomBytes(6).toString('hex')}`,
    prefix: '',
  }
  const client = s3Client(settings)
  await client.send(new CreateBucketCommand({ Bucket: settings.bucket }))
  client.destroy()
  return settings
}
