import { existsSync } from 'node:fs'
import { describe, expect, test } from 'bun:test'
import { chunkFields, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData } from '../helpers/data.ts'
import { startTestServer, type TestServer, serverPerTest } from '../helpers/server.ts'
import {
  activityRows,
  anonymousPost,
  CROSS_SITE,
  expectHtmxError,
  expectPageError,
  flashFromCookie,
  follow,
  halfUpload,
  oobFlash,
  post,
  row,
  snapshot,
  stagingPath,
  uploadFile,
} from './helpers.ts'


const start = serverPerTest(startTestServer)

const table = async (s: TestServer) => {
  const response = await s.fetch('/uploads/table')
  expect(response.status).toBe(200)
  return response.text()
}

const uploadState = (s: TestServer, id: string) => row<{ state: string }>(s, 'select state from uploads where id = ?', id)?.state ?? null

const MARKUP_NAME = '<img src=x onerror=alert(1)> "big".iso'
const MARKUP_ESCAPED = '&lt;img src=x onerror=alert(1)&gt; &quot;big&quot;.iso'

describe('the uploads table', () => {
  test('a half-finished Dropzone upload shows with its (escaped) name, progress, chunks, state and source', async () => {
    const s = await start()
    const { id } = await halfUpload(s, MARKUP_NAME)
    const body = await table(s)
    expect(body).toStartWith('<div id="uploads-table" hx-get="/uploads/table" hx-trigger="every 2s"')
    expect(body).toContain(`<td class="name">${MARKUP_ESCAPED}</td>`)
    expect(body).not.toContain('<img src=x')
    expect(body).toContain('<td>/</td>')
    expect(body).toContain('<div class="progress" title="50%"><span style="width: 50%"></span></div>')
    expect(body).toContain('66 KB of 131 KB')
    expect(body).toContain('<td>1 / 2</td>')
    expect(body).toContain('<span class="state receiving" title="">receiving</span>')
    expect(body).toContain('<td>admin · dropzone · 127.0.0.1</td>')
    expect(body).toContain(`action="/uploads/${id}/cancel"`)
    expect(body).not.toContain(`action="/uploads/${id}/dismiss"`)
    // The full page has the same table.
    const page = await (await s.fetch('/uploads')).text()
    expect(page).toContain('<title>Uploads · Dropfold</title>')
    expect(page).toContain(`<td class="name">${MARKUP_ESCAPED}</td>`)
  })

  test('finished uploads are not listed; with nothing unfinished the table says so', async () => {
    const s = await start()
    await uploadFile(s, 'done.txt', 'done')
    const body = await table(s)
    expect(body).toContain('No uploads in progress, failed or stopped.')
    expect(body).not.toContain('done.txt')
  })

  test('an upload without activity for a minute shows as stalled; a failed one with its error and a Remove button', async () => {
    const s = await start()
    const stalled = await halfUpload(s, 'stalled.bin')
    const failed = await halfUpload(s, 'failed.bin')
    s.sql.run('update uploads set updated_at = ? where id = ?', Date.now() - 120_000, stalled.id)
    s.sql.run("update uploads set state = 'failed', error = ? where id = ?", 'Disk <full>', failed.id)
    const body = await table(s)
    expect(body).toContain('<span class="state stalled" title="">stalled</span>')
    expect(body).toContain('2 min ago')
    expect(body).toContain('<span class="state failed" title="Disk &lt;full&gt;">failed</span>')
    expect(body).toContain(`action="/uploads/${failed.id}/dismiss"`)
    // A stalled upload is still receiving, so it can be cancelled.
    expect(body).toContain(`action="/uploads/${stalled.id}/cancel"`)
  })

  test('an upload in a folder that went to the trash says so', async () => {
    const s = await start()
    await post(s, '/folders/1/folders', { name: 'F' })
    const folder = row<{ id: number }>(s, "select id from folders where name = 'F'")!.id
    const uuid = 'in-folder'
    const response = await sendChunk(s, chunkFields(uuid, 200_000, 100_000, 0), new Uint8Array(100_000), { fileName: 'x.bin', folder })
    expect(response.status).toBe(200)
    await post(s, `/folders/${folder}/delete`)
    expect(await table(s)).toContain('<td>(in the trash)</td>')
  })

  test('an upload that outlives UPLOAD_TTL_HOURS expires at start-up, frees its bytes and can be removed', async () => {
    const s = await start({ UPLOAD_TTL_HOURS: '1' })
    const { id } = await halfUpload(s, 'old.bin')
    expect(existsSync(stagingPath(s, id))).toBe(true)
    s.sql.run('update uploads set updated_at = ? where id = ?', Date.now() - 2 * 3_600_000, id)
    await s.restart()
    expect(uploadState(s, id)).toBe('expired')
    expect(existsSync(stagingPath(s, id))).toBe(false)
    const body = await table(s)
    expect(body).toContain('<span class="state expired" title="">expired</span>')
    expect(body).toContain(`action="/uploads/${id}/dismiss"`)
    expect((await post(s, `/uploads/${id}/dismiss`)).status).toBe(303)
    expect(uploadState(s, id)).toBeNull()
  })
})

