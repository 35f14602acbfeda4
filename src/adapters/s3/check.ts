import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { StartupError } from '../../startup-error.ts'
import { makeS3Client, redactSecret, s3Location, type S3Settings } from './settings.ts'

/** The bucket cannot be used as configured; the message says what to fix and never holds the secret key. */
export class S3Unusable extends StartupError {
  constructor(message: string, settings: S3Settings) {
    super(redactSecret(message, settings))
    this.name = 'S3Unusable'
  }
}

/** The whole check may take this long (a store that accepts connections but never answers). */
const CHECK_TIMEOUT_MS = 30_000

/**
 * At start-up: writes a small probe object under the prefix, reads it back and deletes it, so a
 * server that starts can store files; otherwise S3Unusable names what is wrong (endpoint
 * unreachable, wrong keys, no such bucket, not allowed to write, read or delete).
 */
export async function checkS3(settings: S3Settings): Promise<void> {
  const client = makeS3Client(settings, { maxAttempts: 2 })
  const key = `${settings.prefix}.dropfold-start-up-check/${crypto.randomUUID()}`
  const body = `Dropfold start-up check ${new Date().toISOString()}`
  const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS)
  const step = async <T>(doing: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run()
    } catch (error) {
      throw new S3Unusable(`cannot use ${s3Location(settings)}: ${explain(error, doing, settings)}`, settings)
    }
  }
  try {
    await step('write', () => client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: key, Body: body }), { abortSignal: signal }))
    const read = await step('read', async () => {
      const object = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: key }), { abortSignal: signal })
      return object.Body!.transformToString()
    })
    if (read !== body) {
      throw new S3Unusable(`cannot use ${s3Location(settings)}: an object written there read back different bytes`, settings)
    }
    await step('delete', () => client.send(new DeleteObjectCommand({ Bucket: settings.bucket, Key: key }), { abortSignal: signal }))
  } finally {
    client.destroy()
  }
}

interface S3Failure {
  name?: string
  code?: string
  message?: string
  $metadata?: { httpStatusCode?: number }
}

/** What went wrong, in words an operator acts on: which setting to look at. */
function explain(error: unknown, doing: string, settings: S3Settings): string {
  const failure = (error ?? {}) as S3Failure
  const name = failure.name ?? ''
  const status = failure.$metadata?.httpStatusCode
  const code = failure.code ?? (error as { cause?: { code?: string } })?.cause?.code
  switch (name) {
    case 'NoSuchBucket':
      return `the bucket "${settings.bucket}" does not exist (S3_BUCKET); create it, or name one that exists`
    case 'InvalidAccessKeyId':
      return 'the store does not know this access key (S3_ACCESS_KEY_ID)'
    case 'SignatureDoesNotMatch':
      return 'the secret key does not match the access key (S3_SECRET_ACCESS_KEY)'
    case 'AccessDenied':
    case 'AllAccessDisabled':
      return `these keys may not ${doing} objects in the bucket "${settings.bucket}"${settings.prefix ? ` under "${settings.prefix}"` : ''}; grant them PutObject, GetObject, DeleteObject and the multipart actions`
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return `the bucket is in another region than S3_REGION "${settings.region}"`
    case 'TimeoutError':
    case 'AbortError':
      return `the endpoint did not answer within ${CHECK_TIMEOUT_MS / 1000} s (S3_ENDPOINT)`
  }
  if (status === undefined) {
    const why = code ?? name ?? 'no answer'
    return `cannot reach the endpoint ${settings.endpoint} (${why}); check S3_ENDPOINT and that the store is running`
  }
  if (status === 404) return `the bucket "${settings.bucket}" does not exist (S3_BUCKET), or S3_ENDPOINT is not an S3 service`
  if (status === 403) return `the store refused to ${doing} an object (HTTP 403${name ? ` ${name}` : ''}); check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY`
  return `the store failed to ${doing} an object (HTTP ${status}${name ? ` ${name}` : ''})`
}
