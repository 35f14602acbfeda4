import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import {
  activityRows,
  anonymousPost,
  CROSS_SITE,
  expectHtmxError,
  expectPageError,
  flashFromCookie,
  follow,
  HX,
  makeFolder,
  oobFlash,
  post,
  row,
  rows,
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

const folderRow = (id: number) =>
  row<{ id: number; parent_id: number | null; name: string; deleted_at: number | null }>(server, 'select * from folders where id = ?', id)

/** Invalid names and the message each gets. */
const BAD_NAMES: [string, string, string][] = [
  ['empty', '', 'The folder name cannot be empty'],
  ['only spaces', '   ', 'The folder name cannot be empty'],
  ['a slash', 'a/b', 'The folder name cannot contain &quot;/&quot;'],
  ['"."', '.', '&quot;.&quot; is not a usable folder name'],
  ['".."', '..', '&quot;..&quot; is not a usable folder name'],
  ['a control character', 'a\u0001b', 'The folder name contains control characters'],
  ['a tab', 'a\tb', 'The folder name contains control characters'],
  ['a newline', 'a\nb', 'The folder name contains control characters'],
  ['DEL', 'a\u007fb', 'The folder name contains control characters'],
  ['256 ASCII bytes', 'x'.repeat(256), 'The folder name is longer than 255 bytes'],
  ['256 bytes of 2-byte characters', 'é'.repeat(128), 'The folder name is longer than 255 bytes'],
]

describe('creating folders', () => {
  test('a plain form post redirects to the parent, and the message shows once on the next page', async () => {
    const response = await post(server, '/folders/1/folders', { name: 'Projects' })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/folders/1')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Folder “Projects” created.' })
    const created = row<{ id: number; parent_id: number; name: string }>(server, "select * from folders where name = 'Projects'")!
    expect(created.parent_id).toBe(1)

    const next = await follow(server, response)
    expect(next.status).toBe(200)
    expect(next.body).toContain('<div id="flash" class="flash notice" role="status">Folder “Projects” created.</div>')
    expect(next.body).toContain(`<a href="/folders/${created.id}">📁 Projects</a>`)
    // The page that showed the message clears it.
    expect(next.setCookie).toContain('dropfold_flash=; Path=/; Max-Age=0')
    const again = await (await server.fetch('/folders/1')).text()
    expect(again).not.toContain('Folder “Projects” created.')
    expect(again).toContain('📁 Projects')
  })

  test('an htmx post answers the re-rendered file area and the message out of band', async () => {
    const response = await post(server, '/folders/1/folders', { name: 'Projects' }, { htmx: true })
    expect(response.status).toBe(200)
    const body = await response.text()
    expect(body).toStartWith('<div id="file-area"')
    expect(body).toMatch(/<a href="\/folders\/\d+">📁 Projects<\/a>/)
    expect(oobFlash(body)).toBe('Folder “Projects” created.')
    expect(body).not.toContain('<html')
    expect(response.headers.get('hx-redirect')).toBeNull()
  })

  test('folders nest, and the activity log records the full path', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, a, 'B')
    expect(folderRow(b)!.parent_id).toBe(a)
    const page = await (await server.fetch(`/folders/${b}`)).text()
    expect(page).toContain(`<a href="/folders/1">Home</a><span class="sep">/</span><a href="/folders/${a}">A</a><span class="sep">/</span><span aria-current="page">B</span>`)
    expect(activityRows(server, 'folder.create').map((r) => r.target)).toEqual(['/A/B', '/A'])
  })

  for (const [label, name, message] of BAD_NAMES) {
    test(`a name that is ${label} is refused (400), as htmx and as a plain form, and nothing changes`, async () => {
      const before = snapshot(server)
      await expectHtmxError(await post(server, '/folders/1/folders', { name }, { htmx: true }), 400, message)
      await expectPageError(await post(server, '/folders/1/folders', { name }), 400, message, '/folders/1')
      expect(snapshot(server)).toEqual(before)
    })
  }

  test('a name of exactly 255 bytes is accepted; surrounding spaces are trimmed', async () => {
    const long = 'é'.repeat(127) + 'x'
    expect(Buffer.byteLength(long)).toBe(255)
    await makeFolder(server, 1, long)
    const response = await post(server, '/folders/1/folders', { name: '  padded  ' })
    expect(response.status).toBe(303)
    expect(row(server, "select id from folders where name = 'padded'")).not.toBeNull()
  })

  test('a missing name field or a body that is not a form is refused (400)', async () => {
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/folders/1/folders', {}, { htmx: true }), 400, 'Field name is missing')
    const json = await server.fetch('/folders/1/folders', { method: 'POST', body: '{"name":"x"}', headers: { 'content-type': 'application/json', ...HX } })
    await expectHtmxError(json, 400, 'The request must be a form')
    expect(snapshot(server)).toEqual(before)
  })

  test('a duplicate name in the same folder is refused with 409 and a clear message', async () => {
    await makeFolder(server, 1, 'Docs')
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/folders/1/folders', { name: 'Docs' }, { htmx: true }), 409, 'A folder named &quot;Docs&quot; already exists here')
    await expectPageError(await post(server, '/folders/1/folders', { name: ' Docs ' }), 409, 'A folder named &quot;Docs&quot; already exists here')
    expect(snapshot(server)).toEqual(before)
    // The same name elsewhere, or differently cased, is fine.
    const other = await makeFolder(server, 1, 'Other')
    await makeFolder(server, other, 'Docs')
    await makeFolder(server, 1, 'docs')
  })

  test('a name freed by putting its folder in the trash can be used again', async () => {
    const docs = await makeFolder(server, 1, 'Docs')
    expect((await post(server, `/folders/${docs}/delete`)).status).toBe(303)
    const again = await makeFolder(server, 1, 'Docs')
    expect(again).not.toBe(docs)
  })

  test('unicode names are stored as typed (NFC) and shown escaped everywhere', async () => {
    // "</b>" has a slash, so the obvious markup example is refused like any other name with "/".
    await expectHtmxError(await post(server, '/folders/1/folders', { name: 'Über 🎉 <b>x</b>' }, { htmx: true }), 400, 'cannot contain &quot;/&quot;')
    const name = 'Über 🎉 <b>x<img src=x onerror=alert(1)> & "q" \'a\''
    // Typed decomposed (U+0055 U+0308): stored composed.
    const id = await makeFolder(server, 1, name.normalize('NFD'))
    expect(folderRow(id)!.name).toBe(name)
    const escaped = 'Über 🎉 &lt;b&gt;x&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#39;a&#39;'
    const home = await (await server.fetch('/folders/1')).text()
    expect(home).toContain(`📁 ${escaped}</a>`)
    expect(home).not.toContain('<b>x')
    const page = await (await server.fetch(`/folders/${id}`)).text()
    expect(page).toContain(`<title>${escaped} · Dropfold</title>`)
    expect(page).toContain(`<h1>${escaped}</h1>`)
    expect(page).toContain(`<span aria-current="page">${escaped}</span>`)
    expect(page).toContain(`<input name="name" value="${escaped}"`)
    expect(page).not.toContain('<b>x')
    expect(page).not.toContain('<img src=x')
    // The htmx message escapes it too.
    const dup = await post(server, '/folders/1/folders', { name }, { htmx: true })
    expect(dup.status).toBe(409)
    expect(await dup.text()).toContain(`A folder named &quot;${escaped}&quot; already exists here`)
    expect(activityRows(server, 'folder.create')[0]!.target).toBe(`/${name}`)
  })

  test('creating in a folder that does not exist, is in the trash, or has a non-numeric id is 404', async () => {
    const trashed = await makeFolder(server, 1, 'Gone')
    await post(server, `/folders/${trashed}/delete`)
    const before = snapshot(server)
    for (const id of ['999', String(trashed)]) {
      await expectHtmxError(await post(server, `/folders/${id}/folders`, { name: 'x' }, { htmx: true }), 404, `Folder ${id} does not exist`)
    }
    for (const id of ['abc', '-1', '1.5', '1e3']) {
      await expectHtmxError(await post(server, `/folders/${id}/folders`, { name: 'x' }, { htmx: true }), 404, 'No such folder')
    }
    await expectPageError(await post(server, '/folders/999/folders', { name: 'x' }), 404, 'Folder 999 does not exist')
    expect(snapshot(server)).toEqual(before)
  })
})

