import { afterEach, beforeEach, expect, test } from 'bun:test'
import { randomData } from '../helpers/data.ts'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { describeS3, freshBucket, s3Env, type TestBucket } from '../helpers/s3.ts'
import { post, uploadFile } from '../library/helpers.ts'
import { startClockedServer } from '../links/helpers.ts'
import { billable } from './billable.ts'

const MiB = 1024 * 1024
const TUS = { 'tus-resumable': '1.0.0' }

let bucket: TestBucket
let server: Awaited<ReturnType<typeof startClockedServer>>

describeS3('nothing billable is left in the bucket', () => {
  beforeEach(async () => {
    bucket = await freshBucket()
    server = await startClockedServer({ ...s3Env(bucket.settings), SESSION_TTL_HOURS: '1000' })
  })
  afterEach(async () => {
    await server.stop()
    await bucket.drop()
  })

  /** A tus upload with a whole part and a piece of another already stored. */
  async function halfSentTus() {
    const created = await server.fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-length': String(20 * MiB), 'upload-metadata': `filename ${btoa('half.bin')}` } })
    const location = created.headers.get('location')!
    const sent = await server.fetch(location, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, body: randomData(9 * MiB) })
    expect(sent.status).toBe(204)
    return location
  }

  test('after a cancelled upload, an expired one, and files deleted and purged from the trash', async () => {
    const cancelled = await halfSentTus()
    const expired = await halfSentTus()
    // A Dropzone upload half sent in chunks smaller than a part, and two finished files.
    const data = randomData(7 * MiB)
    for (const i of [0, 2, 4]) expect((await sendChunk(server, chunkFields('half-dropzone', data.length, MiB, i), chunkOf(data, MiB, i))).status).toBe(200)
    const small = await uploadFile(server, 'small.txt', 'a small file')
    const large = await uploadFile(server, 'large.bin', randomData(6 * MiB + 1))
    // Proves each kind of thing was there to be cleaned up.
    const before = await billable(bucket)
    expect(before.filter((name) => name.endsWith('(multipart upload)')).length).toBeGreaterThanOrEqual(3)
    expect(before.some((name) => name.includes('/piece/'))).toBe(true)
    expect(before.some((name) => name.startsWith('blobs/'))).toBe(true)

    expect((await server.fetch(cancelled, { method: 'DELETE', headers: TUS })).status).toBe(204)
    server.advance(200 * 3_600_000)
    expect(await server.server.engine.expireStale()).toBe(2)
    expect((await server.fetch(expired, { method: 'HEAD', headers: TUS })).status).toBe(410)
    for (const file of [small, large]) expect((await post(server, `/files/${file.id}/delete`)).status).toBeLessThan(400)
    await server.server.engine.purgeTrash()
    expect(await billable(bucket)).toEqual([])
  })
})
