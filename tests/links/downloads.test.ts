import { afterEach, describe, expect, test } from 'bun:test'
import { randomData, sha256 } from '../helpers/data.ts'
import type { TestServer } from '../helpers/server.ts'
import { adminPost, createLink, editLink, makeFolder, one, startLinkServer, unlocked, uploadThroughLink, visit } from './helpers.ts'


/** What a visitor may see of the link's folder: only with allowDownload, and only that folder. */

let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

/** Puts a file into a folder as the admin (plain upload); returns its id. */
async function adminFile(s: TestServer, folder: number, name: string, data: Uint8Array) {
  const form = new FormData()
  form.append('file', new Blob([data as Uint8Array<ArrayBuffer>]), name)
  const response = await s.fetch(`/upload?folder=${folder}`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
  expect(response.status).toBe(200)
  return (await response.json()).file.id as number
}

describe('allowDownload', () => {
  test('on: the visitor lists the folder and downloads its files byte-identical; upload answers carry the link’s own URL', async () => {
    const s = (server = await startLinkServer())
    const folder = await makeFolder(s, 1, 'Shared')
    const sub = await makeFolder(s, folder, 'Deeper')
    const link = await createLink(s, { folder: String(folder), allowDownload: 'on', password: 'see it all now' })
    const cookie = await unlocked(s, link, 'see it all now')
    const existing = randomData(5000)
    const existingId = await adminFile(s, folder, 'brief <draft>.pdf', existing)
    const deeperId = await adminFile(s, sub, 'deeper.bin', randomData(10))
    const rootId = await adminFile(s, 1, 'root.bin', randomData(10))

    const mine = randomData(3000)
    const done = await uploadThroughLink(s, link, mine, { cookie, fileName: 'mine.bin' })
    expect(done.file!.url).toBe(`${link.path}/files/${done.file!.id}/download`)

    const list = await visit(s, `${link.path}/files`, { cookie })
    expect(list.status).toBe(200)
    const fragment = await list.text()
    expect(fragment).toContain('brief &lt;draft&gt;.pdf')
    expect(fragment).toContain('mine.bin')
    expect(fragment).toContain(`href="${link.path}/files/${existingId}/download"`)
    expect(fragment).not.toContain('deeper.bin')
    expect(fragment).not.toContain('root.bin')
    expect(fragment).not.toContain('/files/' + existingId + '"') // no admin URLs
    // The page shows the same list.
    const page = await (await visit(s, link.path, { cookie })).text()
    expect(page).toContain('In this folder')
    expect(page).toContain('mine.bin')

    for (const [id, bytes] of [[existingId, existing], [done.file!.id, mine]] as const) {
      const response = await visit(s, `${link.path}/files/${id}/download`, { cookie })
      expect(response.status).toBe(200)
      expect(response.headers.get('content-disposition')).toStartWith('attachment')
      expect(sha256(new Uint8Array(await response.arrayBuffer()))).toBe(sha256(bytes))
    }
    // Without the cookie: nothing.
    expect((await visit(s, `${link.path}/files`)).status).toBe(401)
    expect((await visit(s, `${link.path}/files/${existingId}/download`)).status).toBe(401)

    // Files of other folders (a subfolder, the root), unknown ids and junk: 404.
    for (const id of [deeperId, rootId, 999, 'abc', '-1', '1e3']) {
      expect({ id, status: (await visit(s, `${link.path}/files/${id}/download`, { cookie })).status }).toEqual({ id, status: 404 })
    }
    // A file moved away, or trashed, is no longer reachable.
    const bulk = (fields: Record<string, string>) => adminPost(s, '/files/bulk', { folder: String(folder), ids: String(existingId), ...fields })
    expect((await bulk({ action: 'move', target: '1' })).status).toBe(303)
    expect((await visit(s, `${link.path}/files/${existingId}/download`, { cookie })).status).toBe(404)
    expect((await adminPost(s, '/files/bulk', { folder: String(folder), ids: String(done.file!.id), action: 'delete' })).status).toBe(303)
    expect((await visit(s, `${link.path}/files/${done.file!.id}/download`, { cookie })).status).toBe(404)
    expect(await (await visit(s, `${link.path}/files`, { cookie })).text()).not.toContain('mine.bin')
  }, 30_000)

  test('off: no list, no downloads (403), the page shows no folder, and upload answers carry no URL', async () => {
    const s = (server = await startLinkServer())
    const link = await createLink(s)
    const fileId = await adminFile(s, 1, 'private.bin', randomData(100))
    const done = await uploadThroughLink(s, link, randomData(100), { fileName: 'mine.bin' })
    expect(done.file!.url).toBeNull()
    const status = await (await visit(s, `${link.path}/upload/${done.upload.id}`)).json()
    expect(status.file.url).toBeNull()

    expect((await visit(s, `${link.path}/files`)).status).toBe(403)
    expect((await visit(s, `${link.path}/files/${fileId}/download`)).status).toBe(403)
    expect((await visit(s, `${link.path}/files/${done.file!.id}/download`)).status).toBe(403)
    const page = await (await visit(s, link.path)).text()
    expect(page).not.toContain('In this folder')
    expect(page).not.toContain('private.bin')

    // Switched on later: works at once; switched off again: refused at once.
    expect((await editLink(s, link.id, { allowDownload: 'on' })).status).toBe(303)
    expect((await visit(s, `${link.path}/files/${fileId}/download`)).status).toBe(200)
    // The settings form without the checkbox switches it off.
    const form = new URLSearchParams({ folder: '1', label: 'Test link', password: '', expiresInDays: '' })
    expect((await s.fetch(`/links/${link.id}`, { method: 'POST', body: form })).status).toBe(303)
    expect(one(s, 'select allow_download from links where id = ?', link.id)).toEqual({ allow_download: 0 })
    expect((await visit(s, `${link.path}/files/${fileId}/download`)).status).toBe(403)
  }, 30_000)
})
