import { afterEach, describe, expect, test } from 'bun:test'
import { randomData } from '../helpers/data.ts'
import type { TestServer } from '../helpers/server.ts'
import { activityOf, adminPost, CHUNK, createLink, editLink, makeFolder, one, sendLinkChunk, startLinkServer, uploadThroughLink, visit } from './helpers.ts'


/** The admin's side of drop links: the pages, usage, and the activity log. */

let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

const page = async (s: TestServer, path: string) => {
  const response = await s.fetch(path)
  expect(response.status).toBe(200)
  return response.text()
}

describe('admin pages', () => {
  test('/links lists each link with its folder, a hint of its address, options, usage and state', async () => {
    const s = (server = await startLinkServer())
    const folder = await makeFolder(s, 1, 'Footage')
    const empty = await page(s, '/links')
    expect(empty).toContain('No links yet')
    expect(empty).toContain('action="/links"')

    const link = await createLink(s, { folder: String(folder), label: 'Shoot day 1', password: 'pass word 1', maxFileSize: '2M', maxTotalSize: '10M', maxFiles: '5', allowedTypes: 'video/*', expiresInDays: '7' })
    const plain = await createLink(s, { label: 'Plain one' })
    await uploadThroughLink(s, link, randomData(1500), { fileName: 'take1.mp4', cookie: await (async () => {
      const r = await visit(s, `${link.path}/unlock`, { method: 'POST', body: new URLSearchParams({ password: 'pass word 1' }) })
      return r.headers.get('set-cookie')!.split(';')[0]!
    })() })
    await adminPost(s, `/links/${plain.id}/disable`)

    const html = await page(s, '/links')
    expect(html).toContain(`href="/links/${link.id}"`)
    expect(html).toContain('Shoot day 1')
    expect(html).toContain('/Footage')
    // Only a hint of each address: the token is not stored, so no page can show it again.
    expect(html).toContain(`/d/…${link.token.slice(-4)}`)
    expect(html).toContain(`/d/…${plain.token.slice(-4)}`)
    expect(html).not.toContain(link.token)
    expect(html).not.toContain(plain.token)
    expect(html).toContain('password')
    expect(html).toContain('files ≤ 2.1 MB')
    expect(html).toContain('total ≤ 10 MB')
    expect(html).toContain('≤ 5 files')
    expect(html).toContain('only video/*')
    expect(html).toContain('1 file, 1.5 KB')
    expect(html).toContain('>active<')
    expect(html).toContain('>disabled<')
    // A link inheriting a folder password says so.
    await adminPost(s, '/links/folder-password', { folder: String(folder), action: 'set', password: 'folder pw 12' })
    const inheriting = await createLink(s, { folder: String(folder), label: 'Inheriting' })
    const after = await page(s, '/links')
    expect(after).toContain("folder&#39;s password")
    expect(after).toContain('Remove password')
    expect(inheriting.id).toBeGreaterThan(plain.id)
  }, 30_000)

  test('/links/<id> shows a hint of the address, the settings and the uploads through the link, in progress too', async () => {
    const s = (server = await startLinkServer())
    const link = await createLink(s, { label: 'Inbox', allowDownload: 'on', expiresInDays: '2' })
    const done = await uploadThroughLink(s, link, randomData(2000), { fileName: 'finished.txt' })
    expect((await sendLinkChunk(s, link, 'partial', randomData(3 * CHUNK), 0, { fileName: 'half-way.bin' })).status).toBe(200)

    const html = await page(s, `/links/${link.id}`)
    expect(html).toContain(`/d/…${link.token.slice(-4)}`)
    expect(html).not.toContain(link.token)
    expect(html).toContain('Received 1 file (2.0 KB), 1 in progress')
    expect(html).toContain(`<a href="/files/${done.file!.id}">finished.txt</a>`)
    expect(html).toContain('half-way.bin')
    expect(html).toContain('66 KB of 197 KB')
    expect(html).toContain('127.0.0.1')
    expect(html).toContain('name="allowDownload" checked')
    expect(html).toContain('name="noExpiry"')
    expect(html).toContain(`action="/links/${link.id}/disable"`)
    expect(html).toContain(`action="/links/${link.id}/delete"`)
    // The folder page shows who brought the file.
    const folder = await page(s, '/folders/1')
    expect(folder).toContain('finished.txt')
    const file = await page(s, `/files/${done.file!.id}`)
    expect(file).toContain(`by a visitor of drop link <a href="/links/${link.id}">`)

    expect((await s.fetch('/links/999')).status).toBe(404)
    expect((await s.fetch('/links/abc')).status).toBe(404)
    expect((await adminPost(s, '/links/999/disable')).status).toBe(404)
  }, 30_000)

  test('a new link’s full address is shown once, right after creation, in a copy field; only its hash and a hint are stored', async () => {
    const s = (server = await startLinkServer())
    const response = await adminPost(s, '/links', { folder: '1', label: 'Once' })
    expect(response.status).toBe(303)
    const location = response.headers.get('location')!
    const secrets = response.headers.getSetCookie().find((c) => c.startsWith('dropfold_link_secrets='))!
    expect(secrets).toContain(`Path=${location}`)
    expect(secrets).toContain('HttpOnly')
    const first = await s.fetch(location, { headers: { cookie: `${s.cookie}; ${secrets.split(';')[0]}` } })
    const shown = await first.text()
    const url = /value="([^"]+)" aria-label="Address"/.exec(shown)![1]!
    expect(url).toMatch(new RegExp(`^${s.url}/d/[A-Za-z0-9_-]{32}$`))
    expect(shown).toContain('shown only this once')
    // Showing it clears it: the next visit of the page has only the hint.
    expect(first.headers.getSetCookie().some((c) => c.startsWith('dropfold_link_secrets=;') && c.includes('Max-Age=0'))).toBe(true)
    const token = url.split('/d/')[1]!
    const later = await page(s, location)
    expect(later).not.toContain(token)
    expect(later).toContain(`/d/…${token.slice(-4)}`)
    const stored = JSON.stringify(s.sql.all('select * from links'))
    expect(stored).not.toContain(token)
    expect(one(s, 'select token_hint from links')).toEqual({ token_hint: token.slice(-4) })
    // And the address works.
    expect((await visit(s, `/d/${token}`)).status).toBe(200)
    // A forged cookie for another link's page shows nothing.
    const other = await adminPost(s, '/links', { folder: '1', label: 'Other' })
    const forged = `dropfold_link_secrets=${encodeURIComponent(JSON.stringify({ id: Number(other.headers.get('location')!.split('/').pop()), token, password: null }))}`
    expect(await (await s.fetch(other.headers.get('location')!, { headers: { cookie: `${s.cookie}; ${forged}` } })).text()).not.toContain(token)
  }, 30_000)

  test('create, edit, switch off and on, delete are logged in the activity log', async () => {
    const s = (server = await startLinkServer())
    const link = await createLink(s, { label: 'Logged', password: 'secret!secret', maxFiles: '3' })
    expect((await editLink(s, link.id, { label: 'Logged again', maxFiles: '4' })).status).toBe(303)
    expect((await adminPost(s, `/links/${link.id}/disable`)).status).toBe(303)
    expect((await adminPost(s, `/links/${link.id}/enable`)).status).toBe(303)
    expect((await adminPost(s, `/links/${link.id}/delete`)).status).toBe(303)

    const created = activityOf(s, 'link.create')
    expect(created).toHaveLength(1)
    expect(created[0]).toMatchObject({ actor: 'admin', target: 'Logged', client_address: '127.0.0.1' })
    const details = JSON.parse(created[0]!.details!)
    expect(details).toMatchObject({ folder: '/', password: true, maxFiles: 3, allowDownload: false, expiresAt: null })
    // The password itself, its hash and the token are never logged.
    const everything = JSON.stringify(s.sql.all('select * from activity'))
    expect(everything).not.toContain('secret!secret')
    expect(everything).not.toContain('argon2')
    expect(everything).not.toContain(link.token)

    const updated = activityOf(s, 'link.update')
    expect(updated).toHaveLength(1)
    expect(updated[0]!.target).toBe('Logged again')
    expect(JSON.parse(updated[0]!.details!)).toMatchObject({ maxFiles: 4, password: true })
    expect(activityOf(s, 'link.disable').map((r) => r.target)).toEqual(['Logged again'])
    expect(activityOf(s, 'link.enable').map((r) => r.target)).toEqual(['Logged again'])
    expect(activityOf(s, 'link.delete').map((r) => r.target)).toEqual(['Logged again'])
    expect(one(s, 'select count(*) as n from links')).toEqual({ n: 0 })
    // The activity page shows them.
    const html = await page(s, '/activity')
    expect(html).toContain('link.create')
    expect(html).toContain('link.delete')
  }, 30_000)

  test('link management needs the admin session, and refuses cross-site forms', async () => {
    const s = (server = await startLinkServer())
    const link = await createLink(s)
    for (const [path, body] of [
      ['/links', { folder: '1', label: 'x' }],
      [`/links/${link.id}`, { folder: '1', label: 'x' }],
      [`/links/${link.id}/disable`, {}],
      [`/links/${link.id}/delete`, {}],
      ['/links/folder-password', { folder: '1', action: 'set', password: 'xxxxxx' }],
    ] as const) {
      expect((await visit(s, path, { method: 'POST', body: new URLSearchParams(body) })).status).toBe(401)
      const forged = await s.fetch(path, { method: 'POST', body: new URLSearchParams(body), headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })
      expect(forged.status).toBe(403)
    }
    expect(one(s, 'select label, disabled from links')).toEqual({ label: 'Test link', disabled: 0 })
    expect(one(s, 'select count(*) as n from folders where password_hash is not null')).toEqual({ n: 0 })
  }, 30_000)
})

