import { describe, expect, test } from 'bun:test'
import { randomData, sha256 } from '../helpers/data.ts'
import { startTestServer, type TestServer, serverPerTest } from '../helpers/server.ts'
import {
  activityRows,
  anonymousPost,
  blobOnDisk,
  CROSS_SITE,
  expectHtmxError,
  expectPageError,
  flashFromCookie,
  follow,
  listedNames,
  makeFolder,
  post,
  row,
  rows,
  snapshot,
  uploadFile,
} from './helpers.ts'


const start = serverPerTest(startTestServer)

const trashPage = async (s: TestServer) => {
  const response = await s.fetch('/trash')
  expect(response.status).toBe(200)
  return response.text()
}

/** Names in the trash table, in the order shown (newest first). */
const trashNames = (page: string) => [...page.matchAll(/<td class="name">([^<]*)<\/td>/g)].map((m) => m[1]!)

const blobRow = (s: TestServer, hash: string) => row<{ ref_count: number }>(s, 'select ref_count from blobs where sha256 = ?', hash)

describe('the trash page', () => {
  test('lists what was deleted, where it was, and the retention; shows "empty" when empty', async () => {
    const s = await start({ TRASH_RETENTION_DAYS: '7' })
    let page = await trashPage(s)
    expect(page).toContain('<p class="empty">The trash is empty.</p>')
    expect(page).toContain('stay here for 7 days')
    expect(page).not.toContain('Empty trash</button>')
    const docs = await makeFolder(s, 1, 'Docs')
    const old = await makeFolder(s, docs, 'Old')
    const file = await uploadFile(s, 'report.pdf', randomData(2500), docs)
    await post(s, `/files/${file.id}/delete`)
    await post(s, `/folders/${old}/delete`)
    page = await trashPage(s)
    expect(trashNames(page).sort()).toEqual(['report.pdf', '📁 Old'].sort())
    expect(page).toContain('<td class="name">report.pdf</td>\n    <td>/Docs</td>\n    <td class="num">2.5 KB</td>')
    expect(page).toContain('<td class="name">📁 Old</td>\n    <td>/Docs</td>\n    <td class="num"></td>')
    expect(page).toContain(`action="/trash/files/${file.id}/restore"`)
    expect(page).toContain(`action="/trash/folders/${old}/restore"`)
    expect(page).toContain('Empty trash</button>')
  })

  test('names are escaped', async () => {
    const s = await start()
    const file = await uploadFile(s, '<img src=x onerror=alert(1)>.txt', 'x')
    await post(s, `/files/${file.id}/delete`)
    const page = await trashPage(s)
    expect(page).toContain('<td class="name">&lt;img src=x onerror=alert(1)&gt;.txt</td>')
    expect(page).not.toContain('<img src=x')
  })
})

