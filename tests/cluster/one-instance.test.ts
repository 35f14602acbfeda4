import { expect, test } from 'bun:test'
import { Upload } from 'tus-js-client'
import { describeWithNginx, type Cluster } from '../helpers/cluster.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { baseOptions, memoryUrlStorage, recordExchanges, run, settledOffset, tusHead, type TusExchange } from '../helpers/tus.ts'
import { clusterPerTest, download, fileIdNamed, multipartBody, requestFrom, resumeStored, uploadAbortedAt } from './helpers.ts'

/**
 * Dropfold behind the deployed nginx configuration (deploy/nginx/dropfold.conf), one instance
 * on SQLite: what clients do through nginx works as it does directly.
 */

const KiB = 1024
const MiB = 1024 * KiB

const start = clusterPerTest()

const patches = (exchanges: TusExchange[]) => exchanges.filter((e) => e.method === 'PATCH')
const bodyBytes = (exchanges: TusExchange[]) => exchanges.reduce((sum, e) => sum + e.bodyBytes, 0)
const isPatch = (uploadUrl: string) => (entry: { method: string; uri: string }) => entry.method === 'PATCH' && entry.uri === new URL(uploadUrl).pathname

async function downloadNamed(cluster: Cluster, name: string): Promise<Uint8Array> {
  const id = await fileIdNamed(cluster, name)
  expect(id).toBeDefined()
  return download(cluster, id!)
}

