import { afterEach, beforeEach, expect, test } from 'bun:test'
import { randomData, sha256 } from '../helpers/data.ts'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { describeS3, freshBucket, s3Env, type TestBucket } from '../helpers/s3.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

const MiB = 1024 * 1024
const TUS = { 'tus-resumable': '1.0.0' }

let bucket: TestBucket
let server: TestServer

/** Kills radosgw (as a crash would) or starts it again, returning once it answers. */
async function gateway(action: 'gateway-stop' | 'gateway-start') {
  const dir = process.env.CEPH_TEST_DIR
  if (!dir) throw new Error('this test stops the store: it needs CEPH_TEST_DIR from .ci/services/ceph.sh start')
  const done = Bun.spawn(['.ci/services/ceph.sh', action, dir], { stdout: 'ignore', stderr: 'inherit' })
  expect(await done.exited).toBe(0)
}

describeS3('uploads while the object store is down', () => {
  beforeEach(async () => {
    bucket = await freshBucket()
    server = await startTestServer(s3Env(bucket.settings))
  })
  afterEach(async () => {
    await gateway('gateway-start')
    await server.stop()
    await bucket.drop()
  })

  const patch = (location: string, offset: number, body: Uint8Array<ArrayBuffer>) =>
    server.fetch(location, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) }, body })
  const offsetOf = async (location: string) => Number((await server.fetch(location, { method: 'HEAD', headers: TUS })).headers.get('upload-offset'))
  const download = async (fileId: number) => new Uint8Array(await (await server.fetch(`/files/${fileId}/download`)).arrayBuffer())

  test('a tus PATCH and a Dropzone chunk sent while the store is down get 503 with Retry-After; both uploads resume once it is back and the files are intact', async () => {
    const data = randomData(10 * MiB + 5)
    const created = await server.fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-length': String(data.length), 'upload-metadata': `filename ${btoa('a.bin')}` } })
    const location = created.headers.get('location')!
    expect((await patch(location, 0, data.subarray(0, 3 * MiB))).status).toBe(204)
    const chunkBytes = 2 * MiB
    const send = (i: number) => sendChunk(server, chunkFields('outage', data.length, chunkBytes, i), chunkOf(data, chunkBytes, i), { fileName: 'b.bin' })
    expect((await send(0)).status).toBe(200)

    await gateway('gateway-stop')
    const refused = await patch(location, 3 * MiB, data.subarray(3 * MiB, 7 * MiB))
    expect(refused.status).toBe(503)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    const chunk = await send(1)
    expect(chunk.status).toBe(503)
    expect(Number(chunk.headers.get('retry-after'))).toBeGreaterThan(0)
    const bodies = (await refused.text()) + (await chunk.text())
    // Nothing of the store's internals or credentials reaches the client, nor the log.
    for (const secret of [bucket.settings.secretAccessKey, bucket.settings.accessKeyId, bucket.settings.endpoint]) {
      expect(bodies).not.toContain(secret)
      expect(server.logs.join('\n')).not.toContain(bucket.settings.secretAccessKey)
    }
    expect(await offsetOf(location)).toBe(3 * MiB)

    await gateway('gateway-start')
    const offset = await offsetOf(location)
    expect((await patch(location, offset, data.subarray(offset))).status).toBe(204)
    const tusUpload = await server.server.store.uploads.find(location.split('/').pop()!)
    expect(sha256(await download(tusUpload!.fileId!))).toBe(sha256(data))

    const answers = []
    for (let i = 1; i < Math.ceil(data.length / chunkBytes); i++) answers.push(await send(i))
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200))
    const last = (await answers.at(-1)!.json()) as { file: { id: number } }
    expect(sha256(await download(last.file.id))).toBe(sha256(data))
  })
})