describe('restoring', () => {
  test('a deleted file leaves the listing, shows in the trash, and comes back to its folder', async () => {
    const s = await start()
    const folder = await makeFolder(s, 1, 'F')
    const data = randomData(3000)
    const file = await uploadFile(s, 'a.bin', data, folder)
    await post(s, `/files/${file.id}/delete`)
    expect(listedNames(await (await s.fetch(`/folders/${folder}/view`)).text())).toEqual([])
    expect(trashNames(await trashPage(s))).toEqual(['a.bin'])

    const response = await post(s, `/trash/files/${file.id}/restore`)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/trash')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Restored “a.bin” to /F.' })
    const next = await follow(s, response)
    expect(next.body).toContain('Restored “a.bin” to /F.')
    expect(next.body).toContain('The trash is empty.')
    expect(listedNames(await (await s.fetch(`/folders/${folder}/view`)).text())).toEqual(['a.bin'])
    expect(new Uint8Array(await (await s.fetch(`/files/${file.id}/download`)).arrayBuffer())).toEqual(data)
    const [entry] = activityRows(s, 'file.restore')
    expect(entry!.target).toBe('a.bin')
    expect(JSON.parse(entry!.details!)).toEqual({ folder: '/F' })
  })

  test('htmx restore answers HX-Redirect to the trash', async () => {
    const s = await start()
    const file = await uploadFile(s, 'a.txt', 'a')
    await post(s, `/files/${file.id}/delete`)
    const response = await post(s, `/trash/files/${file.id}/restore`, {}, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe('/trash')
    expect(row<{ deleted_at: number | null }>(s, 'select deleted_at from files where id = ?', file.id)!.deleted_at).toBeNull()
  })

  test('a name taken meanwhile gets a number: "a (1).txt", then "a (2).txt"', async () => {
    const s = await start()
    const first = await uploadFile(s, 'a.txt', '1')
    await post(s, `/files/${first.id}/delete`)
    const second = await uploadFile(s, 'a.txt', '2')
    await post(s, `/files/${second.id}/delete`)
    await uploadFile(s, 'a.txt', '3')
    await post(s, `/trash/files/${first.id}/restore`)
    const response = await post(s, `/trash/files/${second.id}/restore`)
    expect(flashFromCookie(response)!.text).toBe('Restored “a (2).txt” to /.')
    expect(listedNames(await (await s.fetch('/folders/1/view?sort=name')).text())).toEqual(['a (1).txt', 'a (2).txt', 'a.txt'])
  })

  test('a file whose folder is itself in the trash is restored into Home', async () => {
    const s = await start()
    const folder = await makeFolder(s, 1, 'F')
    const file = await uploadFile(s, 'f.txt', 'f', folder)
    await post(s, `/files/${file.id}/delete`)
    await post(s, `/folders/${folder}/delete`)
    expect(await trashPage(s)).toContain('<td class="name">f.txt</td>\n    <td>(deleted folder)</td>')
    const response = await post(s, `/trash/files/${file.id}/restore`)
    expect(flashFromCookie(response)!.text).toBe('Restored “f.txt” to /.')
    expect(row<{ folder_id: number }>(s, 'select folder_id from files where id = ?', file.id)!.folder_id).toBe(1)
    expect(listedNames(await (await s.fetch('/folders/1/view')).text())).toEqual(['f.txt'])
  })

  test('deleting a folder hides everything in it; restoring it brings all of it back', async () => {
    const s = await start()
    const a = await makeFolder(s, 1, 'A')
    const b = await makeFolder(s, a, 'B')
    const top = await uploadFile(s, 'top.txt', 'top', a)
    const deep = await uploadFile(s, 'deep.txt', 'deep', b)
    await post(s, `/folders/${a}/delete`)
    expect(await (await s.fetch('/folders/1/view')).text()).not.toContain('📁 A')
    for (const path of [`/folders/${a}`, `/folders/${b}`, `/files/${top.id}`, `/files/${deep.id}`]) expect((await s.fetch(path)).status).toBe(404)
    // The trash lists the folder, not what is inside it.
    expect(trashNames(await trashPage(s))).toEqual(['📁 A'])

    const response = await post(s, `/trash/folders/${a}/restore`, {}, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe('/trash')
    expect(flashFromCookie(response)!.text).toBe('Restored “A” as /A.')
    for (const path of [`/folders/${a}`, `/folders/${b}`, `/files/${top.id}`, `/files/${deep.id}`]) expect((await s.fetch(path)).status).toBe(200)
    expect(listedNames(await (await s.fetch(`/folders/${b}/view`)).text())).toEqual(['deep.txt'])
    expect(activityRows(s, 'folder.restore')[0]!.target).toBe('/A')
  })

  test('a restored folder whose name is taken gets " (1)"; one whose parent is in the trash goes to Home', async () => {
    const s = await start()
    const docs = await makeFolder(s, 1, 'Docs')
    await post(s, `/folders/${docs}/delete`)
    await makeFolder(s, 1, 'Docs')
    const response = await post(s, `/trash/folders/${docs}/restore`)
    expect(flashFromCookie(response)!.text).toBe('Restored “Docs (1)” as /Docs (1).')
    expect(row<{ name: string }>(s, 'select name from folders where id = ?', docs)!.name).toBe('Docs (1)')

    const p = await makeFolder(s, 1, 'P')
    const c = await makeFolder(s, p, 'C')
    await post(s, `/folders/${c}/delete`)
    await post(s, `/folders/${p}/delete`)
    const restored = await post(s, `/trash/folders/${c}/restore`)
    expect(flashFromCookie(restored)!.text).toBe('Restored “C” as /C.')
    expect(row<{ parent_id: number }>(s, 'select parent_id from folders where id = ?', c)!.parent_id).toBe(1)
  })

  test('restoring what is not in the trash, unknown or non-numeric ids: 404, nothing changes', async () => {
    const s = await start()
    const live = await uploadFile(s, 'live.txt', 'x')
    const folder = await makeFolder(s, 1, 'Live')
    const before = snapshot(s)
    await expectHtmxError(await post(s, `/trash/files/${live.id}/restore`, {}, { htmx: true }), 404, `File ${live.id} is not in the trash`)
    await expectPageError(await post(s, '/trash/files/999/restore'), 404, 'File 999 is not in the trash', '/trash')
    await expectHtmxError(await post(s, `/trash/folders/${folder}/restore`, {}, { htmx: true }), 404, `Folder ${folder} is not in the trash`)
    await expectHtmxError(await post(s, '/trash/folders/1/restore', {}, { htmx: true }), 404, 'Folder 1 is not in the trash')
    await expectPageError(await post(s, '/trash/folders/abc/restore'), 404, 'No such folder')
    await expectPageError(await post(s, '/trash/files/abc/restore'), 404, 'No such file')
    expect(snapshot(s)).toEqual(before)
  })
})

