import { describe, expect, test } from 'bun:test'
import { startTestServer, type TestServer, serverPerTest } from '../helpers/server.ts'
import { activityRows, halfUpload, makeFolder, post, row, uploadFile } from './helpers.ts'


const start = serverPerTest(startTestServer)

const loginAttempt = (s: TestServer, password: string, headers: Record<string, string> = {}) =>
  fetch(`${s.url}/login`, { method: 'POST', body: new URLSearchParams({ password }), headers, redirect: 'manual' })

/** Rows of an activity table: [who, action, what, details, from]. */
function shownRows(body: string) {
  return [...body.matchAll(/<tr>\s*<td>[^<]*<\/td><td>([^<]*)<\/td><td><code>([^<]*)<\/code><\/td>\s*<td class="name">([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>\s*<\/tr>/g)].map(
    (m) => ({ actor: m[1]!, action: m[2]!, target: m[3]!, details: m[4]!, from: m[5]! }),
  )
}

const olderLink = (body: string) => /<a href="\/activity\?([^"]*)" hx-get="\/activity\/list\?([^"]*)"[^>]*>Older →<\/a>/.exec(body)

describe('what is recorded', () => {
  test('sign-ins: success as admin and failure as anonymous, both with the client address', async () => {
    const s = await start()
    const [success] = activityRows(s, 'login.success')
    expect(success).toMatchObject({ actor: 'admin', target: 'admin', client_address: '127.0.0.1' })
    expect((await loginAttempt(s, 'wrong password')).status).toBe(401)
    const [failure] = activityRows(s, 'login.failure')
    expect(failure).toMatchObject({ actor: 'anonymous', target: 'admin', client_address: '127.0.0.1', details: null })
    // The password tried is never recorded.
    expect(JSON.stringify(activityRows(s))).not.toContain('wrong password')
  })

  test('behind a trusted proxy the address is the forwarded client', async () => {
    const s = await start({ TRUST_PROXY: 'true' })
    await loginAttempt(s, 'nope nope', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' }) // the proxy appended the right-most
    expect(activityRows(s, 'login.failure')[0]!.client_address).toBe('203.0.113.7')
    await post(s, '/folders/1/folders', { name: 'Proxied' }, { headers: { 'x-forwarded-for': '198.51.100.4' } })
    expect(activityRows(s, 'folder.create')[0]!.client_address).toBe('198.51.100.4')
  })

  test('without a trusted proxy X-Forwarded-For is ignored', async () => {
    const s = await start()
    await loginAttempt(s, 'nope nope', { 'x-forwarded-for': '203.0.113.7' })
    expect(activityRows(s, 'login.failure')[0]!.client_address).toBe('127.0.0.1')
  })

  test('every management action writes one row with its action, target and details', async () => {
    const s = await start()
    const a = await makeFolder(s, 1, 'A')
    const b = await makeFolder(s, 1, 'B')
    await post(s, `/folders/${b}/rename`, { name: 'Beta' })
    await post(s, `/folders/${b}/move`, { target: a })
    const file = await uploadFile(s, 'doc.txt', 'doc')
    await post(s, `/files/${file.id}/rename`, { name: 'note.txt' })
    await post(s, `/files/${file.id}/move`, { target: a })
    await post(s, `/files/${file.id}/delete`)
    await post(s, `/trash/files/${file.id}/restore`)
    await post(s, `/folders/${b}/delete`)
    await post(s, `/trash/folders/${b}/restore`)
    await post(s, `/folders/${b}/delete`)
    await post(s, '/trash/empty')
    const { id: uploadId } = await halfUpload(s, 'half.bin')
    await post(s, `/uploads/${uploadId}/cancel`)
    await post(s, `/uploads/${uploadId}/dismiss`)

    const log = activityRows(s)
      .reverse()
      .map((r) => [r.actor, r.action, r.target, r.details === null ? null : JSON.parse(r.details), r.client_address])
    expect(log).toEqual([
      ['admin', 'login.success', 'admin', null, '127.0.0.1'],
      ['admin', 'folder.create', '/A', null, '127.0.0.1'],
      ['admin', 'folder.create', '/B', null, '127.0.0.1'],
      ['admin', 'folder.rename', '/B', { to: 'Beta' }, '127.0.0.1'],
      ['admin', 'folder.move', '/Beta', { to: '/A/Beta' }, '127.0.0.1'],
      ['admin', 'file.rename', 'doc.txt', { to: 'note.txt', folder: '/' }, '127.0.0.1'],
      ['admin', 'file.move', 'note.txt', { from: '/', to: '/A' }, '127.0.0.1'],
      ['admin', 'file.delete', 'note.txt', { folder: '/A' }, '127.0.0.1'],
      ['admin', 'file.restore', 'note.txt', { folder: '/A' }, '127.0.0.1'],
      ['admin', 'folder.delete', '/A/Beta', null, '127.0.0.1'],
      ['admin', 'folder.restore', '/A/Beta', null, '127.0.0.1'],
      ['admin', 'folder.delete', '/A/Beta', null, '127.0.0.1'],
      ['admin', 'trash.empty', 'trash', { files: 0, folders: 1, blobsRemoved: 0 }, '127.0.0.1'],
      ['admin', 'upload.cancel', 'half.bin', null, '127.0.0.1'],
      ['admin', 'upload.remove', 'half.bin', null, '127.0.0.1'],
    ])
  })

  test('refused actions, page views and uploads write nothing', async () => {
    const s = await start()
    const a = await makeFolder(s, 1, 'A')
    const count = () => (row<{ n: number }>(s, 'select count(*) as n from activity')!).n
    const before = count()
    await post(s, '/folders/1/folders', { name: 'A' })
    await post(s, '/folders/1/folders', { name: '' })
    await post(s, `/folders/${a}/move`, { target: a })
    await post(s, '/folders/1/delete')
    await post(s, '/files/bulk', { folder: 1, action: 'delete' })
    await post(s, '/folders/1/folders', { name: 'X' }, { headers: { origin: 'https://evil.example' } })
    await s.fetch('/folders/1')
    await s.fetch('/trash')
    await s.fetch('/activity')
    await uploadFile(s, 'u.txt', 'u')
    expect(count()).toBe(before)
  })
})

describe('the activity page', () => {
  test('shows rows newest first with escaped targets and readable details', async () => {
    const s = await start()
    const id = await makeFolder(s, 1, '<script>alert(1)</script>'.replace('/', '∕'))
    await post(s, `/folders/${id}/rename`, { name: 'Plain & "simple"' })
    const response = await s.fetch('/activity')
    expect(response.status).toBe(200)
    const body = await response.text()
    expect(body).not.toContain('<script>alert(1)')
    const shown = shownRows(body)
    expect(shown.map((r) => r.action)).toEqual(['folder.rename', 'folder.create', 'login.success'])
    expect(shown[0]).toEqual({ actor: 'admin', action: 'folder.rename', target: '/&lt;script&gt;alert(1)&lt;∕script&gt;', details: 'to: Plain &amp; &quot;simple&quot;', from: '127.0.0.1' })
    expect(shown[2]).toEqual({ actor: 'admin', action: 'login.success', target: 'admin', details: '', from: '127.0.0.1' })
    // Every recorded action is offered as a filter.
    for (const action of ['folder.create', 'folder.rename', 'login.success']) expect(body).toContain(`<option value="${action}">${action}</option>`)
    expect(olderLink(body)).toBeNull()
  })

  test('filters by action, by actor and by text in target or details (page and fragment)', async () => {
    const s = await start()
    await loginAttempt(s, 'bad password 1')
    const reports = await makeFolder(s, 1, 'Reports')
    await makeFolder(s, 1, 'Photos')
    await post(s, `/folders/${reports}/rename`, { name: 'Quarterly 100%' })

    const actions = async (query: string) => {
      const page = await s.fetch(`/activity?${query}`)
      const fragment = await s.fetch(`/activity/list?${query}`)
      expect(page.status).toBe(200)
      expect(fragment.status).toBe(200)
      const fragmentBody = await fragment.text()
      expect(fragmentBody).toStartWith('<div id="activity-list">')
      expect(fragmentBody).not.toContain('<html')
      const fromPage = shownRows(await page.text()).map((r) => `${r.action} ${r.target}`)
      expect(shownRows(fragmentBody).map((r) => `${r.action} ${r.target}`)).toEqual(fromPage)
      return fromPage
    }
    expect(await actions('action=folder.create')).toEqual(['folder.create /Photos', 'folder.create /Reports'])
    expect(await actions('actor=anonymous')).toEqual(['login.failure admin'])
    expect(await actions('actor=%20admin%20&action=login.success')).toEqual(['login.success admin'])
    // Text matches the target...
    expect(await actions('q=photos')).toEqual(['folder.create /Photos'])
    // ...and the details.
    expect(await actions('q=Quarterly')).toEqual(['folder.rename /Reports'])
    // % and _ are literal.
    expect(await actions('q=100%25')).toEqual(['folder.rename /Reports'])
    expect(await actions('q=%25%25')).toEqual([])
    expect(await actions('q=_')).toEqual([])
    expect(await actions('action=folder.create&q=Reports')).toEqual(['folder.create /Reports'])
    expect(await actions('action=no.such')).toEqual([])
    const none = await (await s.fetch('/activity/list?q=zzz')).text()
    expect(none).toContain('Nothing recorded that matches.')
    // The filter form keeps what was asked for, escaped.
    const page = await (await s.fetch('/activity?action=folder.create&actor=%3Cb%3E&q=%22x')).text()
    expect(page).toContain('<option value="folder.create" selected>folder.create</option>')
    expect(page).toContain('<input name="actor" value="&lt;b&gt;"')
    expect(page).toContain('value="&quot;x"')
  })

  test('pages of 100 with an "Older" link that keeps the filters (before = last id shown)', async () => {
    const s = await start()
    const entries = Array.from({ length: 250 }, (_, k) => [1_700_000_000_000 + k + 1, 'admin', (k + 1) % 2 ? 'file.delete' : 'file.move', `file-${k + 1}.txt`, null, '127.0.0.1'])
    s.sql.run(`insert into activity (at, actor, action, target, details, client_address) values ${entries.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`, ...entries.flat())
    const total = row<{ n: number }>(s, 'select count(*) as n from activity')!.n
    expect(total).toBe(251)

    const seen: string[] = []
    let query = ''
    let pages = 0
    for (;;) {
      const body = await (await s.fetch(pages === 0 ? '/activity' : `/activity/list?${query}`)).text()
      const shown = shownRows(body)
      seen.push(...shown.map((r) => r.target))
      pages++
      const link = olderLink(body)
      if (!link) break
      expect(shown).toHaveLength(100)
      expect(link[1]).toBe(link[2]!)
      const params = new URLSearchParams(link[1]!.replaceAll('&amp;', '&'))
      const lastId = row<{ id: number }>(s, 'select id from activity where target = ?', shown.at(-1)!.target)!.id
      expect(params.get('before')).toBe(String(lastId))
      query = params.toString()
    }
    expect(pages).toBe(3)
    expect(seen).toHaveLength(251)
    expect(new Set(seen).size).toBe(251)
    expect(seen[0]).toBe('file-250.txt')
    expect(seen.at(-1)).toBe('admin')

    // With a filter, the pages hold only matching rows, and the link carries the filter.
    const first = await (await s.fetch('/activity/list?action=file.move')).text()
    expect(shownRows(first)).toHaveLength(100)
    const link = olderLink(first)!
    const params = new URLSearchParams(link[2]!.replaceAll('&amp;', '&'))
    expect(params.get('action')).toBe('file.move')
    const second = shownRows(await (await s.fetch(`/activity/list?${params}`)).text())
    expect(second).toHaveLength(25)
    expect(second.every((r) => r.action === 'file.move')).toBe(true)
    expect(second.at(-1)!.target).toBe('file-2.txt')
  })

  test('a bad "before" is ignored; before=1 shows nothing older', async () => {
    const s = await start()
    await makeFolder(s, 1, 'A')
    expect(shownRows(await (await s.fetch('/activity/list?before=abc')).text())).toHaveLength(2)
    expect(shownRows(await (await s.fetch('/activity/list?before=-5')).text())).toHaveLength(2)
    expect(shownRows(await (await s.fetch('/activity/list?before=2')).text()).map((r) => r.action)).toEqual(['login.success'])
    expect(await (await s.fetch('/activity/list?before=1')).text()).toContain('<p class="empty">Nothing recorded')
  })

  test('only the admin may read it', async () => {
    const s = await start()
    const page = await fetch(`${s.url}/activity`, { headers: { accept: 'text/html' }, redirect: 'manual' })
    expect(page.status).toBe(303)
    expect(page.headers.get('location')).toBe('/login?next=%2Factivity')
    expect((await fetch(`${s.url}/activity/list`)).status).toBe(401)
  })
})