describe('renaming folders', () => {
  test('plain form: redirect to the folder, name changed, activity records old path and new name', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, a, 'B')
    const response = await post(server, `/folders/${b}/rename`, { name: 'Beta' })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe(`/folders/${b}`)
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Renamed to “Beta”.' })
    expect(folderRow(b)!.name).toBe('Beta')
    const [entry] = activityRows(server, 'folder.rename')
    expect(entry!.target).toBe('/A/B')
    expect(JSON.parse(entry!.details!)).toEqual({ to: 'Beta' })
    const next = await follow(server, response)
    expect(next.body).toContain('<h1>Beta</h1>')
    expect(next.body).toContain('Renamed to “Beta”.')
  })

  test('htmx: an empty answer with HX-Redirect, the message in the flash cookie', async () => {
    const a = await makeFolder(server, 1, 'A')
    const response = await post(server, `/folders/${a}/rename`, { name: 'Alpha' }, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe(`/folders/${a}`)
    expect(await response.text()).toBe('')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Renamed to “Alpha”.' })
    expect(folderRow(a)!.name).toBe('Alpha')
  })

  test('renaming to its own name (or a changed case) is allowed', async () => {
    const a = await makeFolder(server, 1, 'A')
    expect((await post(server, `/folders/${a}/rename`, { name: 'A' })).status).toBe(303)
    expect((await post(server, `/folders/${a}/rename`, { name: 'a' })).status).toBe(303)
    expect(folderRow(a)!.name).toBe('a')
  })

  test('a sibling’s name is refused with 409, nothing changes', async () => {
    const a = await makeFolder(server, 1, 'A')
    await makeFolder(server, 1, 'B')
    const before = snapshot(server)
    await expectHtmxError(await post(server, `/folders/${a}/rename`, { name: 'B' }, { htmx: true }), 409, 'A folder named &quot;B&quot; already exists here')
    await expectPageError(await post(server, `/folders/${a}/rename`, { name: 'B' }), 409, 'A folder named &quot;B&quot; already exists here', `/folders/${a}`)
    expect(snapshot(server)).toEqual(before)
  })

  for (const [label, name, message] of BAD_NAMES) {
    test(`renaming to a name that is ${label} is refused (400)`, async () => {
      const a = await makeFolder(server, 1, 'A')
      const before = snapshot(server)
      await expectHtmxError(await post(server, `/folders/${a}/rename`, { name }, { htmx: true }), 400, message)
      await expectPageError(await post(server, `/folders/${a}/rename`, { name }), 400, message)
      expect(snapshot(server)).toEqual(before)
    })
  }

  test('the home folder cannot be renamed (400)', async () => {
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/folders/1/rename', { name: 'Root' }, { htmx: true }), 400, 'The home folder cannot be renamed')
    await expectPageError(await post(server, '/folders/1/rename', { name: 'Root' }), 400, 'The home folder cannot be renamed')
    expect(snapshot(server)).toEqual(before)
  })

  test('unknown, trashed, inside-trashed and non-numeric ids are 404', async () => {
    const a = await makeFolder(server, 1, 'A')
    const inside = await makeFolder(server, a, 'Inside')
    await post(server, `/folders/${a}/delete`)
    const before = snapshot(server)
    for (const id of ['999', String(a), String(inside), 'abc', '0x1', '']) {
      const response = await post(server, `/folders/${id}/rename`, { name: 'x' }, { htmx: true })
      // An empty id is another route altogether.
      if (id === '') expect(response.status).toBe(404)
      else await expectHtmxError(response, 404, id === 'abc' || id === '0x1' ? 'No such folder' : 'does not exist')
    }
    expect(snapshot(server)).toEqual(before)
  })
})

