import type { S3Settings } from '../../src/adapters/s3/index.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

/** A test server keeping uploads and files in the bucket of `settings`. */
export async function startS3Server(settings: S3Settings): Promise<TestServer> {
  // TEMPORARY until s3infra's wiring is merged: then startTestServer(s3Env(settings)).
  process.env.DROPFOLD_TEMP_S3 = JSON.stringify(settings)
  try {
    return await startTestServer()
  } finally {
    delete process.env.DROPFOLD_TEMP_S3
  }
}
