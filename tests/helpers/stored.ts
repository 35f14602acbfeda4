import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { TestServer } from './server.ts'

/**
 * What a test server's storage holds, read through its ports (`server.server.staging`,
 * `.blobs`) or, for the list of blobs, the bucket itself: the same question on the local disk
 * and on S3. Tests about the local disk as such (file modes, fsync, a full disk) look at
 * DATA_DIR instead and are marked `localDiskTest(why)`.
 */

type Stored = Pick<TestServer, 'server' | 'dataDir' | 'bucket'>

/** The uploads that have staged bytes (their ids). */
export const stagedUploads = (server: Pick<TestServer, 'server'>): Promise<string[]> => server.server.staging.list()

/** How many uploads have staged bytes. */
export const stagedUploadCount = async (server: Pick<TestServer, 'server'>) => (await stagedUploads(server)).length

/** Whether the blob store holds the content `sha256`. */
export const blobStored = (server: Pick<TestServer, 'server'>, sha256: string) => server.server.blobs.has(sha256)

const SHA256 = /^[0-9a-f]{64}$/

/** The SHA-256 of every content the blob store holds, sorted. */
export async function storedBlobs(server: Stored): Promise<string[]> {
  const names = server.bucket
    ? (await server.bucket.keys()).filter((key) => key.startsWith(`${server.bucket!.settings.prefix}blobs/`)).map((key) => key.split('/').at(-1)!)
    : readdirSync(join(server.dataDir, 'blobs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)
  return names.filter((name) => SHA256.test(name)).sort()
}
