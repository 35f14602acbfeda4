import { describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { basename, join } from 'node:path'
import { randomData, sha256 } from '../helpers/data.ts'
import { serverPerTest, type TestServer } from '../helpers/server.ts'
import {
  adminPost,
  CHUNK,
  createLink,
  editLink,
  makeFolder,
  one,
  rows,
  sendLinkChunk,
  stagingEntries,
  startLinkServer,
  TUS,
  tusMetadata,
  uploadThroughLink,
  visit,
  type CreatedLink,
} from './helpers.ts'


/**
 * A link's limits, enforced when an upload is created (first chunk or tus creation) and counting
 * uploads still in progress, so parallel uploads cannot overshoot them.
 */

const setUp = serverPerTest(startLinkServer)

/** Names of the blob files on disk. */
const blobsOnDisk = (s: TestServer) => (readdirSync(join(s.dataDir, 'blobs'), { recursive: true }) as string[]).map((p) => basename(p)).filter((name) => /^[0-9a-f]{64}$/.test(name))

const uploadsOf = (s: TestServer, link: CreatedLink) =>
  rows<{ client_key: string; state: string; folder_id: number; received_chunks: number }>(
    s,
    'select client_key, state, folder_id, received_chunks from uploads where owner = ? order by client_key',
    `link:${link.id}`,
  )

function tusCreate(s: TestServer, link: CreatedLink, length: number, fileName: string) {
  return visit(s, `${link.path}/tus/`, { method: 'POST', headers: { ...TUS, 'upload-length': String(length), 'upload-metadata': tusMetadata({ filename: fileName }) } })
}

describe('largest file', () => {
  test('a file over the limit is refused with 413 before a byte is stored; one at the limit is taken', async () => {
    const s = await setUp()
    const link = await createLink(s, { maxFileSize: '1M' })
    expect(one(s, 'select max_file_bytes from links where id = ?', link.id)).toEqual({ max_file_bytes: 1024 * 1024 })
    const page = await (await visit(s, link.path)).text()
    expect(page).toContain(`data-max-file-size="${1024 * 1024}"`)
    expect(page).toContain('Files up to')

    const tooBig = randomData(1024 * 1024 + 1)
    const refused = await sendLinkChunk(s, link, 'big', tooBig, 0)
    expect(refused.status).toBe(413)
    expect((await refused.json()).error).toContain(`up to ${1024 * 1024} bytes`)
    // Also when the client lies in later chunks' place: any chunk may be the first to arrive.
    expect((await sendLinkChunk(s, link, 'big', tooBig, 16)).status).toBe(413)
    expect((await tusCreate(s, link, 1024 * 1024 + 1, 'big.bin')).status).toBe(413)
    expect(uploadsOf(s, link)).toEqual([])
    expect(stagingEntries(s)).toEqual([])

    const exact = randomData(1024 * 1024)
    const done = await uploadThroughLink(s, link, exact, { uuid: 'exact' })
    expect(done.upload.state).toBe('complete')
    expect(one(s, 'select size_bytes, sha256 from files where id = ?', done.file!.id)).toEqual({ size_bytes: exact.length, sha256: sha256(exact) })
  }, 30_000)

  test('a plain multipart upload is held to the limit too, by its declared size', async () => {
    const s = await setUp()
    const link = await createLink(s, { maxFileSize: '100K' })
    const send = (bytes: number, name: string) => {
      const form = new FormData()
      form.append('file', new Blob([randomData(bytes)]), name)
      return visit(s, `${link.path}/upload`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
    }
    expect((await send(200 * 1024, 'big.bin')).status).toBe(413)
    const ok = await send(10 * 1024, 'small.bin')
    expect(ok.status).toBe(200)
    expect(one(s, 'select folder_id, size_bytes from files where name = ?', 'small.bin')).toEqual({ folder_id: 1, size_bytes: 10 * 1024 })
  }, 30_000)
})

describe('total size', () => {
  test('of three parallel uploads of 40% of the total each, exactly two are admitted; nothing is written for the third', async () => {
    const s = await setUp()
    const total = 1_000_000
    const link = await createLink(s, { maxTotalSize: String(total) })
    const size = 400_000 // 7 chunks of 64 KiB: all stay in progress after their first chunk
    const files = ['a', 'b', 'c'].map((name) => ({ uuid: `par-${name}`, name: `${name}.bin`, data: randomData(size) }))

    const first = await Promise.all(files.map((f) => sendLinkChunk(s, link, f.uuid, f.data, 0, { fileName: f.name })))
    const statuses = first.map((r) => r.status).sort()
    expect(statuses).toEqual([200, 200, 413])
    const refusedIndex = first.findIndex((r) => r.status === 413)
    const refusedBody = await first[refusedIndex]!.json()
    expect(refusedBody.error).toContain(`${total} bytes in total`)
    expect(refusedBody.error).toContain(`${total - 2 * size} bytes left`)
    const refused = files[refusedIndex]!
    const admitted = files.filter((f) => f !== refused)

    // Only the two admitted uploads exist, each with one chunk; the third left no row and no staged bytes.
    // Visitors' upload ids are kept apart per visitor; these requests carry no visitor cookie.
    expect(uploadsOf(s, link).map((u) => [u.client_key, u.state, u.received_chunks])).toEqual(admitted.map((f) => [`no-cookie:${f.uuid}`, 'receiving', 1]))
    expect(stagingEntries(s)).toHaveLength(2)
    expect((await visit(s, `${link.path}/upload/${refused.uuid}`)).status).toBe(404)
    // The page counts the uploads in progress.
    expect(await (await visit(s, link.path)).text()).toContain('200 KB left of 1.0 MB')

    // While the two are in progress, and after they complete, the third still does not fit…
    expect((await sendLinkChunk(s, link, refused.uuid, refused.data, 0, { fileName: refused.name })).status).toBe(413)
    for (const f of admitted) await uploadThroughLink(s, link, f.data, { uuid: f.uuid, fileName: f.name })
    expect(uploadsOf(s, link).map((u) => u.state)).toEqual(['complete', 'complete'])
    expect((await sendLinkChunk(s, link, refused.uuid, refused.data, 0, { fileName: refused.name })).status).toBe(413)
    expect((await tusCreate(s, link, size, 'tus.bin')).status).toBe(413)
    // … but what is left does.
    const rest = randomData(total - 2 * size)
    expect((await uploadThroughLink(s, link, rest, { fileName: 'rest.bin' })).upload.state).toBe('complete')
    expect((await sendLinkChunk(s, link, 'one-more', randomData(1), 0)).status).toBe(413)
    expect(one(s, 'select count(*) as n, sum(size_bytes) as bytes from files')).toEqual({ n: 3, bytes: total })
  }, 30_000)

  test('failed or abandoned uploads give their share back', async () => {
    const s = await setUp()
    const link = await createLink(s, { maxTotalSize: String(3 * CHUNK) })
    const data = randomData(3 * CHUNK)
    expect((await sendLinkChunk(s, link, 'first', data, 0)).status).toBe(200)
    expect((await sendLinkChunk(s, link, 'second', randomData(CHUNK), 0)).status).toBe(413)
    // The upload expires (as housekeeping would mark it).
    s.sql.run("update uploads set state = 'expired' where client_key = 'no-cookie:first'")
    expect((await sendLinkChunk(s, link, 'second', randomData(CHUNK), 0)).status).toBe(200)
  }, 30_000)
})

describe('number of files', () => {
  test('uploads started in parallel count: with room for 2, exactly 2 of 4 are admitted (403 for the others)', async () => {
    const s = await setUp()
    const link = await createLink(s, { maxFiles: '2' })
    const files = [0, 1, 2, 3].map((i) => ({ uuid: `n-${i}`, data: randomData(2 * CHUNK), name: `file-${i}.bin` }))
    const first = await Promise.all(files.map((f) => sendLinkChunk(s, link, f.uuid, f.data, 0, { fileName: f.name })))
    expect(first.map((r) => r.status).sort()).toEqual([200, 200, 403, 403])
    const body = await first.find((r) => r.status === 403)!.json()
    expect(body.error).toContain('at most 2 files')
    expect(uploadsOf(s, link)).toHaveLength(2)
    expect(stagingEntries(s)).toHaveLength(2)
    expect(await (await visit(s, link.path)).text()).toContain('0 of 2 files left')

    // The admitted ones finish (their further chunks are not new uploads); nothing else gets in.
    for (const [i, r] of first.entries()) {
      if (r.status !== 200) continue
      const done = await sendLinkChunk(s, link, files[i]!.uuid, files[i]!.data, 1, { fileName: files[i]!.name })
      expect((await done.json()).upload.state).toBe('complete')
    }
    expect((await sendLinkChunk(s, link, 'late', randomData(1), 0)).status).toBe(403)
    expect((await tusCreate(s, link, 1, 'late.bin')).status).toBe(403)
    expect(one(s, 'select count(*) as n from files')).toEqual({ n: 2 })

    // Raising the limit lets one more in.
    expect((await editLink(s, link.id, { maxFiles: '3' })).status).toBe(303)
    expect((await uploadThroughLink(s, link, randomData(5), { fileName: 'third.bin' })).upload.state).toBe('complete')
    expect((await sendLinkChunk(s, link, 'fourth', randomData(5), 0)).status).toBe(403)
  }, 30_000)

  test('small files sent whole and at once: with room for 2, exactly 2 of 5 are stored, and the others leave no bytes behind', async () => {
    const s = await setUp()
    const link = await createLink(s, { maxFiles: '2' })
    // Each file in one request and one chunk: checked before its bytes are written, and again
    // in the commit that records it, which is what holds when all five pass the first check.
    const files = [0, 1, 2, 3, 4].map((i) => ({ uuid: `whole-${i}`, data: randomData(10_000 + i), name: `whole-${i}.bin` }))
    const answers = await Promise.all(files.map((f) => sendLinkChunk(s, link, f.uuid, f.data, 0, { fileName: f.name })))
    expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 403, 403, 403])
    for (const answer of answers.filter((r) => r.status === 403)) expect((await answer.json()).error).toContain('at most 2 files')
    const stored = rows<{ sha256: string }>(s, 'select sha256 from files order by sha256')
    expect(stored).toHaveLength(2)
    expect(uploadsOf(s, link).map((u) => u.state)).toEqual(['complete', 'complete'])
    expect(blobsOnDisk(s).sort()).toEqual(stored.map((f) => f.sha256))
    expect(stagingEntries(s)).toEqual([])
  }, 30_000)
})