describe('emptying the trash', () => {
  test('deletes the rows for good and the bytes of blobs no file uses any more', async () => {
    const s = await start()
    const folder = await makeFolder(s, 1, 'F')
    const sub = await makeFolder(s, folder, 'Sub')
    const loose = randomData(1000)
    const inFolder = randomData(2000)
    const inSub = randomData(3000)
    const f1 = await uploadFile(s, 'loose.bin', loose)
    await uploadFile(s, 'in-folder.bin', inFolder, folder)
    await uploadFile(s, 'in-sub.bin', inSub, sub)
    const kept = await uploadFile(s, 'kept.bin', randomData(500))
    await post(s, `/files/${f1.id}/delete`)
    await post(s, `/folders/${folder}/delete`)
    for (const data of [loose, inFolder, inSub]) expect(blobOnDisk(s, sha256(data))).toBe(true)

    const response = await post(s, '/trash/empty')
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/trash')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Deleted 3 files and 2 folders for good.' })
    expect(rows(s, 'select name from files')).toEqual([{ name: 'kept.bin' }])
    expect(rows(s, 'select id from folders order by id')).toEqual([{ id: 1 }])
    for (const data of [loose, inFolder, inSub]) {
      expect(blobOnDisk(s, sha256(data))).toBe(false)
      expect(blobRow(s, sha256(data))).toBeNull()
    }
    expect(blobOnDisk(s, kept.sha256)).toBe(true)
    // The uploads that made the files stay, without their file.
    expect(rows(s, 'select count(*) as n from uploads where file_id is null')).toEqual([{ n: 3 }])
    const [entry] = activityRows(s, 'trash.empty')
    expect(entry!.target).toBe('trash')
    expect(JSON.parse(entry!.details!)).toEqual({ files: 3, folders: 2, blobsRemoved: 3 })
    expect(await trashPage(s)).toContain('The trash is empty.')
  })

  test('htmx: HX-Redirect to the trash', async () => {
    const s = await start()
    const file = await uploadFile(s, 'a.txt', 'a')
    await post(s, `/files/${file.id}/delete`)
    const response = await post(s, '/trash/empty', {}, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe('/trash')
    expect(flashFromCookie(response)!.text).toBe('Deleted 1 file and 0 folders for good.')
  })

  test('shared content: purging one of two files keeps the bytes (ref_count 1); purging the other removes them', async () => {
    const s = await start()
    const data = randomData(4096)
    const hash = sha256(data)
    const one = await uploadFile(s, 'one.bin', data)
    const two = await uploadFile(s, 'two.bin', data)
    expect(blobRow(s, hash)!.ref_count).toBe(2)

    await post(s, `/files/${one.id}/delete`)
    await post(s, '/trash/empty')
    expect(blobRow(s, hash)!.ref_count).toBe(1)
    expect(blobOnDisk(s, hash)).toBe(true)
    expect(new Uint8Array(await (await s.fetch(`/files/${two.id}/download`)).arrayBuffer())).toEqual(data)
    expect(JSON.parse(activityRows(s, 'trash.empty')[0]!.details!)).toEqual({ files: 1, folders: 0, blobsRemoved: 0 })

    await post(s, `/files/${two.id}/delete`)
    await post(s, '/trash/empty')
    expect(blobRow(s, hash)).toBeNull()
    expect(blobOnDisk(s, hash)).toBe(false)
    expect(rows(s, 'select id from files')).toEqual([])
  })

  test('both copies in the trash at once: one purge removes the blob', async () => {
    const s = await start()
    const data = randomData(100)
    const one = await uploadFile(s, 'one.bin', data)
    const two = await uploadFile(s, 'two.bin', data)
    await post(s, '/files/bulk', { folder: 1, ids: [one.id, two.id], action: 'delete' })
    await post(s, '/trash/empty')
    expect(blobRow(s, sha256(data))).toBeNull()
    expect(blobOnDisk(s, sha256(data))).toBe(false)
  })

  test('the same content uploaded again after a purge is stored again', async () => {
    const s = await start()
    const data = randomData(200)
    const one = await uploadFile(s, 'one.bin', data)
    await post(s, `/files/${one.id}/delete`)
    await post(s, '/trash/empty')
    const again = await uploadFile(s, 'again.bin', data)
    expect(blobOnDisk(s, sha256(data))).toBe(true)
    expect(new Uint8Array(await (await s.fetch(`/files/${again.id}/download`)).arrayBuffer())).toEqual(data)
  })

  test('an empty trash empties without error', async () => {
    const s = await start()
    const response = await post(s, '/trash/empty')
    expect(response.status).toBe(303)
    expect(flashFromCookie(response)!.text).toBe('Deleted 0 files and 0 folders for good.')
  })

  test('without a session 401, cross-site 403: nothing is purged or restored', async () => {
    const s = await start()
    const file = await uploadFile(s, 'a.txt', 'a')
    await post(s, `/files/${file.id}/delete`)
    const before = snapshot(s)
    expect((await anonymousPost(s, '/trash/empty')).status).toBe(401)
    expect((await post(s, '/trash/empty', {}, { headers: CROSS_SITE })).status).toBe(403)
    expect((await post(s, '/trash/empty', {}, { headers: { 'sec-fetch-site': 'cross-site' }, htmx: true })).status).toBe(403)
    expect((await anonymousPost(s, `/trash/files/${file.id}/restore`)).status).toBe(401)
    expect((await post(s, `/trash/files/${file.id}/restore`, {}, { headers: CROSS_SITE })).status).toBe(403)
    expect(snapshot(s)).toEqual(before)
    expect(blobOnDisk(s, file.sha256)).toBe(true)
    const page = await fetch(`${s.url}/trash`, { headers: { accept: 'text/html' }, redirect: 'manual' })
    expect(page.status).toBe(303)
  })
})