describeWithNginx('one Dropfold instance behind nginx', () => {
  test('tus-js-client uploads through nginx with parallelUploads: 3; every request went through nginx to the instance', async () => {
    const cluster = await start()
    const data = Buffer.from(randomData(5 * MiB + 12345))
    const record = recordExchanges()
    const upload = new Upload(data, { ...baseOptions(cluster), ...record.hooks, parallelUploads: 3, chunkSize: 1 * MiB, metadata: { filename: 'parallel.bin' } })
    await run(upload)

    expect(record.exchanges.filter((e) => e.method === 'POST')).toHaveLength(4)
    expect(patches(record.exchanges).every((e) => e.status === 204)).toBe(true)
    expect(bodyBytes(record.exchanges)).toBe(data.length)
    // nginx logged every request tus-js-client made, each answered by the instance.
    const logged = await cluster.logged((e) => e.uri.startsWith('/tus/'), record.exchanges.length)
    expect(logged).toHaveLength(record.exchanges.length)
    expect(logged.every((e) => e.upstream === cluster.instances[0]!.address)).toBe(true)
    expect(logged.filter((e) => e.method === 'PATCH').reduce((sum, e) => sum + e.requestLength, 0)).toBeGreaterThan(data.length)

    expect(sha256(await downloadNamed(cluster, 'parallel.bin'))).toBe(sha256(data))
  })

  test('tus-js-client aborted half-way resumes through nginx from the offset the server kept and sends only the rest', async () => {
    const cluster = await start()
    const data = Buffer.from(randomData(8 * MiB + 777))
    const urlStorage = memoryUrlStorage()
    const options = baseOptions(cluster, {
      chunkSize: 512 * KiB,
      metadata: { filename: 'resumed.bin' },
      storeFingerprintForResuming: true,
      urlStorage,
      fingerprint: async () => `fp-${sha256(data)}`,
    })

    // First attempt: aborted (not terminated) once 40% went out.
    const first = await uploadAbortedAt(0.4, data, options)
    const uploadUrl = first.upload.url!
    expect(new URL(uploadUrl).origin).toBe(cluster.url)
    const offset = await settledOffset(cluster, uploadUrl)
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThan(data.length)

    // Second attempt: a fresh Upload finds it, asks HEAD through nginx, and PATCHes from there.
    const second = await resumeStored(data, options)
    expect(second.upload.url).toBe(uploadUrl)
    expect(second.exchanges[0]).toMatchObject({ method: 'HEAD', status: 200 })
    expect(Number(second.exchanges[0]!.responseHeaders!['upload-offset'])).toBe(offset)
    expect(patches(second.exchanges)[0]!.headers['Upload-Offset']).toBe(String(offset))
    expect(patches(second.exchanges).every((e) => e.status === 204)).toBe(true)
    expect(bodyBytes(second.exchanges)).toBe(data.length - offset)

    // Every PATCH of both attempts went through nginx.
    const sentPatches = patches(first.exchanges).length + patches(second.exchanges).length
    const logged = await cluster.logged(isPatch(uploadUrl), sentPatches)
    expect(logged).toHaveLength(sentPatches)
    expect((await tusHead(cluster, uploadUrl)).offset).toBe(data.length)
    expect(sha256(await downloadNamed(cluster, 'resumed.bin'))).toBe(sha256(data))
  })

  test('a tus upload sent in one PATCH, larger than the largest chunk, passes nginx (tus-js-client sends one PATCH unless given a chunkSize)', async () => {
    const cluster = await start()
    const data = Buffer.from(randomData(64 * MiB + 5))
    const record = recordExchanges()
    await run(new Upload(data, { ...baseOptions(cluster), ...record.hooks, metadata: { filename: 'one-patch.bin' } }))
    expect(patches(record.exchanges)).toHaveLength(1)
    expect(patches(record.exchanges)[0]).toMatchObject({ status: 204, bodyBytes: data.length })
    expect(sha256(await downloadNamed(cluster, 'one-patch.bin'))).toBe(sha256(data))
  })

  test('a download through nginx keeps its length, ETag and Range answers', async () => {
    const cluster = await start()
    const data = randomData(3 * MiB + 5)
    const form = new FormData()
    form.append('file', new Blob([data]), 'ranged.bin')
    const stored = await cluster.fetch('/upload', { method: 'POST', body: form })
    expect(stored.status).toBe(200)
    const { file } = (await stored.json()) as { file: { id: number } }
    const path = `/files/${file.id}/download`

    const direct = await fetch(cluster.instances[0]!.url + path, { headers: { cookie: cluster.cookie } })
    const proxied = await cluster.fetch(path)
    expect(proxied.status).toBe(200)
    expect(proxied.headers.get('content-length')).toBe(String(data.length))
    expect(proxied.headers.get('etag')).toBe(direct.headers.get('etag'))
    expect(sha256(new Uint8Array(await proxied.arrayBuffer()))).toBe(sha256(data))
    await direct.arrayBuffer()

    const range = await cluster.fetch(path, { headers: { range: `bytes=${2 * MiB}-${2 * MiB + 99}` } })
    expect(range.status).toBe(206)
    expect(range.headers.get('content-range')).toBe(`bytes ${2 * MiB}-${2 * MiB + 99}/${data.length}`)
    expect(new Uint8Array(await range.arrayBuffer())).toEqual(data.subarray(2 * MiB, 2 * MiB + 100))
  })

  test('the client address Dropfold records is the real client, never an X-Forwarded-For the client wrote', async () => {
    const cluster = await start({ env: { TRUST_PROXY: '1' } })
    const instance = cluster.instances[0]!
    const forged = { 'x-forwarded-for': '6.6.6.6' }
    // nginx connects to the instance from 127.0.0.1; the client comes from 127.0.0.3.
    const failedLogin = await requestFrom('127.0.0.3', `${cluster.url}/login`, {
      method: 'POST',
      headers: { ...forged, 'content-type': 'application/x-www-form-urlencoded' },
      body: [new TextEncoder().encode('password=wrong+guess')],
    })
    expect(failedLogin.status).toBe(401)
    const form = new FormData()
    form.append('file', new Blob(['hello from 127.0.0.3\n']), 'from-client.txt')
    const multipart = await multipartBody(form)
    const upload = await requestFrom('127.0.0.3', `${cluster.url}/upload`, {
      method: 'POST',
      headers: { ...forged, cookie: cluster.cookie, 'content-type': multipart.contentType },
      body: [multipart.bytes],
    })
    expect(upload).toMatchObject({ status: 200 })
    const fileId = (JSON.parse(upload.body) as { file: { id: number } }).file.id

    // The same forged header sent to the instance directly, bypassing nginx, is believed
    // (TRUST_PROXY=1 trusts whoever connects): only nginx replacing it keeps it out.
    const bypass = await requestFrom('127.0.0.4', `${instance.url}/login`, {
      method: 'POST',
      headers: { 'x-forwarded-for': '6.6.6.7', 'content-type': 'application/x-www-form-urlencoded' },
      body: [new TextEncoder().encode('password=wrong+again')],
    })
    expect(bypass.status).toBe(401)

    const activity = await (await cluster.fetch('/activity/list?action=login.failure')).text()
    const addresses = [...activity.matchAll(/<td>([^<]*)<\/td>\s*<\/tr>/g)].map((m) => m[1])
    expect(addresses.sort()).toEqual(['127.0.0.3', '6.6.6.7'])
    const detail = await (await cluster.fetch(`/files/${fileId}`)).text()
    expect(detail).toContain('from 127.0.0.3')
    expect(detail).not.toContain('6.6.6.6')
  })
})