describe('allowed types', () => {
  test('extensions and media-type patterns; anything else is 415, for Dropzone and tus alike', async () => {
    const s = await setUp()
    const link = await createLink(s, { allowedTypes: 'image/*, .pdf, video/mp4' })
    expect(one(s, 'select allowed_types from links where id = ?', link.id)).toEqual({ allowed_types: 'image/*, .pdf, video/mp4' })
    expect(await (await visit(s, link.path)).text()).toContain('data-accepted-files="image/*, .pdf, video/mp4"')

    const accepted = ['photo.jpg', 'PHOTO.JPEG', 'diagram.png', 'scan.PDF', 'clip.mp4', 'icon.svg']
    const refused = ['notes.txt', 'archive.zip', 'clip.mov', 'page.html', 'pdf', 'image', 'photo.jpg.exe', 'noextension']
    for (const name of accepted) {
      const response = await sendLinkChunk(s, link, `ok-${name.replace(/\W/g, '_')}`, randomData(10), 0, { fileName: name })
      expect({ name, status: response.status }).toEqual({ name, status: 200 })
    }
    for (const name of refused) {
      const response = await sendLinkChunk(s, link, `no-${name.replace(/\W/g, '_')}`, randomData(10), 0, { fileName: name })
      expect({ name, status: response.status }).toEqual({ name, status: 415 })
      expect((await response.json()).error).toContain('image/*, .pdf, video/mp4')
    }
    expect((await tusCreate(s, link, 10, 'notes.txt')).status).toBe(415)
    expect((await tusCreate(s, link, 10, 'photo.gif')).status).toBe(201)
    expect(one(s, 'select count(*) as n from uploads')).toEqual({ n: accepted.length + 1 })
  }, 30_000)

  test('patterns that are neither extensions nor media types are refused when the link is made', async () => {
    const s = await setUp()
    for (const allowedTypes of ['jpg', 'image/', '*', '.', 'image/*; rm -rf']) {
      const response = await adminPost(s, '/links', { folder: '1', label: 'x', allowedTypes })
      expect({ allowedTypes, status: response.status }).toEqual({ allowedTypes, status: 400 })
    }
    for (const [field, value] of [['maxFileSize', 'lots'], ['maxTotalSize', '-1'], ['maxFiles', '0'], ['maxFiles', '1.5'], ['expiresInDays', '0'], ['label', ''], ['folder', '999']]) {
      const response = await adminPost(s, '/links', { folder: '1', label: 'x', [field!]: value! })
      expect({ field, value, status: response.status }).toEqual({ field, value, status: field === 'folder' ? 404 : 400 })
    }
    expect(one(s, 'select count(*) as n from links')).toEqual({ n: 0 })
  }, 30_000)
})

