import type { TestBucket } from '../helpers/s3.ts'

/** Every object and multipart upload in the bucket: what its owner pays for. */
export async function billable(bucket: TestBucket): Promise<string[]> {
  const uploads = await bucket.multipartUploads()
  return [...(await bucket.keys()), ...uploads.map((upload) => `${upload.key} (multipart upload)`)]
}
