import { afterEach, beforeEach, expect, test } from 'bun:test'
import { openS3Storage } from '../../src/adapters/s3/index.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { describeS3, freshBucket, type TestBucket } from '../helpers/s3.ts'
import { billable } from './billable.ts'

const MiB = 1024 * 1024
const id = () => crypto.randomUUID().replaceAll('-', '')

async function* once(bytes: Uint8Array) {
  yield bytes
}

async function readAll(iterable: AsyncIterable<Uint8Array>) {
  const pieces: Uint8Array[] = []
  for await (const piece of iterable) pieces.push(new Uint8Array(piece))
  return Buffer.concat(pieces)
}

let bucket: TestBucket
let opened: Awaited<ReturnType<typeof openS3Storage>>[]

describeS3('S3 staging in the bucket', () => {
  beforeEach(async () => {
    bucket = await freshBucket()
    opened = []
  })
  afterEach(async () => {
    for (const storage of opened) await storage.close()
    await bucket.drop()
  })

  const open = async () => {
    const storage = await openS3Storage(bucket.settings, () => {})
    opened.push(storage)
    return storage
  }

  test('small chunks that complete a part are assembled into it as they arrive: their pieces go', async () => {
    const { staging } = await open()
    const upload = id()
    const data = randomData(12 * MiB)
    await staging.begin(upload, { totalBytes: data.length, maxBytes: data.length, chunkBytes: MiB })
    for (let i = 0; i < 4; i++) await staging.write(upload, i * MiB, once(data.subarray(i * MiB, (i + 1) * MiB)), MiB)
    // Proves pieces are kept until their part is covered.
    expect((await billable(bucket)).filter((name) => name.includes('/piece/'))).toHaveLength(4)
    await staging.write(upload, 4 * MiB, once(data.subarray(4 * MiB, 5 * MiB)), MiB)
    expect((await billable(bucket)).filter((name) => name.includes('/piece/'))).toEqual([])
  })

  test('two instances beginning the same upload at once share one multipart upload: chunks written through both make the file', async () => {
    const [a, b] = [await open(), await open()]
    const upload = id()
    const data = randomData(2 * 8 * MiB)
    const layout = { totalBytes: data.length, maxBytes: data.length, chunkBytes: 8 * MiB }
    await Promise.all([a.staging.begin(upload, layout), b.staging.begin(upload, layout)])
    await Promise.all([a.staging.write(upload, 0, once(data.subarray(0, 8 * MiB)), 8 * MiB), b.staging.write(upload, 8 * MiB, once(data.subarray(8 * MiB)), 8 * MiB)])
    expect((await billable(bucket)).filter((name) => name.endsWith('(multipart upload)'))).toHaveLength(1)
    await a.staging.seal(upload, data.length)
    expect(sha256(await readAll(b.staging.read(upload, 0, data.length)))).toBe(sha256(data))
  })
})