describe('cancelling an upload', () => {
  test('htmx: the staged bytes are deleted at once, the state is cancelled, the table comes back with the message', async () => {
    const s = await start()
    const { id, uuid, total, chunkSize } = await halfUpload(s, MARKUP_NAME)
    expect(existsSync(stagingPath(s, id))).toBe(true)
    const response = await post(s, `/uploads/${id}/cancel`, {}, { htmx: true })
    expect(response.status).toBe(200)
    const body = await response.text()
    expect(existsSync(stagingPath(s, id))).toBe(false)
    expect(uploadState(s, id)).toBe('cancelled')
    expect(body).toStartWith('<div id="uploads-table"')
    expect(body).toContain('<span class="state cancelled" title="">cancelled</span>')
    expect(body).toContain(`action="/uploads/${id}/dismiss"`)
    expect(oobFlash(body)).toBe(`Cancelled “${MARKUP_ESCAPED}”; its bytes are deleted.`)
    const [entry] = activityRows(s, 'upload.cancel')
    expect(entry!.target).toBe(MARKUP_NAME)
    expect(entry!.client_address).toBe('127.0.0.1')
    // The client's next chunk is refused; the upload cannot come back to life.
    const late = await sendChunk(s, chunkFields(uuid, total, chunkSize, 1), new Uint8Array(chunkSize), { fileName: MARKUP_NAME })
    expect(late.status).toBe(410)
    expect((await late.json()).error).toContain('was cancelled')
    expect(existsSync(stagingPath(s, id))).toBe(false)
    expect(uploadState(s, id)).toBe('cancelled')
  })

  test('plain form: redirect to /uploads with the message', async () => {
    const s = await start()
    const { id } = await halfUpload(s, 'plain.bin')
    const response = await post(s, `/uploads/${id}/cancel`)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/uploads')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Cancelled “plain.bin”; its bytes are deleted.' })
    expect(existsSync(stagingPath(s, id))).toBe(false)
    const next = await follow(s, response)
    expect(next.body).toContain('Cancelled “plain.bin”; its bytes are deleted.')
  })

  test('cancelling twice is 409; an unknown or malformed id is 404; nothing changes', async () => {
    const s = await start()
    const { id } = await halfUpload(s, 'twice.bin')
    await post(s, `/uploads/${id}/cancel`)
    const before = snapshot(s)
    await expectHtmxError(await post(s, `/uploads/${id}/cancel`, {}, { htmx: true }), 409, '“twice.bin” is no longer receiving')
    await expectPageError(await post(s, `/uploads/${id}/cancel`), 409, '“twice.bin” is no longer receiving', '/uploads')
    await expectHtmxError(await post(s, `/uploads/${'0'.repeat(32)}/cancel`, {}, { htmx: true }), 404, 'No such upload')
    await expectPageError(await post(s, `/uploads/${'a'.repeat(32)}/cancel`), 404, 'No such upload')
    for (const bad of ['abc', id.toUpperCase(), `${id}0`, '..%2F..%2Fdropfold.sqlite', 'half-1']) {
      expect((await post(s, `/uploads/${bad}/cancel`, {}, { htmx: true })).status).toBe(404)
    }
    expect(snapshot(s)).toEqual(before)
  })

  test('a finished upload cannot be cancelled (409) and its file stays', async () => {
    const s = await start()
    const file = await uploadFile(s, 'done.bin', randomData(100))
    const id = row<{ id: string }>(s, 'select id from uploads where file_id = ?', file.id)!.id
    const before = snapshot(s)
    await expectHtmxError(await post(s, `/uploads/${id}/cancel`, {}, { htmx: true }), 409, 'is no longer receiving')
    await expectHtmxError(await post(s, `/uploads/${id}/dismiss`, {}, { htmx: true }), 409, 'Only failed, expired or cancelled uploads can be removed')
    expect(snapshot(s)).toEqual(before)
  })

  test('without a session 401, cross-site 403: the upload keeps receiving', async () => {
    const s = await start()
    const { id } = await halfUpload(s, 'keep.bin')
    const before = snapshot(s)
    expect((await anonymousPost(s, `/uploads/${id}/cancel`)).status).toBe(401)
    expect((await post(s, `/uploads/${id}/cancel`, {}, { headers: CROSS_SITE })).status).toBe(403)
    expect((await post(s, `/uploads/${id}/cancel`, {}, { headers: CROSS_SITE, htmx: true })).status).toBe(403)
    expect(snapshot(s)).toEqual(before)
    expect(existsSync(stagingPath(s, id))).toBe(true)
    expect((await fetch(`${s.url}/uploads/table`)).status).toBe(401)
  })
})

