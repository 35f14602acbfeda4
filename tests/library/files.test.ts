import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { randomData } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import {
  activityRows,
  anonymousPost,
  CROSS_SITE,
  expectHtmxError,
  expectPageError,
  fileRowCount,
  flashFromCookie,
  follow,
  listedNames,
  makeFolder,
  oobFlash,
  post,
  row,
  snapshot,
  uploadFile,
} from './helpers.ts'


let server: TestServer
beforeEach(async () => {
  server = await startTestServer()
})
afterEach(async () => {
  await server.stop()
})

const fileRow = (id: number) =>
  row<{ id: number; folder_id: number; name: string; deleted_at: number | null; sha256: string }>(server, 'select * from files where id = ?', id)

async function download(id: number) {
  const response = await server.fetch(`/files/${id}/download`)
  expect(response.status).toBe(200)
  return { bytes: new Uint8Array(await response.arrayBuffer()), disposition: response.headers.get('content-disposition') }
}

describe('renaming a file', () => {
  test('plain form: redirect to its page, new name, same bytes; activity records old and new name', async () => {
    const data = randomData(5000)
    const file = await uploadFile(server, 'draft.bin', data)
    const response = await post(server, `/files/${file.id}/rename`, { name: 'final.bin' })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe(`/files/${file.id}`)
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Renamed to “final.bin”.' })
    expect(fileRow(file.id)!.name).toBe('final.bin')
    const got = await download(file.id)
    expect(got.bytes).toEqual(data)
    expect(got.disposition).toContain('filename="final.bin"')
    const [entry] = activityRows(server, 'file.rename')
    expect(entry!.target).toBe('draft.bin')
    expect(JSON.parse(entry!.details!)).toEqual({ to: 'final.bin', folder: '/' })
    const next = await follow(server, response)
    expect(next.body).toContain('<h1 class="file-name">final.bin</h1>')
    expect(next.body).toContain('Renamed to “final.bin”.')
  })

  test('htmx: HX-Redirect to its page', async () => {
    const file = await uploadFile(server, 'a.txt', 'a')
    const response = await post(server, `/files/${file.id}/rename`, { name: 'b.txt' }, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe(`/files/${file.id}`)
    expect(fileRow(file.id)!.name).toBe('b.txt')
  })

  test('a name taken in the same folder is refused with 409; the same name in another folder is fine', async () => {
    const a = await uploadFile(server, 'a.txt', 'a')
    await uploadFile(server, 'b.txt', 'b')
    const before = snapshot(server)
    await expectHtmxError(await post(server, `/files/${a.id}/rename`, { name: 'b.txt' }, { htmx: true }), 409, 'A file named &quot;b.txt&quot; already exists here')
    await expectPageError(await post(server, `/files/${a.id}/rename`, { name: 'b.txt' }), 409, 'A file named &quot;b.txt&quot; already exists here', `/files/${a.id}`)
    expect(snapshot(server)).toEqual(before)
    // Its own name is not a conflict.
    expect((await post(server, `/files/${a.id}/rename`, { name: 'a.txt' })).status).toBe(303)
    const folder = await makeFolder(server, 1, 'F')
    const c = await uploadFile(server, 'c.txt', 'c', folder)
    expect((await post(server, `/files/${c.id}/rename`, { name: 'b.txt' })).status).toBe(303)
  })

  test('a name held only by a file in the trash is free', async () => {
    const a = await uploadFile(server, 'a.txt', 'a')
    const b = await uploadFile(server, 'b.txt', 'b')
    await post(server, `/files/${b.id}/delete`)
    expect((await post(server, `/files/${a.id}/rename`, { name: 'b.txt' })).status).toBe(303)
  })

  for (const [name, message] of [
    ['', 'The file name cannot be empty'],
    ['  ', 'The file name cannot be empty'],
    ['x/y.txt', 'The file name cannot contain &quot;/&quot;'],
    ['.', '&quot;.&quot; is not a usable file name'],
    ['..', '&quot;..&quot; is not a usable file name'],
    ['a\u0000.txt', 'The file name contains control characters'],
    ['a\r.txt', 'The file name contains control characters'],
    ['y'.repeat(252) + '.txt', 'The file name is longer than 255 bytes'],
  ] as const) {
    test(`the name ${JSON.stringify(name).slice(0, 30)} is refused (400)`, async () => {
      const a = await uploadFile(server, 'a.txt', 'a')
      const before = snapshot(server)
      await expectHtmxError(await post(server, `/files/${a.id}/rename`, { name }, { htmx: true }), 400, message)
      await expectPageError(await post(server, `/files/${a.id}/rename`, { name }), 400, message)
      expect(snapshot(server)).toEqual(before)
    })
  }

  test('unknown, trashed, inside-a-trashed-folder and non-numeric files are 404', async () => {
    const trashed = await uploadFile(server, 't.txt', 't')
    await post(server, `/files/${trashed.id}/delete`)
    const folder = await makeFolder(server, 1, 'F')
    const inside = await uploadFile(server, 'in.txt', 'in', folder)
    await post(server, `/folders/${folder}/delete`)
    const before = snapshot(server)
    for (const id of ['999', String(trashed.id), String(inside.id), 'abc', '1x']) {
      const response = await post(server, `/files/${id}/rename`, { name: 'new.txt' }, { htmx: true })
      expect(response.status).toBe(404)
      expect(oobFlash(await response.text())).toMatch(/No such file|does not exist/)
    }
    expect(snapshot(server)).toEqual(before)
  })

  test('a missing name field is 400', async () => {
    const a = await uploadFile(server, 'a.txt', 'a')
    await expectHtmxError(await post(server, `/files/${a.id}/rename`, {}, { htmx: true }), 400, 'Field name is missing')
  })
})

describe('moving a file', () => {
  test('plain form: into a folder, same bytes, activity records from and to', async () => {
    const data = randomData(70_000)
    const target = await makeFolder(server, 1, 'Target')
    const file = await uploadFile(server, 'big.bin', data)
    const response = await post(server, `/files/${file.id}/move`, { target })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe(`/files/${file.id}`)
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Moved to /Target.' })
    expect(fileRow(file.id)!.folder_id).toBe(target)
    expect((await download(file.id)).bytes).toEqual(data)
    expect(listedNames(await (await server.fetch(`/folders/${target}/view`)).text())).toEqual(['big.bin'])
    expect(listedNames(await (await server.fetch('/folders/1/view')).text())).toEqual([])
    const [entry] = activityRows(server, 'file.move')
    expect(entry!.target).toBe('big.bin')
    expect(JSON.parse(entry!.details!)).toEqual({ from: '/', to: '/Target' })
  })

  test('htmx: HX-Redirect to its page', async () => {
    const target = await makeFolder(server, 1, 'Target')
    const file = await uploadFile(server, 'a.txt', 'a')
    const response = await post(server, `/files/${file.id}/move`, { target }, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe(`/files/${file.id}`)
  })

  test('a name taken in the target is 409; unknown or trashed targets 404; bad target 400; nothing changes', async () => {
    const target = await makeFolder(server, 1, 'Target')
    const gone = await makeFolder(server, 1, 'Gone')
    await post(server, `/folders/${gone}/delete`)
    await uploadFile(server, 'a.txt', 'other', target)
    const file = await uploadFile(server, 'a.txt', 'mine')
    const before = snapshot(server)
    await expectHtmxError(await post(server, `/files/${file.id}/move`, { target }, { htmx: true }), 409, 'A file named &quot;a.txt&quot; already exists there')
    await expectPageError(await post(server, `/files/${file.id}/move`, { target }), 409, 'A file named &quot;a.txt&quot; already exists there', `/files/${file.id}`)
    await expectHtmxError(await post(server, `/files/${file.id}/move`, { target: 999 }, { htmx: true }), 404, 'Folder 999 does not exist')
    await expectHtmxError(await post(server, `/files/${file.id}/move`, { target: gone }, { htmx: true }), 404, `Folder ${gone} does not exist`)
    await expectHtmxError(await post(server, `/files/${file.id}/move`, { target: 'x' }, { htmx: true }), 400, 'Field target must be an id')
    await expectHtmxError(await post(server, `/files/${file.id}/move`, {}, { htmx: true }), 400, 'Field target must be an id')
    await expectHtmxError(await post(server, '/files/999/move', { target }, { htmx: true }), 404, 'No such file')
    expect(snapshot(server)).toEqual(before)
  })

  test('moving to the folder it is already in is a harmless no-op', async () => {
    const file = await uploadFile(server, 'a.txt', 'a')
    expect((await post(server, `/files/${file.id}/move`, { target: 1 })).status).toBe(303)
    expect(fileRow(file.id)!.folder_id).toBe(1)
  })
})

describe('deleting a file', () => {
  test('plain form: into the trash, back to its folder; gone from the listing and its page', async () => {
    const folder = await makeFolder(server, 1, 'F')
    const file = await uploadFile(server, 'a.txt', 'a', folder)
    const keep = await uploadFile(server, 'keep.txt', 'k', folder)
    const response = await post(server, `/files/${file.id}/delete`)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe(`/folders/${folder}`)
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: '“a.txt” is in the trash; you can restore it from there.' })
    expect(fileRow(file.id)!.deleted_at).toBeNumber()
    expect(listedNames(await (await server.fetch(`/folders/${folder}/view`)).text())).toEqual(['keep.txt'])
    expect((await server.fetch(`/files/${file.id}`)).status).toBe(404)
    expect((await server.fetch(`/files/${keep.id}`)).status).toBe(200)
    const [entry] = activityRows(server, 'file.delete')
    expect(entry!.target).toBe('a.txt')
    expect(JSON.parse(entry!.details!)).toEqual({ folder: '/F' })
  })

  test('htmx: HX-Redirect to its folder', async () => {
    const file = await uploadFile(server, 'a.txt', 'a')
    const response = await post(server, `/files/${file.id}/delete`, {}, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe('/folders/1')
  })

  test('deleting twice, an unknown or a non-numeric file is 404', async () => {
    const file = await uploadFile(server, 'a.txt', 'a')
    await post(server, `/files/${file.id}/delete`)
    const before = snapshot(server)
    await expectHtmxError(await post(server, `/files/${file.id}/delete`, {}, { htmx: true }), 404, `File ${file.id} does not exist`)
    await expectPageError(await post(server, '/files/999/delete'), 404, 'File 999 does not exist')
    await expectPageError(await post(server, '/files/abc/delete'), 404, 'No such file')
    expect(snapshot(server)).toEqual(before)
  })

  test('a file inside a folder in the trash cannot be acted on (404), like its page', async () => {
    const folder = await makeFolder(server, 1, 'F')
    const file = await uploadFile(server, 'a.txt', 'a', folder)
    await post(server, `/folders/${folder}/delete`)
    expect((await server.fetch(`/files/${file.id}`)).status).toBe(404)
    const before = snapshot(server)
    expect((await post(server, `/files/${file.id}/delete`, {}, { htmx: true })).status).toBe(404)
    expect((await post(server, '/files/bulk', { folder: 1, ids: [file.id], action: 'move', target: 1 }, { htmx: true })).status).toBe(404)
    expect((await post(server, '/files/bulk', { folder: 1, ids: [file.id], action: 'delete' }, { htmx: true })).status).toBe(404)
    expect(snapshot(server)).toEqual(before)
  })
})

describe('bulk actions', () => {
  async function threeFiles(folder = 1) {
    return [await uploadFile(server, 'a.txt', 'a', folder), await uploadFile(server, 'b.txt', 'bb', folder), await uploadFile(server, 'c.txt', 'ccc', folder)]
  }

  test('htmx move: all selected files move; the file area comes back without them, with the message', async () => {
    const target = await makeFolder(server, 1, 'Target')
    const [a, b, c] = await threeFiles()
    const response = await post(server, '/files/bulk', { folder: 1, return: 'sort=name&dir=asc', ids: [a!.id, c!.id], action: 'move', target }, { htmx: true })
    expect(response.status).toBe(200)
    const body = await response.text()
    expect(body).toStartWith('<div id="file-area"')
    expect(body).toContain('hx-get="/folders/1/view?sort=name&amp;dir=asc"')
    expect(listedNames(body)).toEqual(['b.txt'])
    expect(oobFlash(body)).toBe('Moved 2 files to /Target.')
    expect([fileRow(a!.id)!.folder_id, fileRow(b!.id)!.folder_id, fileRow(c!.id)!.folder_id]).toEqual([target, 1, target])
    const moves = activityRows(server, 'file.move')
    expect(moves.map((m) => m.target).sort()).toEqual(['a.txt', 'c.txt'])
    for (const m of moves) expect(JSON.parse(m.details!)).toEqual({ from: '/', to: '/Target' })
  })

  test('plain move: redirect back to the listing as it was (sort, filter, page)', async () => {
    const target = await makeFolder(server, 1, 'Target')
    const [a] = await threeFiles()
    const response = await post(server, '/files/bulk', { folder: 1, return: 'sort=size&dir=asc&q=a', ids: [a!.id], action: 'move', target })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/folders/1?sort=size&dir=asc&q=a')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Moved 1 file to /Target.' })
    const next = await follow(server, response)
    expect(next.status).toBe(200)
    expect(next.body).toContain('Moved 1 file to /Target.')
  })

  test('move is all or nothing: one name conflict refuses the whole move (409)', async () => {
    const target = await makeFolder(server, 1, 'Target')
    await uploadFile(server, 'b.txt', 'theirs', target)
    const [a, b, c] = await threeFiles()
    const before = snapshot(server)
    const ids = [a!.id, b!.id, c!.id]
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids, action: 'move', target }, { htmx: true }), 409, 'A file named &quot;b.txt&quot; already exists there')
    await expectPageError(await post(server, '/files/bulk', { folder: 1, ids, action: 'move', target }), 409, 'A file named &quot;b.txt&quot; already exists there', '/folders/1?')
    expect(snapshot(server)).toEqual(before)
  })

  test('two selected files with the same name cannot land in one folder (409, none moved)', async () => {
    const one = await makeFolder(server, 1, 'One')
    const two = await makeFolder(server, 1, 'Two')
    const target = await makeFolder(server, 1, 'Target')
    const x1 = await uploadFile(server, 'same.txt', '1', one)
    const x2 = await uploadFile(server, 'same.txt', '2', two)
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/files/bulk', { folder: one, ids: [x1.id, x2.id], action: 'move', target }, { htmx: true }), 409, 'A file named &quot;same.txt&quot; already exists there')
    expect(snapshot(server)).toEqual(before)
  })

  test('an unknown or trashed id among the selection refuses the whole move (404)', async () => {
    const target = await makeFolder(server, 1, 'Target')
    const [a, b] = await threeFiles()
    await post(server, `/files/${b!.id}/delete`)
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id, 999], action: 'move', target }, { htmx: true }), 404, 'File 999 does not exist')
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id, b!.id], action: 'move', target }, { htmx: true }), 404, `File ${b!.id} does not exist`)
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id], action: 'move', target: 999 }, { htmx: true }), 404, 'Folder 999 does not exist')
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id], action: 'move' }, { htmx: true }), 400, 'Field target must be an id')
    expect(snapshot(server)).toEqual(before)
  })

  test('htmx delete: all selected go to the trash; each is logged', async () => {
    const folder = await makeFolder(server, 1, 'F')
    const [a, b, c] = await threeFiles(folder)
    const response = await post(server, '/files/bulk', { folder, return: '', ids: [a!.id, b!.id], action: 'delete' }, { htmx: true })
    expect(response.status).toBe(200)
    const body = await response.text()
    expect(listedNames(body)).toEqual(['c.txt'])
    expect(oobFlash(body)).toBe('2 files are in the trash.')
    expect(fileRow(a!.id)!.deleted_at).toBeNumber()
    expect(fileRow(b!.id)!.deleted_at).toBeNumber()
    expect(fileRow(c!.id)!.deleted_at).toBeNull()
    const deletes = activityRows(server, 'file.delete')
    expect(deletes.map((d) => d.target).sort()).toEqual(['a.txt', 'b.txt'])
    for (const d of deletes) expect(JSON.parse(d.details!)).toEqual({ folder: '/F' })
  })

  test('plain delete of one file: redirect back with the message', async () => {
    const [a] = await threeFiles()
    const response = await post(server, '/files/bulk', { folder: 1, return: 'sort=name&dir=desc', ids: [a!.id], action: 'delete' })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/folders/1?sort=name&dir=desc')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: '1 file is in the trash.' })
  })

  test('delete is all or nothing: an unknown id refuses the whole delete', async () => {
    const [a, b] = await threeFiles()
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id, b!.id, 424242], action: 'delete' }, { htmx: true }), 404, 'File 424242 does not exist')
    expect(snapshot(server)).toEqual(before)
  })

  test('no ids, bad ids, a bad or missing action are 400 and change nothing', async () => {
    const [a] = await threeFiles()
    const before = snapshot(server)
    for (const action of ['move', 'delete']) {
      await expectHtmxError(await post(server, '/files/bulk', { folder: 1, action, target: 1 }, { htmx: true }), 400, 'Select at least one file first')
      await expectPageError(await post(server, '/files/bulk', { folder: 1, action, target: 1 }), 400, 'Select at least one file first', '/folders/1?')
    }
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: ['abc'], action: 'delete' }, { htmx: true }), 400, 'Field ids must be file ids')
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id, ''], action: 'delete' }, { htmx: true }), 400, 'Field ids must be file ids')
    for (const action of ['copy', '', 'DELETE']) {
      await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id], action, target: 1 }, { htmx: true }), 400, 'Field action must be move or delete')
    }
    await expectHtmxError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id] }, { htmx: true }), 400, 'Field action must be move or delete')
    await expectPageError(await post(server, '/files/bulk', { folder: 1, ids: [a!.id], action: 'copy' }), 400, 'Field action must be move or delete')
    expect(snapshot(server)).toEqual(before)
  })

  test('a listing folder that does not exist refuses the action before anything changes', async () => {
    const [a] = await threeFiles()
    const before = snapshot(server)
    const response = await post(server, '/files/bulk', { folder: 999, ids: [a!.id], action: 'delete' }, { htmx: true })
    expect(response.status).toBe(404)
    expect(snapshot(server)).toEqual(before)
  })

  test('without a session 401, cross-site 403; nothing changes', async () => {
    const target = await makeFolder(server, 1, 'Target')
    const [a] = await threeFiles()
    const before = snapshot(server)
    const fields = { folder: 1, ids: [a!.id], action: 'move', target }
    expect((await anonymousPost(server, '/files/bulk', fields)).status).toBe(401)
    expect((await post(server, '/files/bulk', fields, { headers: CROSS_SITE })).status).toBe(403)
    expect((await post(server, '/files/bulk', { ...fields, action: 'delete' }, { headers: CROSS_SITE, htmx: true })).status).toBe(403)
    for (const [path, f] of [
      [`/files/${a!.id}/rename`, { name: 'x.txt' }],
      [`/files/${a!.id}/move`, { target }],
      [`/files/${a!.id}/delete`, {}],
    ] as const) {
      expect((await anonymousPost(server, path, f)).status).toBe(401)
      expect((await post(server, path, f, { headers: CROSS_SITE })).status).toBe(403)
    }
    expect(snapshot(server)).toEqual(before)
  })
})

