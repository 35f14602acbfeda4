import { afterEach, beforeEach, expect, test } from 'bun:test'
import { inParallel, randomData, sha256, shuffled } from '../helpers/data.ts'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { describeS3, freshBucket, s3Env, type TestBucket } from '../helpers/s3.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { billable } from './billable.ts'

const MiB = 1024 * 1024
const TUS = { 'tus-resumable': '1.0.0' }

let bucket: TestBucket
let server: TestServer

describeS3('uploads through HTTP with files in S3', () => {
  beforeEach(async () => {
    bucket = await freshBucket()
    server = await startTestServer(s3Env(bucket.settings))
  })
  afterEach(async () => {
    await server.stop()
    await bucket.drop()
  })

  /** Sends every chunk, several at once and in shuffled order; returns the file id the last answer names. */
  async function dropzone(uuid: string, data: Uint8Array, chunkBytes: number): Promise<number> {
    const count = Math.ceil(data.length / chunkBytes)
    const answers = await inParallel(
      shuffled([...Array(count).keys()]).map((i) => async () => {
        const response = await sendChunk(server, chunkFields(uuid, data.length, chunkBytes, i), chunkOf(data, chunkBytes, i), { fileName: `${uuid}.bin` })
        expect(response.status).toBe(200)
        return (await response.json()) as { file?: { id: number } }
      }),
      4,
    )
    const file = answers.find((answer) => answer.file)?.file
    expect(file).toBeDefined()
    return file!.id
  }

  async function download(fileId: number, headers: Record<string, string> = {}) {
    const response = await server.fetch(`/files/${fileId}/download`, { headers })
    return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()) }
  }

  /** What the bucket holds besides blobs and their objects: staging, pieces, open multipart uploads. */
  const leftOver = async () => (await billable(bucket)).filter((name) => !/^(blobs\/[0-9a-f]{64}|objects\/[a-z0-9]+)$/.test(name))

  test('Dropzone chunks smaller than a part, sent at once and out of order, become the file, served whole and in ranges', async () => {
    const data = randomData(11 * MiB + 4321)
    const fileId = await dropzone('small-chunks', data, MiB)
    const whole = await download(fileId)
    expect(whole.status).toBe(200)
    expect(sha256(whole.bytes)).toBe(sha256(data))
    const range = await download(fileId, { range: `bytes=${5 * MiB - 10}-${6 * MiB + 9}` })
    expect(range.status).toBe(206)
    expect(sha256(range.bytes)).toBe(sha256(data.subarray(5 * MiB - 10, 6 * MiB + 10)))
    expect(await leftOver()).toEqual([])
  })

  test('Dropzone chunks of 8 MiB, sent at once and out of order, become the file; the same content again keeps one object', async () => {
    const data = randomData(2 * 8 * MiB + 99)
    const first = await dropzone('big-chunks', data, 8 * MiB)
    expect(sha256((await download(first)).bytes)).toBe(sha256(data))
    const objects = await billable(bucket)
    expect(objects).toHaveLength(2) // the blob's pointer and its object
    const second = await dropzone('same-again', data, 8 * MiB)
    expect(second).not.toBe(first)
    expect(await billable(bucket)).toEqual(objects)
    expect(sha256((await download(second)).bytes)).toBe(sha256(data))
  })

  test('tus PATCHes of odd sizes become the file, served whole and in ranges', async () => {
    const data = randomData(13 * MiB + 777)
    const created = await server.fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-length': String(data.length), 'upload-metadata': `filename ${btoa('odd.bin')}` } })
    expect(created.status).toBe(201)
    const location = created.headers.get('location')!
    const cuts = [0, 1_234_567, 5 * MiB + 1, 8 * MiB, 8 * MiB + 3, 12 * MiB, data.length]
    for (let i = 1; i < cuts.length; i++) {
      const response = await server.fetch(location, {
        method: 'PATCH',
        headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(cuts[i - 1]) },
        body: data.subarray(cuts[i - 1], cuts[i]),
      })
      expect(response.status).toBe(204)
      expect(response.headers.get('upload-offset')).toBe(String(cuts[i]))
    }
    const upload = await server.server.store.uploads.find(location.split('/').pop()!)
    expect(upload?.fileId).toBeNumber()
    expect(sha256((await download(upload!.fileId!)).bytes)).toBe(sha256(data))
    const range = await download(upload!.fileId!, { range: 'bytes=-1000' })
    expect(range.status).toBe(206)
    expect(range.bytes).toEqual(data.subarray(data.length - 1000))
    expect(await leftOver()).toEqual([])
  })
})