describe('switching a link off mid-upload', () => {
  test('the next chunk gets 410; switched on again, the upload continues where it was', async () => {
    const s = await setUp()
    const link = await createLink(s)
    const data = randomData(3 * CHUNK + 100)
    expect((await sendLinkChunk(s, link, 'mid', data, 0, { fileName: 'mid.bin' })).status).toBe(200)

    expect((await adminPost(s, `/links/${link.id}/disable`)).status).toBe(303)
    expect(one(s, 'select disabled from links where id = ?', link.id)).toEqual({ disabled: 1 })
    const stopped = await sendLinkChunk(s, link, 'mid', data, 1, { fileName: 'mid.bin' })
    expect(stopped.status).toBe(410)
    expect((await stopped.json()).error).toContain('switched off')
    expect((await visit(s, link.path)).status).toBe(410)
    expect((await visit(s, `${link.path}/upload/mid`)).status).toBe(410)
    expect(one(s, "select received_chunks, state from uploads where client_key = 'no-cookie:mid'")).toEqual({ received_chunks: 1, state: 'receiving' })

    expect((await adminPost(s, `/links/${link.id}/enable`)).status).toBe(303)
    const status = await (await visit(s, `${link.path}/upload/mid`)).json()
    expect(status.chunks).toEqual([0])
    for (const index of [1, 2, 3]) expect((await sendLinkChunk(s, link, 'mid', data, index, { fileName: 'mid.bin' })).status).toBe(200)
    const file = one<{ sha256: string; folder_id: number }>(s, "select f.sha256, f.folder_id from uploads u join files f on f.id = u.file_id where u.client_key = 'no-cookie:mid'")
    expect(file).toEqual({ sha256: sha256(data), folder_id: 1 })
  }, 30_000)
})

