import { describe, expect, test } from 'bun:test'
import { randomData } from '../helpers/data.ts'
import { serverPerTest } from '../helpers/server.ts'
import {
  activityOf,
  adminPost,
  createLink,
  createdSecrets,
  editLink,
  makeFolder,
  one,
  sendLinkChunk,
  startLinkServer,
  unlock,
  unlocked,
  uploadThroughLink,
  visit,
  type CreatedLink,
} from './helpers.ts'


/**
 * Who gets in through a drop link: tokens, states (expired, switched off, deleted), link and
 * folder passwords, the unlock cookie and its scope, and that nothing else opens with a link.
 */

const setUp = serverPerTest(startLinkServer)

const html = async (response: Response) => response.text()
const isUnlockForm = (page: string, link: CreatedLink) => page.includes(`action="/d/${link.token}/unlock"`) && !page.includes('id="dropzone"')
const isUploadPage = (page: string, link: CreatedLink) => page.includes(`action="/d/${link.token}/upload"`) && page.includes('id="dropzone"')

describe('link states', () => {
  test('an open link shows its upload page to a visitor; the page posts only to the link’s own endpoints', async () => {
    const s = await setUp()
    const link = await createLink(s, { label: 'Photos from the party' })
    expect(link.token).toMatch(/^[A-Za-z0-9_-]{32}$/)
    const response = await visit(s, link.path)
    expect(response.status).toBe(200)
    const page = await html(response)
    expect(isUploadPage(page, link)).toBe(true)
    expect(page).toContain('Photos from the party')
    expect(page).toContain(`data-status-url="/d/${link.token}/upload/"`)
    // No admin navigation for visitors.
    expect(page).not.toContain('href="/links"')
    expect(page).not.toContain('/logout')
  }, 30_000)

  test('a new link expires exactly the chosen number of days after it was made, also when hashing its password takes a while', async () => {
    const s = await setUp()
    const link = await createLink(s, { expiresInDays: '1', password: 'slow to hash' })
    const row = one<{ expires_at: number; created_at: number }>(s, 'select expires_at, created_at from links where id = ?', link.id)!
    expect(row.expires_at - row.created_at).toBe(86_400_000)
  })

  test('an expired link answers 410 on every endpoint, also for an upload already in progress', async () => {
    const s = await setUp()
    const link = await createLink(s, { expiresInDays: '1' })
    const data = randomData(3 * 65536)
    expect((await sendLinkChunk(s, link, 'exp-1', data, 0)).status).toBe(200)

    // A day later (the clock moved by rewriting the expiry).
    s.sql.run('update links set expires_at = ? where id = ?', Date.now() - 1, link.id)
    const page = await visit(s, link.path)
    expect(page.status).toBe(410)
    expect(await page.text()).toContain('expired')
    const next = await sendLinkChunk(s, link, 'exp-1', data, 1)
    expect(next.status).toBe(410)
    expect((await visit(s, `${link.path}/upload/exp-1`)).status).toBe(410)
    expect((await sendLinkChunk(s, link, 'exp-2', data, 0)).status).toBe(410)
    expect((await visit(s, `${link.path}/tus/`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1' } })).status).toBe(410)
    // The upload in progress got no further.
    expect(one(s, "select received_chunks from uploads where client_key = 'no-cookie:exp-1'")).toEqual({ received_chunks: 1 })
    expect(one(s, "select count(*) as n from uploads where client_key = 'no-cookie:exp-2'")).toEqual({ n: 0 })

    // "Never expire" opens it again, and the upload continues where it stopped.
    expect((await editLink(s, link.id, { noExpiry: 'on' })).status).toBe(303)
    expect(one(s, 'select expires_at from links where id = ?', link.id)).toEqual({ expires_at: null })
    expect((await sendLinkChunk(s, link, 'exp-1', data, 1)).status).toBe(200)
    const last = await sendLinkChunk(s, link, 'exp-1', data, 2)
    expect((await last.json()).upload.state).toBe('complete')
  }, 30_000)

  test('editing with a number of days sets a new expiry; a blank one keeps it', async () => {
    const s = await setUp()
    const link = await createLink(s, { expiresInDays: '3' })
    const first = one<{ expires_at: number }>(s, 'select expires_at from links where id = ?', link.id)!.expires_at
    expect(first).toBeGreaterThan(Date.now() + 2 * 86_400_000)
    expect((await editLink(s, link.id, { label: 'renamed' })).status).toBe(303)
    expect(one(s, 'select expires_at, label from links where id = ?', link.id)).toEqual({ expires_at: first, label: 'renamed' })
    expect((await editLink(s, link.id, { expiresInDays: '10' })).status).toBe(303)
    expect(one<{ expires_at: number }>(s, 'select expires_at from links where id = ?', link.id)!.expires_at).toBeGreaterThan(Date.now() + 9 * 86_400_000)
  }, 30_000)

  test('a deleted link answers 404 like one that never existed; its files stay', async () => {
    const s = await setUp()
    const link = await createLink(s)
    const done = await uploadThroughLink(s, link, randomData(1000), { fileName: 'kept.bin' })
    const data = randomData(2 * 65536)
    expect((await sendLinkChunk(s, link, 'del-1', data, 0)).status).toBe(200)

    expect((await adminPost(s, `/links/${link.id}/delete`)).status).toBe(303)
    expect((await visit(s, link.path)).status).toBe(404)
    expect((await sendLinkChunk(s, link, 'del-1', data, 1)).status).toBe(404)
    expect((await visit(s, `${link.path}/upload/del-1`)).status).toBe(404)
    expect((await visit(s, `${link.path}/files`)).status).toBe(404)
    expect((await unlock(s, link, 'whatever')).response.status).toBe(404)
    expect((await visit(s, `${link.path}/tus/`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1' } })).status).toBe(404)
    expect(one(s, 'select name, deleted_at from files where id = ?', done.file!.id)).toEqual({ name: 'kept.bin', deleted_at: null })
    expect((await s.fetch('/links')).status).toBe(200)
    expect((await s.fetch(`/links/${link.id}`)).status).toBe(404)
  }, 30_000)
})

describe('the link’s folder', () => {
  test('a link whose folder is in the trash takes nothing (410); restored, it works again', async () => {
    const s = await setUp()
    const parent = await makeFolder(s, 1, 'Projects')
    const folder = await makeFolder(s, parent, 'Doomed')
    const link = await createLink(s, { folder: String(folder), allowDownload: 'on' })
    const data = randomData(2 * 65536)
    expect((await sendLinkChunk(s, link, 'trash-1', data, 0)).status).toBe(200)

    // The parent goes to the trash, and with it the link's folder.
    expect((await adminPost(s, `/folders/${parent}/delete`)).status).toBe(303)
    expect((await visit(s, link.path)).status).toBe(410)
    expect((await sendLinkChunk(s, link, 'trash-1', data, 1)).status).toBe(410)
    expect((await sendLinkChunk(s, link, 'trash-2', randomData(10), 0, { fileName: 'into-trash.bin' })).status).toBe(410)
    expect((await visit(s, `${link.path}/files`)).status).toBe(410)
    expect(one(s, 'select count(*) as n from files')).toEqual({ n: 0 })
    expect(await (await s.fetch('/links')).text()).toContain('(in the trash)')

    expect((await adminPost(s, `/trash/folders/${parent}/restore`)).status).toBe(303)
    expect((await visit(s, link.path)).status).toBe(200)
    expect((await (await sendLinkChunk(s, link, 'trash-1', data, 1)).json()).upload.state).toBe('complete')
  }, 30_000)
})

describe('passwords', () => {
  test('a link with a password shows the password form; wrong → 401, right → 303 and a scoped cookie; attempts are logged', async () => {
    const s = await setUp()
    const link = await createLink(s, { label: 'Secret drop', password: 'open sesame' })
    expect(one<{ password_hash: string }>(s, 'select password_hash from links where id = ?', link.id)!.password_hash).toStartWith('$argon2id$')

    const page = await visit(s, link.path)
    expect(page.status).toBe(200)
    expect(isUnlockForm(await page.text(), link)).toBe(true)
    // Nothing behind it works without the password.
    expect((await sendLinkChunk(s, link, 'pw-1', randomData(10), 0)).status).toBe(401)
    expect((await visit(s, `${link.path}/upload/pw-1`)).status).toBe(401)
    expect((await visit(s, `${link.path}/tus/`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1' } })).status).toBe(401)
    expect(one(s, 'select count(*) as n from uploads')).toEqual({ n: 0 })

    const wrong = await unlock(s, link, 'open says me')
    expect(wrong.response.status).toBe(401)
    expect(wrong.setCookie).toBeNull()
    const empty = await visit(s, `${link.path}/unlock`, { method: 'POST' })
    expect(empty.status).toBe(401)

    const right = await unlock(s, link, 'open sesame')
    expect(right.response.status).toBe(303)
    expect(right.response.headers.get('location')).toBe(link.path)
    const attributes = right.setCookie!.split(';').map((p) => p.trim())
    expect(attributes[0]).toMatch(new RegExp(`^dropfold_unlock_${link.id}=\\d+\\.[A-Za-z0-9_-]{43}$`))
    expect(attributes).toContain(`Path=${link.path}`)
    expect(attributes).toContain('HttpOnly')
    expect(attributes).toContain('SameSite=Lax')
    expect(attributes).toContain('Max-Age=43200')
    expect(attributes.some((a) => a.toLowerCase().startsWith('domain'))).toBe(false)

    const cookie = right.cookie!
    const opened = await visit(s, link.path, { cookie })
    expect(isUploadPage(await opened.text(), link)).toBe(true)
    const done = await uploadThroughLink(s, link, randomData(100), { cookie })
    expect(done.upload.state).toBe('complete')

    const failures = activityOf(s, 'link.unlock.failure')
    expect(failures).toHaveLength(2)
    expect(failures[0]).toMatchObject({ actor: 'anonymous', target: 'Secret drop', client_address: '127.0.0.1' })
    expect(JSON.parse(failures[0]!.details!)).toEqual({ link: link.id })
    expect(activityOf(s, 'link.unlock.success')).toEqual([
      { actor: `link:${link.id}`, action: 'link.unlock.success', target: 'Secret drop', details: null, client_address: '127.0.0.1' },
    ])
  }, 30_000)

  test.each(['abc', 'password1', 'aaaaaaaaaaaa', 'ABCDEFGHIJKL', '123456789012', 'short 1'])('a weak typed password (%p) is refused with the rule, for links and folders alike', async (weak) => {
    const s = await setUp()
    // A strong one is accepted: the refusal below is about the password, not the form.
    const strong = await createLink(s, { label: 'strong', password: 'Long enough 1' })
    expect((await unlock(s, strong, 'Long enough 1')).response.status).toBe(303)
    const response = await adminPost(s, '/links', { folder: '1', label: 'x', password: weak })
    expect(response.status).toBe(400)
    expect(await response.text()).toContain('At least 10 characters, mixing at least two kinds')
    expect(one(s, 'select count(*) as n from links')).toEqual({ n: 1 })
    expect((await editLink(s, strong.id, { password: weak })).status).toBe(400)
    expect((await unlock(s, strong, 'Long enough 1')).response.status).toBe(303)
    expect((await adminPost(s, '/links/folder-password', { folder: '1', action: 'set', password: weak })).status).toBe(400)
    expect(one(s, 'select count(*) as n from folders where password_hash is not null')).toEqual({ n: 0 })
  }, 30_000)

  test('the forms state the password rule and offer a generated password', async () => {
    const s = await setUp()
    const page = await html(await s.fetch('/links'))
    expect(page.match(/At least 10 characters, mixing at least two kinds/g)?.length).toBeGreaterThanOrEqual(2)
    expect(page.match(/name="generatePassword"/g)).toHaveLength(2)
  }, 30_000)

  test('a generated link password is shown once with the address, and opens the link', async () => {
    const s = await setUp()
    const response = await adminPost(s, '/links', { folder: '1', label: 'Generated', generatePassword: 'on' })
    expect(response.status).toBe(303)
    const { url, password } = await createdSecrets(s, response)
    expect(password).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/)
    const link = { id: 0, token: url!.split('/d/')[1]!, path: `/d/${url!.split('/d/')[1]}` }
    expect((await unlock(s, link, 'wrong guess 123')).response.status).toBe(401)
    expect((await unlock(s, link, password!)).response.status).toBe(303)
    // Stored only as a hash; the page does not show it again.
    expect(JSON.stringify(s.sql.all('select * from links'))).not.toContain(password!)
    const again = await html(await s.fetch(response.headers.get('location')!))
    expect(again).not.toContain(password!)
    expect(again).not.toContain(link.token)
  }, 30_000)

  test('a generated folder password is shown once and guards the folder’s links', async () => {
    const s = await setUp()
    const folder = await makeFolder(s, 1, 'Guarded')
    const response = await adminPost(s, '/links/folder-password', { folder: String(folder), action: 'set', generatePassword: 'on' })
    expect(response.status).toBe(303)
    const flash = decodeURIComponent(response.headers.getSetCookie().find((c) => c.startsWith('dropfold_flash='))!.split(';')[0]!.slice('dropfold_flash='.length))
    const password = /Its password is ([0-9A-Z-]{19})/.exec(flash)![1]!
    const link = await createLink(s, { folder: String(folder) })
    expect((await unlock(s, link, password)).response.status).toBe(303)
  }, 30_000)

  test('a folder’s password guards links to its subfolders; a link’s own password replaces it', async () => {
    const s = await setUp()
    const clients = await makeFolder(s, 1, 'Clients')
    const acme = await makeFolder(s, clients, 'Acme')
    const reports = await makeFolder(s, acme, 'Reports')
    expect((await adminPost(s, '/links/folder-password', { folder: String(clients), action: 'set', password: 'folder pass' })).status).toBe(303)
    expect(activityOf(s, 'folder.password.set')).toHaveLength(1)

    const inherited = await createLink(s, { folder: String(reports), label: 'Inherits' })
    const own = await createLink(s, { folder: String(reports), label: 'Own password', password: 'link passwd' })
    const outside = await createLink(s, { folder: '1', label: 'Root' })

    expect(isUnlockForm(await (await visit(s, inherited.path)).text(), inherited)).toBe(true)
    expect(isUnlockForm(await (await visit(s, own.path)).text(), own)).toBe(true)
    // The root is above the protected folder: not protected.
    expect(isUploadPage(await (await visit(s, outside.path)).text(), outside)).toBe(true)

    // Inherited: the folder's password opens it, the other link's does not.
    expect((await unlock(s, inherited, 'link passwd')).response.status).toBe(401)
    const inheritedCookie = await unlocked(s, inherited, 'folder pass')
    expect(isUploadPage(await (await visit(s, inherited.path, { cookie: inheritedCookie })).text(), inherited)).toBe(true)
    const stored = await uploadThroughLink(s, inherited, randomData(50), { cookie: inheritedCookie, fileName: 'report.pdf' })
    expect(one(s, 'select folder_id from files where id = ?', stored.file!.id)).toEqual({ folder_id: reports })

    // Own password: the folder's password does not open it.
    expect((await unlock(s, own, 'folder pass')).response.status).toBe(401)
    const ownCookie = await unlocked(s, own, 'link passwd')
    expect(isUploadPage(await (await visit(s, own.path, { cookie: ownCookie })).text(), own)).toBe(true)

    // A nearer protected folder wins over a farther one.
    expect((await adminPost(s, '/links/folder-password', { folder: String(acme), action: 'set', password: 'nearer pass' })).status).toBe(303)
    expect((await unlock(s, inherited, 'folder pass')).response.status).toBe(401)
    await unlocked(s, inherited, 'nearer pass')

    // Without folder passwords the inheriting link is open; the link with its own stays closed.
    expect((await adminPost(s, '/links/folder-password', { folder: String(acme), action: 'remove' })).status).toBe(303)
    expect((await adminPost(s, '/links/folder-password', { folder: String(clients), action: 'remove' })).status).toBe(303)
    expect(isUploadPage(await (await visit(s, inherited.path)).text(), inherited)).toBe(true)
    expect(isUnlockForm(await (await visit(s, own.path)).text(), own)).toBe(true)
    expect(activityOf(s, 'folder.password.remove')).toHaveLength(2)
  }, 30_000)

  test('the unlock cookie of one link opens no other link, even renamed for it, and no admin page', async () => {
    const s = await setUp()
    // Both links guarded by the same folder password: the strongest case for a mix-up.
    const shared = await makeFolder(s, 1, 'Shared')
    expect((await adminPost(s, '/links/folder-password', { folder: String(shared), action: 'set', password: 'same password' })).status).toBe(303)
    const a = await createLink(s, { folder: String(shared), label: 'A' })
    const b = await createLink(s, { folder: String(shared), label: 'B' })
    const cookieA = await unlocked(s, a, 'same password')
    const valueA = cookieA.split('=')[1]!

    // Sent to B's path as it is, and forced under B's name.
    for (const cookie of [cookieA, `dropfold_unlock_${b.id}=${valueA}`, `${cookieA}; dropfold_unlock_${b.id}=${valueA}`]) {
      expect(isUnlockForm(await (await visit(s, b.path, { cookie })).text(), b)).toBe(true)
      expect((await sendLinkChunk(s, b, 'forced', randomData(10), 0, { cookie })).status).toBe(401)
      expect((await visit(s, `${b.path}/files`, { cookie })).status).toBe(401)
    }
    // A tampered cookie (later expiry, same signature) does not work for A either.
    const [expires, mac] = valueA.split('.')
    const tampered = `dropfold_unlock_${a.id}=${Number(expires) + 1000}.${mac}`
    expect(isUnlockForm(await (await visit(s, a.path, { cookie: tampered })).text(), a)).toBe(true)
    expect(isUploadPage(await (await visit(s, a.path, { cookie: cookieA })).text(), a)).toBe(true)

    // Nothing of the admin side opens with it.
    const adminPaths: [string, RequestInit][] = [
      ['/folders/1', {}],
      ['/folders/' + shared, {}],
      ['/links', {}],
      [`/links/${a.id}`, {}],
      ['/uploads', {}],
      ['/activity', {}],
      ['/trash', {}],
      ['/upload', { method: 'POST', body: new FormData() }],
      ['/tus/', { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1' } }],
      [`/links/${a.id}/disable`, { method: 'POST' }],
      ['/links', { method: 'POST', body: new URLSearchParams({ folder: '1', label: 'evil' }) }],
    ]
    for (const [path, init] of adminPaths) {
      const response = await visit(s, path, { ...init, cookie: cookieA })
      expect({ path, status: response.status }).toEqual({ path, status: 401 })
      const page = await visit(s, path, { ...init, cookie: cookieA, headers: { accept: 'text/html' } })
      expect([401, 303]).toContain(page.status)
      if (page.status === 303) expect(page.headers.get('location')).toStartWith('/login')
    }
    const done = await uploadThroughLink(s, a, randomData(10), { cookie: cookieA })
    expect((await visit(s, `/files/${done.file!.id}/download`, { cookie: cookieA })).status).toBe(401)
    expect(one(s, 'select disabled from links where id = ?', a.id)).toEqual({ disabled: 0 })
    expect(one(s, 'select count(*) as n from links')).toEqual({ n: 2 })
  }, 30_000)

  test('changing a link’s password (or the folder password it uses) locks out old unlock cookies', async () => {
    const s = await setUp()
    const link = await createLink(s, { password: 'first pass' })
    const old = await unlocked(s, link, 'first pass')
    const data = randomData(2 * 65536)
    expect((await sendLinkChunk(s, link, 'chg-1', data, 0, { cookie: old })).status).toBe(200)

    // An edit without a password keeps it (and the cookie).
    expect((await editLink(s, link.id, { label: 'relabelled' })).status).toBe(303)
    expect(isUploadPage(await (await visit(s, link.path, { cookie: old })).text(), link)).toBe(true)

    expect((await editLink(s, link.id, { password: 'second pass' })).status).toBe(303)
    expect(isUnlockForm(await (await visit(s, link.path, { cookie: old })).text(), link)).toBe(true)
    expect((await sendLinkChunk(s, link, 'chg-1', data, 1, { cookie: old })).status).toBe(401)
    expect((await unlock(s, link, 'first pass')).response.status).toBe(401)
    const fresh = await unlocked(s, link, 'second pass')
    const done = await sendLinkChunk(s, link, 'chg-1', data, 1, { cookie: fresh })
    expect((await done.json()).upload.state).toBe('complete')

    // Removing the password opens the link to everyone.
    expect((await editLink(s, link.id, { removePassword: 'on' })).status).toBe(303)
    expect(isUploadPage(await (await visit(s, link.path)).text(), link)).toBe(true)

    // A link inheriting a folder password: changing the folder's password locks it again.
    const folder = await makeFolder(s, 1, 'Guarded')
    await adminPost(s, '/links/folder-password', { folder: String(folder), action: 'set', password: 'folder one' })
    const inheriting = await createLink(s, { folder: String(folder) })
    const cookie = await unlocked(s, inheriting, 'folder one')
    await adminPost(s, '/links/folder-password', { folder: String(folder), action: 'set', password: 'folder two' })
    expect(isUnlockForm(await (await visit(s, inheriting.path, { cookie })).text(), inheriting)).toBe(true)
    // Even setting the same password again makes a new hash: old cookies stay locked out.
    const again = await unlocked(s, inheriting, 'folder two')
    await adminPost(s, '/links/folder-password', { folder: String(folder), action: 'set', password: 'folder two' })
    expect(isUnlockForm(await (await visit(s, inheriting.path, { cookie: again })).text(), inheriting)).toBe(true)
  }, 30_000)
})