describe('moving folders', () => {
  test('into another folder: parent changes, contents follow, activity records from and to', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, 1, 'B')
    const c = await makeFolder(server, b, 'C')
    const file = await uploadFile(server, 'inside.txt', 'hello', c)
    const response = await post(server, `/folders/${b}/move`, { target: a })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe(`/folders/${b}`)
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: 'Moved “B” to /A.' })
    expect(folderRow(b)!.parent_id).toBe(a)
    expect(folderRow(c)!.parent_id).toBe(b)
    const page = await (await server.fetch(`/folders/${c}`)).text()
    expect(page).toContain(`<a href="/folders/${a}">A</a><span class="sep">/</span><a href="/folders/${b}">B</a>`)
    expect(page).toContain('inside.txt')
    expect((await server.fetch(`/files/${file.id}`)).status).toBe(200)
    const [entry] = activityRows(server, 'folder.move')
    expect(entry!.target).toBe('/B')
    expect(JSON.parse(entry!.details!)).toEqual({ to: '/A/B' })
  })

  test('htmx: HX-Redirect to the moved folder', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, 1, 'B')
    const response = await post(server, `/folders/${b}/move`, { target: a }, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe(`/folders/${b}`)
    expect(folderRow(b)!.parent_id).toBe(a)
  })

  test('back to home, and to where it already is, both work', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, a, 'B')
    expect((await post(server, `/folders/${b}/move`, { target: a })).status).toBe(303)
    expect(folderRow(b)!.parent_id).toBe(a)
    expect((await post(server, `/folders/${b}/move`, { target: 1 })).status).toBe(303)
    expect(folderRow(b)!.parent_id).toBe(1)
  })

  test('into itself or one of its descendants is refused (400), nothing changes', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, a, 'B')
    const c = await makeFolder(server, b, 'C')
    const before = snapshot(server)
    for (const target of [a, b, c]) {
      await expectHtmxError(await post(server, `/folders/${a}/move`, { target }, { htmx: true }), 400, '&quot;A&quot; cannot be moved into itself or one of its subfolders')
      await expectPageError(await post(server, `/folders/${a}/move`, { target }), 400, '&quot;A&quot; cannot be moved into itself or one of its subfolders')
    }
    await expectHtmxError(await post(server, `/folders/${b}/move`, { target: c }, { htmx: true }), 400, 'cannot be moved into itself')
    expect(snapshot(server)).toEqual(before)
  })

  test('the home folder cannot be moved (400)', async () => {
    const a = await makeFolder(server, 1, 'A')
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/folders/1/move', { target: a }, { htmx: true }), 400, 'The home folder cannot be moved')
    await expectPageError(await post(server, '/folders/1/move', { target: 1 }), 400, 'The home folder cannot be moved')
    expect(snapshot(server)).toEqual(before)
  })

  test('a folder of the same name in the target is refused with 409', async () => {
    const a = await makeFolder(server, 1, 'A')
    await makeFolder(server, a, 'Docs')
    const docs = await makeFolder(server, 1, 'Docs')
    const before = snapshot(server)
    await expectHtmxError(await post(server, `/folders/${docs}/move`, { target: a }, { htmx: true }), 409, 'A folder named &quot;Docs&quot; already exists there')
    await expectPageError(await post(server, `/folders/${docs}/move`, { target: a }), 409, 'A folder named &quot;Docs&quot; already exists there')
    expect(snapshot(server)).toEqual(before)
  })

  test('an unknown or trashed target is 404; a missing or non-numeric target is 400', async () => {
    const a = await makeFolder(server, 1, 'A')
    const gone = await makeFolder(server, 1, 'Gone')
    const goneChild = await makeFolder(server, gone, 'Child')
    await post(server, `/folders/${gone}/delete`)
    const before = snapshot(server)
    for (const target of [999, gone, goneChild]) {
      await expectHtmxError(await post(server, `/folders/${a}/move`, { target }, { htmx: true }), 404, `Folder ${target} does not exist`)
    }
    await expectHtmxError(await post(server, `/folders/${a}/move`, {}, { htmx: true }), 400, 'Field target must be an id')
    for (const target of ['', 'abc', '-1', '1 ', '1;2']) {
      await expectHtmxError(await post(server, `/folders/${a}/move`, { target }, { htmx: true }), 400, 'Field target must be an id')
    }
    // Unknown folder to move.
    await expectHtmxError(await post(server, '/folders/999/move', { target: 1 }, { htmx: true }), 404, 'Folder 999 does not exist')
    await expectPageError(await post(server, '/folders/x/move', { target: 1 }), 404, 'No such folder')
    expect(snapshot(server)).toEqual(before)
  })
})