describe('removing an upload from the list', () => {
  test('a cancelled upload: htmx answer is the table without it', async () => {
    const s = await start()
    const { id } = await halfUpload(s, 'gone.bin')
    await post(s, `/uploads/${id}/cancel`)
    const response = await post(s, `/uploads/${id}/dismiss`, {}, { htmx: true })
    expect(response.status).toBe(200)
    const body = await response.text()
    expect(body).toStartWith('<div id="uploads-table"')
    expect(body).not.toContain('gone.bin</td>')
    expect(oobFlash(body)).toBe('Removed “gone.bin” from the list.')
    expect(uploadState(s, id)).toBeNull()
    expect(row(s, 'select * from upload_chunks where upload_id = ?', id)).toBeNull()
    expect(activityRows(s, 'upload.remove')[0]!.target).toBe('gone.bin')
  })

  test('a failed upload can be removed with a plain form', async () => {
    const s = await start()
    const { id } = await halfUpload(s, 'failed.bin')
    s.sql.run("update uploads set state = 'failed', error = 'x' where id = ?", id)
    const response = await post(s, `/uploads/${id}/dismiss`)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/uploads')
    expect(uploadState(s, id)).toBeNull()
    // Its staged bytes go too.
    expect(existsSync(stagingPath(s, id))).toBe(false)
  })

  test('an upload still receiving cannot be removed (409); an unknown one is 404', async () => {
    const s = await start()
    const { id } = await halfUpload(s, 'busy.bin')
    const before = snapshot(s)
    await expectHtmxError(await post(s, `/uploads/${id}/dismiss`, {}, { htmx: true }), 409, 'Only failed, expired or cancelled uploads can be removed')
    await expectHtmxError(await post(s, `/uploads/${'f'.repeat(32)}/dismiss`, {}, { htmx: true }), 404, 'No such upload')
    await expectPageError(await post(s, '/uploads/nope/dismiss'), 404, 'No such upload')
    expect(snapshot(s)).toEqual(before)
    expect(existsSync(stagingPath(s, id))).toBe(true)
  })
})

describe('storage summary', () => {
  test('shows bytes stored, saved by deduplication, staged, and the file count', async () => {
    const s = await start()
    const data = randomData(10_000)
    await uploadFile(s, 'one.bin', data)
    await uploadFile(s, 'two.bin', data)
    await uploadFile(s, 'other.bin', randomData(5000))
    await halfUpload(s, 'half.bin')
    const page = await (await s.fetch('/uploads')).text()
    const storage = /<div class="stats" id="storage">([\s\S]*?)\n<\/div>/.exec(page)![1]!
    expect(storage).toContain('<div><b>15 KB</b>stored on disk</div>')
    expect(storage).toContain('<div><b>10 KB</b>saved by deduplication</div>')
    expect(storage).toContain('<div><b>66 KB</b>in uploads in progress</div>')
    expect(storage).toMatch(/<div><b>[\d.]+ [KMGT]?B<\/b>free on the data volume<\/div>/)
    expect(storage).toContain('<div><b>3</b>files (trash included)</div>')
  })

  test('with nothing stored everything is zero', async () => {
    const s = await start()
    const page = await (await s.fetch('/uploads')).text()
    expect(page).toContain('<div><b>0 B</b>stored on disk</div>')
    expect(page).toContain('<div><b>0 B</b>saved by deduplication</div>')
    expect(page).toContain('<div><b>0</b>files (trash included)</div>')
  })
})
