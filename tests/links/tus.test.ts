import { afterEach, describe, expect, test } from 'bun:test'
import { Upload } from 'tus-js-client'
import { randomData, sha256 } from '../helpers/data.ts'
import type { TestServer } from '../helpers/server.ts'
import { adminPost, createLink, makeFolder, one, rows, stagingEntries, startLinkServer, TUS, tusMetadata, unlocked, visit, type CreatedLink } from './helpers.ts'


/** tus through a drop link: Upload-Length required, no concatenation, the link's folder and owner. */

let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

const create = (s: TestServer, link: CreatedLink, headers: Record<string, string>, cookie?: string) =>
  visit(s, `${link.path}/tus/`, { method: 'POST', headers: { ...TUS, ...headers }, cookie })

const patch = (s: TestServer, location: string, offset: number, body: Uint8Array, cookie?: string) =>
  visit(s, location, {
    method: 'PATCH',
    headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
    body: body as Uint8Array<ArrayBuffer>,
    cookie,
  })

describe('tus through a drop link', () => {
  test('creation with Upload-Length, PATCHes, HEAD: the file lands in the link’s folder, owned by link:<id>', async () => {
    const s = (server = await startLinkServer())
    const folder = await makeFolder(s, 1, 'From tus')
    const link = await createLink(s, { folder: String(folder), password: 'tus pass 42', allowDownload: 'on' })
    const data = randomData(300_000)
    const headers = { 'upload-length': String(data.length), 'upload-metadata': tusMetadata({ filename: 'recording.wav', folder: '1' }) }

    expect((await create(s, link, headers)).status).toBe(401)
    const cookie = await unlocked(s, link, 'tus pass 42')
    const created = await create(s, link, headers, cookie)
    expect(created.status).toBe(201)
    const location = created.headers.get('location')!
    expect(location).toMatch(new RegExp(`^/d/${link.token}/tus/[a-z0-9]{32}$`))

    expect((await patch(s, location, 0, data.subarray(0, 100_000), cookie)).headers.get('upload-offset')).toBe('100000')
    // Without the cookie, the upload cannot be touched.
    expect((await patch(s, location, 100_000, data.subarray(100_000), undefined)).status).toBe(401)
    expect((await visit(s, location, { method: 'HEAD', headers: TUS })).status).toBe(401)
    const head = await visit(s, location, { method: 'HEAD', headers: TUS, cookie })
    expect(head.status).toBe(200)
    expect(head.headers.get('upload-offset')).toBe('100000')
    expect(head.headers.get('upload-length')).toBe(String(data.length))
    const last = await patch(s, location, 100_000, data.subarray(100_000), cookie)
    expect(last.status).toBe(204)
    expect(last.headers.get('upload-offset')).toBe(String(data.length))

    const id = location.split('/').pop()!
    const upload = one<{ owner: string; state: string; folder_id: number; file_id: number }>(s, 'select owner, state, folder_id, file_id from uploads where id = ?', id)!
    expect(upload).toMatchObject({ owner: `link:${link.id}`, state: 'complete', folder_id: folder })
    expect(one(s, 'select name, folder_id, sha256 from files where id = ?', upload.file_id)).toEqual({ name: 'recording.wav', folder_id: folder, sha256: sha256(data) })
    const download = await visit(s, `${link.path}/files/${upload.file_id}/download`, { cookie })
    expect(download.status).toBe(200)
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(sha256(data))

    // The admin's tus endpoint does not know the visitor's upload, and the link's does not know the admin's.
    expect((await s.fetch(`/tus/${id}`, { method: 'HEAD', headers: TUS })).status).toBe(404)
    const adminCreated = await s.fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-length': '5', 'upload-metadata': tusMetadata({ filename: 'admin.bin' }) } })
    expect(adminCreated.status).toBe(201)
    const adminId = adminCreated.headers.get('location')!.split('/').pop()
    expect((await visit(s, `${link.path}/tus/${adminId}`, { method: 'HEAD', headers: TUS, cookie })).status).toBe(404)
    expect((await patch(s, `${link.path}/tus/${adminId}`, 0, new Uint8Array(5), cookie)).status).toBe(404)
    // Nor one of another link.
    const other = await createLink(s, { label: 'other' })
    expect((await visit(s, `${other.path}/tus/${id}`, { method: 'HEAD', headers: TUS })).status).toBe(404)
  }, 30_000)

  test('Upload-Defer-Length and Upload-Concat are refused with 400, and nothing is created', async () => {
    const s = (server = await startLinkServer())
    const link = await createLink(s)
    const name = { 'upload-metadata': tusMetadata({ filename: 'x.bin' }) }
    const refusals: Record<string, string>[] = [
      { 'upload-defer-length': '1', ...name },
      { 'upload-length': '10', 'upload-defer-length': '1', ...name },
      { 'upload-concat': 'partial', 'upload-length': '10', ...name },
      { 'upload-concat': `final;${link.path}/tus/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`, ...name },
      name, // neither length nor deferral
    ]
    for (const headers of refusals) {
      const response = await create(s, link, headers)
      expect({ headers, status: response.status }).toEqual({ headers, status: 400 })
      expect(response.headers.get('tus-resumable')).toBe('1.0.0')
    }
    expect(rows(s, 'select id from uploads')).toEqual([])
    expect(stagingEntries(s)).toEqual([])
    // The admin's endpoint still offers both.
    expect((await s.fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-defer-length': '1', ...name } })).status).toBe(201)
  }, 30_000)

  test('tus-js-client uploads through a link (creation-with-upload, chunks) and the limits apply', async () => {
    const s = (server = await startLinkServer())
    const link = await createLink(s, { maxFileSize: '200K', allowedTypes: '.bin' })
    const upload = (data: Uint8Array, filename: string) =>
      new Promise<string>((resolve, reject) => {
        const u = new Upload(Buffer.from(data), {
          endpoint: `${s.url}${link.path}/tus/`,
          metadata: { filename },
          chunkSize: 50_000,
          uploadDataDuringCreation: true,
          retryDelays: null as unknown as number[],
          storeFingerprintForResuming: false,
          onSuccess: () => resolve(u.url!),
          onError: (error) => reject(error),
        })
        u.start()
      })
    const data = randomData(150_000)
    const url = await upload(data, 'client.bin')
    const id = url.split('/').pop()!
    expect(one(s, 'select f.sha256, f.folder_id, u.owner from uploads u join files f on f.id = u.file_id where u.id = ?', id)).toEqual({
      sha256: sha256(data),
      folder_id: 1,
      owner: `link:${link.id}`,
    })
    await expect(upload(randomData(300_000), 'big.bin')).rejects.toThrow(/413/)
    await expect(upload(randomData(10), 'small.txt')).rejects.toThrow(/415/)
    // Switched off: tus-js-client is refused too.
    expect((await adminPost(s, `/links/${link.id}/disable`)).status).toBe(303)
    await expect(upload(randomData(10), 'late.bin')).rejects.toThrow(/410/)
  }, 30_000)

  test('switching the link off stops a tus upload in progress (410); switched on, it resumes', async () => {
    const s = (server = await startLinkServer())
    const link = await createLink(s)
    const data = randomData(20_000)
    const created = await create(s, link, { 'upload-length': String(data.length), 'upload-metadata': tusMetadata({ filename: 'paused.bin' }) })
    const location = created.headers.get('location')!
    expect((await patch(s, location, 0, data.subarray(0, 5000))).status).toBe(204)
    await adminPost(s, `/links/${link.id}/disable`)
    expect((await patch(s, location, 5000, data.subarray(5000))).status).toBe(410)
    expect((await visit(s, location, { method: 'HEAD', headers: TUS })).status).toBe(410)
    await adminPost(s, `/links/${link.id}/enable`)
    expect((await visit(s, location, { method: 'HEAD', headers: TUS })).headers.get('upload-offset')).toBe('5000')
    expect((await patch(s, location, 5000, data.subarray(5000))).status).toBe(204)
    expect(one(s, "select f.sha256 from files f where f.name = 'paused.bin'")).toEqual({ sha256: sha256(data) })
  }, 30_000)
})