describe('deleting folders', () => {
  test('plain form: into the trash, back to the parent; the folder and what is in it are gone from view', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, a, 'B')
    const file = await uploadFile(server, 'deep.txt', 'deep', b)
    const response = await post(server, `/folders/${a}/delete`)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/folders/1')
    expect(flashFromCookie(response)).toEqual({ kind: 'notice', text: '“A” is in the trash; you can restore it from there.' })
    expect(folderRow(a)!.deleted_at).toBeNumber()
    // Only the folder itself is marked; its contents go with it.
    expect(folderRow(b)!.deleted_at).toBeNull()
    const home = await (await server.fetch('/folders/1')).text()
    expect(home).not.toContain('📁 A')
    for (const path of [`/folders/${a}`, `/folders/${a}/view`, `/folders/${b}`, `/files/${file.id}`]) {
      expect((await server.fetch(path)).status).toBe(404)
    }
    const [entry] = activityRows(server, 'folder.delete')
    expect(entry!.target).toBe('/A')
  })

  test('htmx: HX-Redirect to the parent folder', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, a, 'B')
    const response = await post(server, `/folders/${b}/delete`, {}, { htmx: true })
    expect(response.status).toBe(200)
    expect(response.headers.get('hx-redirect')).toBe(`/folders/${a}`)
    expect(activityRows(server, 'folder.delete')[0]!.target).toBe('/A/B')
  })

  test('the home folder cannot be deleted (400); a folder in the trash, an unknown or non-numeric one is 404', async () => {
    const a = await makeFolder(server, 1, 'A')
    await post(server, `/folders/${a}/delete`)
    const before = snapshot(server)
    await expectHtmxError(await post(server, '/folders/1/delete', {}, { htmx: true }), 400, 'The home folder cannot be deleted')
    await expectPageError(await post(server, '/folders/1/delete'), 400, 'The home folder cannot be deleted')
    await expectHtmxError(await post(server, `/folders/${a}/delete`, {}, { htmx: true }), 404, `Folder ${a} does not exist`)
    await expectHtmxError(await post(server, '/folders/999/delete', {}, { htmx: true }), 404, 'Folder 999 does not exist')
    await expectPageError(await post(server, '/folders/abc/delete'), 404, 'No such folder')
    expect(snapshot(server)).toEqual(before)
  })
})

