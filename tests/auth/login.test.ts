import { afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.ts'
import { startServer } from '../../src/server.ts'
import { login, standingClock, startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'


let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

const attempt = (s: TestServer, password: string, headers: Record<string, string> = {}) =>
  fetch(`${s.url}/login`, { method: 'POST', body: new URLSearchParams({ password, next: '/folders/1' }), headers, redirect: 'manual' })

describe('admin sign-in', () => {
  test('pages redirect to the sign-in page, other requests get 401', async () => {
    server = await startTestServer()
    const page = await fetch(`${server.url}/folders/1`, { headers: { accept: 'text/html' }, redirect: 'manual' })
    expect(page.status).toBe(303)
    expect(page.headers.get('location')).toBe('/login?next=%2Ffolders%2F1')
    for (const path of ['/upload/x', '/folders/1/view', '/files/1/download']) {
      const response = await fetch(server.url + path, { redirect: 'manual' })
      expect(response.status).toBe(401)
    }
    // A path no route serves is not found, signed in or not.
    expect((await fetch(`${server.url}/folders/1/files`, { redirect: 'manual' })).status).toBe(404)
    expect((await fetch(`${server.url}/login`)).status).toBe(200)
    expect((await fetch(`${server.url}/assets/vendor/htmx.min.js`)).status).toBe(200)
    expect((await fetch(`${server.url}/assets/app.css`)).status).toBe(200)
  })

  test('the right password gives an HttpOnly, SameSite=Lax session cookie and goes to the page asked for', async () => {
    server = await startTestServer()
    const response = await attempt(server, TEST_PASSWORD)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/folders/1')
    const cookie = response.headers.get('set-cookie')!
    expect(cookie).toMatch(/^dropfold_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=604800; HttpOnly; SameSite=Lax$/)
    const page = await fetch(`${server.url}/folders/1`, { headers: { cookie: cookie.split(';')[0]! } })
    expect(page.status).toBe(200)
    // Only the hash of the session id is stored.
    const stored = server.sql.all('select id_hash from sessions') as { id_hash: string }[]
    expect(stored.some((row) => cookie.includes(row.id_hash))).toBe(false)
  })

  test('a wrong password is refused and shown on the page', async () => {
    server = await startTestServer()
    const response = await attempt(server, 'wrong password')
    expect(response.status).toBe(401)
    expect(response.headers.get('set-cookie')).toBeNull()
    expect(await response.text()).toContain('Wrong password.')
  })

  test('the post-login destination cannot point to another site', async () => {
    server = await startTestServer()
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
      const response = await fetch(`${server.url}/login`, { method: 'POST', body: new URLSearchParams({ password: TEST_PASSWORD, next }), redirect: 'manual' })
      expect(response.headers.get('location')).toBe('/')
    }
  })

  test('repeated wrong passwords from one client are slowed down, even before a right one', async () => {
    // The clock stands still: the second's wait after the fifth failure cannot run out on a slow machine.
    server = await startTestServer({}, { clock: standingClock() })
    for (let i = 0; i < 5; i++) expect((await attempt(server, `guess ${i}`)).status).toBe(401)
    const blocked = await attempt(server, TEST_PASSWORD)
    expect(blocked.status).toBe(429)
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await blocked.text()).toContain('Too many wrong passwords')
  })

  test('signing out ends the session', async () => {
    server = await startTestServer()
    expect((await server.fetch('/folders/1')).status).toBe(200)
    const out = await server.fetch('/logout', { method: 'POST' })
    expect(out.status).toBe(303)
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0')
    expect((await server.fetch('/upload/x')).status).toBe(401)
  })

  test('an expired session no longer works', async () => {
    server = await startTestServer()
    server.sql.run('update sessions set expires_at = 0')
    expect((await server.fetch('/upload/x')).status).toBe(401)
  })
})

describe('cross-site request forgery', () => {
  test.each([
    [{ origin: 'https://evil.example' }],
    [{ 'sec-fetch-site': 'cross-site' }],
    [{ 'sec-fetch-site': 'same-site', origin: 'https://sub.localhost' }],
    [{ origin: 'null' }],
  ])('a state-changing request with %p is refused', async (headers) => {
    server = await startTestServer()
    const logout = await server.fetch('/logout', { method: 'POST', headers })
    expect(logout.status).toBe(403)
    expect((await server.fetch('/upload/x')).status).toBe(404) // still signed in
    expect((await attempt(server, TEST_PASSWORD, headers)).status).toBe(403)
  })

  test('same-origin browser requests and non-browser clients pass', async () => {
    server = await startTestServer()
    const sameOrigin = await attempt(server, TEST_PASSWORD, { origin: server.url, 'sec-fetch-site': 'same-origin' })
    expect(sameOrigin.status).toBe(303)
    expect((await attempt(server, TEST_PASSWORD, { origin: server.url })).status).toBe(303)
    expect((await attempt(server, TEST_PASSWORD)).status).toBe(303)
  })
})

