import { S3Client } from '@aws-sdk/client-s3'

import type { S3Settings } from '../../config.ts'

export type { S3Settings }

/** How long to wait for a connection, and for the next byte of a response, before a request fails (and is retried). */
export const S3_CONNECT_TIMEOUT_MS = 5_000
export const S3_IDLE_TIMEOUT_MS = 60_000
/** Attempts per request, with exponential backoff and jitter between them (the SDK's standard retry mode). */
export const S3_MAX_ATTEMPTS = 4

/**
 * A client for `settings`: timeouts on connecting and on a silent response, retries with
 * backoff for throttling, 5xx and network errors. Checksums are sent only where S3 requires
 * them: several S3-compatible stores reject the newer default ones.
 */
export function makeS3Client(settings: S3Settings, options: { maxAttempts?: number } = {}): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    maxAttempts: options.maxAttempts ?? S3_MAX_ATTEMPTS,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: S3_CONNECT_TIMEOUT_MS, requestTimeout: S3_IDLE_TIMEOUT_MS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

/** `text` with the secret key replaced, for anything that may reach a log or a person. */
export function redactSecret(text: string, settings: Pick<S3Settings, 'secretAccessKey'>): string {
  return settings.secretAccessKey ? text.replaceAll(settings.secretAccessKey, '[secret key]') : text
}

/** "s3://bucket/prefix" on "endpoint": where the files are, for messages (no credentials). */
export function s3Location(settings: S3Settings): string {
  return `s3://${settings.bucket}/${settings.prefix} at ${settings.endpoint}`
}
