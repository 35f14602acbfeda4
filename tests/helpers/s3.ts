import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3'
import { afterAll, beforeAll, test } from 'bun:test'
import { makeS3Client, type S3Settings } from '../../src/adapters/s3/settings.ts'
import { describeNeeding, type Service } from './services.ts'

/**
 * The S3-compatible store the S3 tests run against: `.ci/run` starts a private Ceph RGW
 * (`.ci/services/ceph.sh`) and sets these; so does `eval "$(.ci/services/ceph.sh start)"`.
 */
const TEST_S3 = {
  endpoint: process.env.TEST_S3_ENDPOINT || undefined,
  accessKeyId: process.env.TEST_S3_ACCESS_KEY_ID || '',
  secretAccessKey: process.env.TEST_S3_SECRET_ACCESS_KEY || '',
  region: process.env.TEST_S3_REGION || 'us-east-1',
}

export const S3: Service = {
  name: 'S3 (Ceph RGW)',
  missing: () => (TEST_S3.endpoint ? null : 'TEST_S3_ENDPOINT is not set'),
  howToRun:
    'Run them with a private single-node Ceph RGW: `eval "$(.ci/services/ceph.sh start)"` (installs the Debian packages if missing, ~20 s to boot), ' +
    'then `.ci/services/ceph.sh stop "$CEPH_TEST_DIR"` when done; or `.ci/services/ceph.sh run npm test`.',
}

/** `describe` for a suite that needs an S3-compatible store (see describeNeeding). */
export function describeS3(name: string, body: () => void) {
  return describeNeeding([S3], name, body)
}

/** The settings of a bucket on the test store (with `overrides`), as STORAGE=s3 would configure them. */
export function testS3Settings(bucket: string, overrides: Partial<S3Settings> = {}): S3Settings {
  if (!TEST_S3.endpoint) throw new Error('the S3 tests need TEST_S3_ENDPOINT (use describeS3)')
  return {
    endpoint: TEST_S3.endpoint,
    bucket,
    region: TEST_S3.region,
    accessKeyId: TEST_S3.accessKeyId,
    secretAccessKey: TEST_S3.secretAccessKey,
    forcePathStyle: true,
    prefix: '',
    ...overrides,
  }
}

/** The same settings as the environment variables a server process reads. */
export function s3Env(settings: S3Settings): Record<string, string> {
  return {
    STORAGE: 's3',
    S3_ENDPOINT: settings.endpoint,
    S3_BUCKET: settings.bucket,
    S3_REGION: settings.region,
    S3_ACCESS_KEY_ID: settings.accessKeyId,
    S3_SECRET_ACCESS_KEY: settings.secretAccessKey,
    S3_FORCE_PATH_STYLE: String(settings.forcePathStyle),
    S3_PREFIX: settings.prefix,
  }
}

export interface TestBucket {
  settings: S3Settings
  /** A client on the bucket, for looking at what is stored (and the test's own cleanup). */
  client: S3Client
  /** Every object key in the bucket. */
  keys(): Promise<string[]>
  /** Every object in the bucket with its size. */
  objects(): Promise<{ key: string; size: number }[]>
  /** Every multipart upload still open in the bucket (they cost money until aborted). */
  multipartUploads(): Promise<{ key: string; uploadId: string }[]>
  /** Empties the bucket (objects and multipart uploads) and deletes it. */
  drop(): Promise<void>
}