describe('the generated admin password', () => {
  test('is made on first start, shown once, stored only as an argon2id hash, and works after a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dropfold-test-'))
    const config = loadConfig({ PORT: '0', DATA_DIR: dataDir })
    try {
      const first = await startServer(config, { log: () => {} })
      const password = first.generatedPassword!
      expect(password).toMatch(/^[A-Za-z0-9_-]{20}$/)
      const stored = await first.store.settings.get('admin_password_hash')
      expect(stored).toStartWith('$argon2id$')
      expect(stored).not.toContain(password)
      await first.stop()

      const second = await startServer(config, { log: () => {} })
      expect(second.generatedPassword).toBeNull()
      expect(await login(second.url, password)).toStartWith('dropfold_session=')
      await second.stop()
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})

describe('unknown paths', () => {
  test('are 404, not server errors, signed in or not', async () => {
    server = await startTestServer()
    expect((await server.fetch('/favicon.ico')).status).toBe(404)
    expect((await server.fetch('/no/such/page')).status).toBe(404)
    expect(server.logs.filter((line) => line.startsWith('unexpected error'))).toEqual([])
  })
})

test('with SECURE_COOKIES=true every cookie the server sets carries Secure (session, flash messages, drop-link visitor and unlock)', async () => {
  server = await startTestServer({ SECURE_COOKIES: 'true' })
  const s = server
  const cookies: string[] = []
  const keep = (response: Response) => {
    cookies.push(...response.headers.getSetCookie())
    return response
  }
  const session = await attempt(s, TEST_PASSWORD).then(keep)
  const admin = { cookie: session.headers.get('set-cookie')!.split(';')[0]!, origin: s.url }
  // A plain form post leaves a flash message; the next page clears it.
  const made = keep(await fetch(`${s.url}/folders/1/folders`, { method: 'POST', body: new URLSearchParams({ name: 'Secure' }), headers: admin, redirect: 'manual' }))
  expect(made.status).toBe(303)
  const flash = made.headers.getSetCookie().find((c) => c.startsWith('dropfold_flash='))!.split(';')[0]!
  keep(await fetch(s.url + made.headers.get('location'), { headers: { ...admin, cookie: `${admin.cookie}; ${flash}` } }))
  // A drop link with a password: the visitor cookie and the unlock cookie.
  const created = keep(await fetch(`${s.url}/links`, { method: 'POST', body: new URLSearchParams({ folder: '1', label: 'L', password: 'open sesame' }), headers: admin, redirect: 'manual' }))
  const secrets = keep(await fetch(s.url + created.headers.get('location'), { headers: { ...admin, cookie: `${admin.cookie}; ${created.headers.getSetCookie().find((c) => c.startsWith('dropfold_link_secrets='))!.split(';')[0]}` } }))
  const token = /\/d\/([A-Za-z0-9_-]+)"/.exec(await secrets.text())![1]!
  const unlocked = keep(await fetch(`${s.url}/d/${token}/unlock`, { method: 'POST', body: new URLSearchParams({ password: 'open sesame' }), redirect: 'manual' }))
  keep(await fetch(`${s.url}/d/${token}`, { headers: { cookie: unlocked.headers.get('set-cookie')!.split(';')[0]! } }))
  keep(await fetch(`${s.url}/logout`, { method: 'POST', headers: admin, redirect: 'manual' }))

  const names = cookies.map((c) => c.split('=')[0])
  // Fails if one of these paths stopped setting its cookie, so the check below would miss it.
  for (const name of ['dropfold_session', 'dropfold_flash', 'dropfold_visitor', 'dropfold_link_secrets']) expect(names).toContain(name)
  expect(names.some((n) => n!.startsWith('dropfold_unlock_'))).toBe(true)
  expect(created.status).toBe(303)
  expect(cookies.length).toBeGreaterThanOrEqual(6)
  for (const cookie of cookies) expect(cookie).toEndWith('; Secure')
})