test('a file that came through a link names the link on its detail page', async () => {
  const s = await startLinkServer()
  try {
    const link = await createLink(s, { label: 'Footage <from> set' })
    const result = await uploadThroughLink(s, link, randomData(1000), { fileName: 'take1.mov' })
    const fileId = one<{ file_id: number }>(s, "select file_id from uploads where owner = ?", `link:${link.id}`)!.file_id
    expect(result.upload.state).toBe('complete')
    const page = await (await s.fetch(`/files/${fileId}`)).text()
    expect(page).toContain(`a visitor of drop link <a href="/links/${link.id}">“Footage &lt;from&gt; set”</a>`)
  } finally {
    await s.stop()
  }
})

test('“Share…” on a folder page opens the new-link form with that folder chosen', async () => {
  const s = await startLinkServer()
  try {
    const folderId = await makeFolder(s, 1, 'Press kit')
    const folderPage = await (await s.fetch(`/folders/${folderId}`)).text()
    expect(folderPage).toContain(`href="/links?folder=${folderId}#new-link"`)
    const links = await (await s.fetch(`/links?folder=${folderId}`)).text()
    expect(links).toContain(`<option value="${folderId}" selected>/Press kit</option>`)
  } finally {
    await s.stop()
  }
})

test('an upload in progress when its link is pointed at another folder finishes in the folder it began in; new ones go to the new folder', async () => {
  const s = await startLinkServer()
  try {
    const before = await makeFolder(s, 1, 'Before')
    const after = await makeFolder(s, 1, 'After')
    const link = await createLink(s, { folder: String(before) })
    const data = randomData(2 * CHUNK)
    expect((await sendLinkChunk(s, link, 'moving', data, 0, { fileName: 'long.bin' })).status).toBe(200)
    expect((await editLink(s, link.id, { folder: String(after) })).status).toBe(303)

    // The visitor's next chunk is not refused for naming another folder than the first one did.
    const last = await sendLinkChunk(s, link, 'moving', data, 1, { fileName: 'long.bin' })
    expect(last.status).toBe(200)
    expect((await last.json()).upload.state).toBe('complete')
    expect(one(s, 'select folder_id, size_bytes from files where name = ?', 'long.bin')).toEqual({ folder_id: before, size_bytes: data.length })

    await uploadThroughLink(s, link, randomData(1000), { fileName: 'new.bin' })
    expect(one(s, 'select folder_id from files where name = ?', 'new.bin')).toEqual({ folder_id: after })
  } finally {
    await s.stop()
  }
})