/** A new, empty bucket with a unique name on the test store. */
export async function freshBucket(overrides: Partial<S3Settings> = {}): Promise<TestBucket> {
  const settings = testS3Settings(`dropfold-test-${crypto.randomUUID()}`, overrides)
  const client = makeS3Client(settings)
  await client.send(new CreateBucketCommand({ Bucket: settings.bucket }))
  const bucket: TestBucket = {
    settings,
    client,
    async keys() {
      return (await bucket.objects()).map((o) => o.key)
    },
    async objects() {
      const objects: { key: string; size: number }[] = []
      let token: string | undefined
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket, ContinuationToken: token }))
        objects.push(...(page.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size ?? 0 })))
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      return objects
    },
    async multipartUploads() {
      const uploads: { key: string; uploadId: string }[] = []
      let keyMarker: string | undefined
      let uploadIdMarker: string | undefined
      for (;;) {
        const page = await client.send(new ListMultipartUploadsCommand({ Bucket: settings.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
        uploads.push(...(page.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! })))
        if (!page.IsTruncated) return uploads
        keyMarker = page.NextKeyMarker
        uploadIdMarker = page.NextUploadIdMarker
      }
    },
    async drop() {
      try {
        for (const { key, uploadId } of await bucket.multipartUploads()) {
          await client.send(new AbortMultipartUploadCommand({ Bucket: settings.bucket, Key: key, UploadId: uploadId }))
        }
        for (let keys = await bucket.keys(); keys.length > 0; keys = await bucket.keys()) {
          await client.send(new DeleteObjectsCommand({ Bucket: settings.bucket, Delete: { Objects: keys.slice(0, 1000).map((Key) => ({ Key })), Quiet: true } }))
        }
        await client.send(new DeleteBucketCommand({ Bucket: settings.bucket }))
      } finally {
        client.destroy()
      }
    },
  }
  return bucket
}

/**
 * Where servers started by startTestServer keep uploads and files: `TEST_STORAGE=s3` (with
 * TEST_S3_*, as `.ci/run` sets for its run of the HTTP suites on S3) puts each on a fresh
 * bucket of its own, dropped when it stops; anything else, DATA_DIR.
 */
export const TEST_STORAGE: 'local' | 's3' = process.env.TEST_STORAGE === 's3' ? 's3' : 'local'

if (TEST_STORAGE === 's3' && !TEST_S3.endpoint) {
  throw new Error('TEST_STORAGE=s3 needs TEST_S3_ENDPOINT and its keys: eval "$(.ci/services/ceph.sh start)"')
}

/** A fresh bucket for a test server when TEST_STORAGE=s3, else null (local disk). */
export const testStorageBucket = async (): Promise<TestBucket | null> => (TEST_STORAGE === 's3' ? freshBucket() : null)

/** One fresh bucket for the suite this is called in: created before its first test, emptied and deleted after its last. */
export function suiteBucket(): { readonly settings: S3Settings; readonly bucket: TestBucket } {
  let bucket: TestBucket | undefined
  beforeAll(async () => {
    bucket = await freshBucket()
  })
  afterAll(() => bucket?.drop())
  const current = () => {
    if (!bucket) throw new Error('the suite bucket exists only while its suite runs')
    return bucket
  }
  return {
    get settings() {
      return current().settings
    },
    get bucket() {
      return current()
    },
  }
}

/**
 * The `test` of a test file that looks into DATA_DIR itself (staging files, blob files) rather
 * than through HTTP or the storage ports (`server.server.staging`, `.blobs`):
 * `const test = localDiskTest(why)`. On the TEST_STORAGE=s3 run its tests are skipped and
 * listed with `why` (skippedOffLocalDisk).
 */
export function localDiskTest(why: string): typeof test {
  if (TEST_STORAGE === 'local') return test
  const skipped = test.skip as unknown as (name: string, ...rest: unknown[]) => void
  const skip = (name: string, ...rest: unknown[]) => {
    skippedOffLocalDisk().push(`${name} (${why})`)
    skipped(`${name} [local disk only: ${why}]`, ...rest)
  }
  return Object.assign(skip, { each: test.skip.each.bind(test.skip), skip: test.skip, only: test.skip, if: () => test.skip, todo: test.todo }) as unknown as typeof test
}

/** The tests skipped on S3 in this run, shared by every test file (bun runs them in one process). */
export function skippedOffLocalDisk(): string[] {
  const shared = globalThis as { dropfoldLocalDiskOnly?: string[] }
  return (shared.dropfoldLocalDiskOnly ??= [])
}