describe('who may act', () => {
  const actions = (a: number, b: number): [string, Record<string, string | number>][] => [
    ['/folders/1/folders', { name: 'New' }],
    [`/folders/${a}/rename`, { name: 'Renamed' }],
    [`/folders/${a}/move`, { target: b }],
    [`/folders/${a}/delete`, {}],
  ]

  test('without a session every action is 401 and changes nothing', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, 1, 'B')
    const before = snapshot(server)
    for (const [path, fields] of actions(a, b)) {
      const response = await anonymousPost(server, path, fields)
      expect(response.status).toBe(401)
      expect(await response.text()).toContain('Sign in first')
    }
    expect(snapshot(server)).toEqual(before)
  })

  test('without a session, a folder page redirects to sign in; its fragment is 401', async () => {
    const page = await fetch(`${server.url}/folders/1`, { headers: { accept: 'text/html' }, redirect: 'manual' })
    expect(page.status).toBe(303)
    expect(page.headers.get('location')).toBe('/login?next=%2Ffolders%2F1')
    expect((await fetch(`${server.url}/folders/1/view`, { redirect: 'manual' })).status).toBe(401)
  })

  test('an expired or unknown session cookie is refused', async () => {
    const response = await server.fetch('/folders/1/folders', { method: 'POST', body: new URLSearchParams({ name: 'x' }), headers: { cookie: 'dropfold_session=forged' } })
    expect(response.status).toBe(401)
    expect(row(server, "select id from folders where name = 'x'")).toBeNull()
  })

  test('a cross-site request is refused (403) even with the admin cookie, and changes nothing', async () => {
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, 1, 'B')
    const before = snapshot(server)
    for (const [path, fields] of actions(a, b)) {
      for (const headers of [CROSS_SITE, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'null' }] as Record<string, string>[]) {
        for (const htmx of [false, true]) {
          const response = await post(server, path, fields, { headers, htmx })
          expect(response.status).toBe(403)
          expect(await response.text()).toContain('Cross-site request refused')
        }
      }
    }
    expect(snapshot(server)).toEqual(before)
  })

  test('a same-origin request from the page is accepted', async () => {
    const response = await post(server, '/folders/1/folders', { name: 'Mine' }, { headers: { origin: server.url, 'sec-fetch-site': 'same-origin' } })
    expect(response.status).toBe(303)
    expect(rows(server, "select id from folders where name = 'Mine'")).toHaveLength(1)
  })
})

describe('folder pages', () => {
  test('unknown, trashed and non-numeric folders are 404', async () => {
    const a = await makeFolder(server, 1, 'A')
    await post(server, `/folders/${a}/delete`)
    for (const path of ['/folders/999', '/folders/999/view', `/folders/${a}`, '/folders/abc', '/folders/abc/view', '/folders/1.0']) {
      const response = await server.fetch(path)
      expect(response.status).toBe(404)
    }
  })

  test('/ redirects to the home folder; the move choices leave out the folder itself and its subtree', async () => {
    const root = await server.fetch('/')
    expect(root.status).toBe(303)
    expect(root.headers.get('location')).toBe('/folders/1')
    const a = await makeFolder(server, 1, 'A')
    const b = await makeFolder(server, a, 'B')
    const c = await makeFolder(server, 1, 'C')
    const page = await (await server.fetch(`/folders/${a}`)).text()
    const select = /<select name="target" aria-label="Move folder to">([\s\S]*?)<\/select>/.exec(page)![1]!
    expect(select).toContain(`<option value="${c}">/C</option>`)
    expect(select).not.toContain(`value="${a}"`)
    expect(select).not.toContain(`value="${b}"`)
    // Already in home: home is not offered either.
    expect(select).not.toContain('value="1"')
  })
})