describe('listing', () => {
  async function seed() {
    const sizes: Record<string, number> = { 'delta.txt': 400, 'alpha.txt': 100, 'charlie.txt': 300, 'bravo.txt': 200, '100%_done.txt': 50 }
    const ids: Record<string, number> = {}
    let t = Date.UTC(2024, 0, 1)
    for (const [name, size] of Object.entries(sizes)) {
      ids[name] = (await uploadFile(server, name, randomData(size))).id
      // Distinct upload times, in the order above.
      server.sql.run('update files set created_at = ? where id = ?', (t += 60_000), ids[name]!)
    }
    return ids
  }

  test('sorts by name, size and date in both directions (date, newest first, by default)', async () => {
    await seed()
    const names = async (query: string) => listedNames(await (await server.fetch(`/folders/1/view?${query}`)).text())
    expect(await names('')).toEqual(['100%_done.txt', 'bravo.txt', 'charlie.txt', 'alpha.txt', 'delta.txt'])
    expect(await names('sort=date&dir=asc')).toEqual(['delta.txt', 'alpha.txt', 'charlie.txt', 'bravo.txt', '100%_done.txt'])
    expect(await names('sort=name')).toEqual(['100%_done.txt', 'alpha.txt', 'bravo.txt', 'charlie.txt', 'delta.txt'])
    expect(await names('sort=name&dir=desc')).toEqual(['delta.txt', 'charlie.txt', 'bravo.txt', 'alpha.txt', '100%_done.txt'])
    expect(await names('sort=size')).toEqual(['delta.txt', 'charlie.txt', 'bravo.txt', 'alpha.txt', '100%_done.txt'])
    expect(await names('sort=size&dir=asc')).toEqual(['100%_done.txt', 'alpha.txt', 'bravo.txt', 'charlie.txt', 'delta.txt'])
    // Unknown values fall back to the defaults.
    expect(await names('sort=evil&dir=sideways&page=-3')).toEqual(await names(''))
  })

  test('the filter is a case-insensitive substring; % and _ are literal; it is echoed escaped', async () => {
    await seed()
    const view = async (q: string) => (await server.fetch(`/folders/1/view?sort=name&q=${encodeURIComponent(q)}`)).text()
    expect(listedNames(await view('ALPHA'))).toEqual(['alpha.txt'])
    expect(listedNames(await view('a.t'))).toEqual(['alpha.txt', 'delta.txt'])
    expect(listedNames(await view('%'))).toEqual(['100%_done.txt'])
    expect(listedNames(await view('_'))).toEqual(['100%_done.txt'])
    expect(listedNames(await view('  bravo  '))).toEqual(['bravo.txt'])
    const none = await view('<script>x</script>')
    expect(fileRowCount(none)).toBe(0)
    expect(none).toContain('No files match “&lt;script&gt;x&lt;/script&gt;”.')
    expect(none).not.toContain('<script>x')
    const page = await (await server.fetch('/folders/1?q=%22%3E%3Cscript%3E')).text()
    expect(page).toContain('value="&quot;&gt;&lt;script&gt;"')
  })

  test('the full page shows size, type and a download link per file', async () => {
    const file = await uploadFile(server, 'report.pdf', randomData(1500))
    const page = await (await server.fetch('/folders/1')).text()
    expect(page).toContain(`<a href="/files/${file.id}">report.pdf</a>`)
    expect(page).toContain('<td class="num" title="1500 bytes">1.5 KB</td>')
    expect(page).toContain('<td class="type">application/pdf</td>')
    expect(page).toContain(`<a href="/files/${file.id}/download" download>Download</a>`)
    expect(page).toContain('<p class="count">1 file</p>')
  })
})