describe('automatic purge', () => {
  test('at start-up, what has been in the trash longer than TRASH_RETENTION_DAYS is deleted for good', async () => {
    const s = await start({ TRASH_RETENTION_DAYS: '1' })
    const oldData = randomData(1500)
    const newData = randomData(1600)
    const shared = randomData(1700)
    const oldFile = await uploadFile(s, 'old.bin', oldData)
    const newFile = await uploadFile(s, 'new.bin', newData)
    const oldFolder = await makeFolder(s, 1, 'OldFolder')
    const inOld = await uploadFile(s, 'in-old.bin', shared, oldFolder)
    const liveTwin = await uploadFile(s, 'twin.bin', shared)
    const newFolder = await makeFolder(s, 1, 'NewFolder')
    await post(s, `/files/${oldFile.id}/delete`)
    await post(s, `/files/${newFile.id}/delete`)
    await post(s, `/folders/${oldFolder}/delete`)
    await post(s, `/folders/${newFolder}/delete`)
    const twoDaysAgo = Date.now() - 2 * 86_400_000
    const twentyHoursAgo = Date.now() - 20 * 3_600_000
    s.sql.run('update files set deleted_at = ? where id = ?', twoDaysAgo, oldFile.id)
    s.sql.run('update folders set deleted_at = ? where id = ?', twoDaysAgo, oldFolder)
    s.sql.run('update files set deleted_at = ? where id = ?', twentyHoursAgo, newFile.id)

    await s.restart()

    expect(rows(s, 'select id from files order by id').map((r) => r.id)).toEqual([newFile.id, liveTwin.id])
    expect(rows(s, 'select id from folders order by id').map((r) => r.id)).toEqual([1, newFolder])
    expect(inOld.id).not.toBe(liveTwin.id)
    expect(blobOnDisk(s, sha256(oldData))).toBe(false)
    expect(blobRow(s, sha256(oldData))).toBeNull()
    expect(blobOnDisk(s, sha256(newData))).toBe(true)
    // Still used by a live file.
    expect(blobOnDisk(s, sha256(shared))).toBe(true)
    expect(blobRow(s, sha256(shared))!.ref_count).toBe(1)
    expect(trashNames(await trashPage(s)).sort()).toEqual(['new.bin', '📁 NewFolder'].sort())
  })

  test('TRASH_RETENTION_DAYS=0 purges everything in the trash at start-up', async () => {
    const s = await start({ TRASH_RETENTION_DAYS: '0' })
    const file = await uploadFile(s, 'a.bin', randomData(100))
    await post(s, `/files/${file.id}/delete`)
    // deleted_at must be strictly older than now.
    s.sql.run('update files set deleted_at = deleted_at - 1000')
    await s.restart()
    expect(rows(s, 'select id from files')).toEqual([])
    expect(blobOnDisk(s, file.sha256)).toBe(false)
  })

  test('with the default retention (30 days), recent trash survives a restart', async () => {
    const s = await start()
    const file = await uploadFile(s, 'a.bin', randomData(100))
    await post(s, `/files/${file.id}/delete`)
    s.sql.run('update files set deleted_at = ?', Date.now() - 29 * 86_400_000)
    await s.restart()
    expect(rows(s, 'select id from files')).toEqual([{ id: file.id }])
    expect(blobOnDisk(s, file.sha256)).toBe(true)
  })
})