describe('where uploads land', () => {
  test('always in the link’s folder, whatever folder the client names; owned by link:<id>', async () => {
    const s = await setUp()
    const inbox = await makeFolder(s, 1, 'Inbox')
    const elsewhere = await makeFolder(s, 1, 'Elsewhere')
    const link = await createLink(s, { folder: String(inbox) })
    const done = await uploadThroughLink(s, link, randomData(2 * CHUNK), { fileName: 'escape.bin', extra: { folder: String(elsewhere) } })
    const form = new FormData()
    form.append('folder', String(elsewhere))
    form.append('file', new Blob([randomData(10)]), 'plain.bin')
    const plain = await visit(s, `${link.path}/upload?folder=${elsewhere}`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
    expect(plain.status).toBe(200)
    const tus = await visit(s, `${link.path}/tus/`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '3', 'upload-metadata': tusMetadata({ filename: 'tus.bin', folder: String(elsewhere) }), 'content-type': 'application/offset+octet-stream' },
      body: 'abc',
    })
    expect(tus.status).toBe(201)
    expect(rows(s, 'select name, folder_id from files order by name')).toEqual([
      { name: 'escape.bin', folder_id: inbox },
      { name: 'plain.bin', folder_id: inbox },
      { name: 'tus.bin', folder_id: inbox },
    ])
    expect(rows(s, 'select distinct owner from uploads')).toEqual([{ owner: `link:${link.id}` }])
    // The visitor is told no admin URL.
    expect(done.file!.url).toBeNull()
    // A visitor's upload id does not reach the admin's uploads, nor the other way round.
    expect((await s.fetch(`/upload/${done.upload.id}`, { headers: { accept: 'application/json' } })).status).toBe(404)
  }, 30_000)
})
