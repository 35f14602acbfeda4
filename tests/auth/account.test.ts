import { afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { login, startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'


/** The admin's account page: changing the password and signing out everywhere end sessions. */

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** A server on its own data directory, with ADMIN_PASSWORD as given (or none: a generated one). */
async function serverWith(adminPassword: string | null, dataDir = mkdtempSync(join(tmpdir(), 'dropfold-test-'))) {
  const config = loadConfig({ PORT: '0', DATA_DIR: dataDir, ...(adminPassword === null ? {} : { ADMIN_PASSWORD: adminPassword }) })
  const running = await startServer(config, { log: () => {} })
  let stopped = false
  const stop = async () => {
    if (!stopped) await running.stop()
    stopped = true
  }
  cleanups.push(async () => {
    await stop()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return { running, dataDir, stop }
}

const signedIn = (running: RunningServer, cookie: string) =>
  fetch(`${running.url}/upload/none`, { headers: { cookie }, redirect: 'manual' }).then((r) => r.status !== 401)

const post = (running: RunningServer, path: string, cookie: string, fields: Record<string, string> = {}) =>
  fetch(running.url + path, { method: 'POST', body: new URLSearchParams(fields), headers: { cookie }, redirect: 'manual' })

describe('changing the admin password', () => {
  test('stores the new password and ends every other session; this one stays', async () => {
    const { running } = await serverWith(null)
    const old = running.generatedPassword!
    const mine = await login(running.url, old)
    const other = await login(running.url, old)
    expect(await signedIn(running, other)).toBe(true)
    const page = await (await fetch(`${running.url}/account`, { headers: { cookie: mine } })).text()
    expect(page).toContain('action="/account/password"')
    expect(page).toContain('At least 8 characters')

    const changed = await post(running, '/account/password', mine, { current: old, password: 'a new admin password', confirm: 'a new admin password' })
    expect(changed.status).toBe(303)
    expect(changed.headers.get('location')).toBe('/account')
    expect(await signedIn(running, mine)).toBe(true)
    expect(await signedIn(running, other)).toBe(false)
    await expect(login(running.url, old)).rejects.toThrow('login failed: 401')
    expect(await login(running.url, 'a new admin password')).toStartWith('dropfold_session=')
    const logged = (await running.store.activity.list({ limit: 100 })).map((entry) => entry.action).filter((action) => action.startsWith('account.'))
    expect(logged).toEqual(['account.password.change'])
  }, 60_000)

  test('refuses a wrong current password, a short or unrepeated new one, and changes nothing', async () => {
    const { running } = await serverWith(null)
    const old = running.generatedPassword!
    const mine = await login(running.url, old)
    const other = await login(running.url, old)
    const cases: [Record<string, string>, number, string][] = [
      [{ current: 'not it at all', password: 'a new admin password', confirm: 'a new admin password' }, 401, 'The current password is wrong.'],
      [{ current: old, password: 'short', confirm: 'short' }, 400, 'at least 8 characters'],
      [{ current: old, password: 'a new admin password', confirm: 'a new admin passwort' }, 400, 'differ'],
    ]
    for (const [fields, status, message] of cases) {
      const response = await post(running, '/account/password', mine, fields)
      expect(response.status).toBe(status)
      expect(await response.text()).toContain(message)
    }
    expect(await signedIn(running, other)).toBe(true)
    expect(await login(running.url, old)).toStartWith('dropfold_session=')
  }, 60_000)

  test('is rate-limited like signing in', async () => {
    const { running } = await serverWith(null)
    const mine = await login(running.url, running.generatedPassword!)
    for (let i = 0; i < 5; i++) {
      expect((await post(running, '/account/password', mine, { current: `guess ${i}`, password: 'a new admin password', confirm: 'a new admin password' })).status).toBe(401)
    }
    const blocked = await post(running, '/account/password', mine, { current: running.generatedPassword!, password: 'a new admin password', confirm: 'a new admin password' })
    expect(blocked.status).toBe(429)
    expect(blocked.headers.get('retry-after')).toBe('1')
  }, 60_000)

  test('is refused, and the page says why, when ADMIN_PASSWORD is set', async () => {
    const s: TestServer = await startTestServer()
    cleanups.push(() => s.stop())
    expect(await (await s.fetch('/account')).text()).toContain('set by <code>ADMIN_PASSWORD</code>')
    const response = await s.fetch('/account/password', { method: 'POST', body: new URLSearchParams({ current: TEST_PASSWORD, password: 'a new admin password', confirm: 'a new admin password' }) })
    expect(response.status).toBe(409)
    expect(await response.text()).toContain('ADMIN_PASSWORD')
    expect(await login(s.url, TEST_PASSWORD)).toStartWith('dropfold_session=')
  }, 60_000)
})

test('"Sign out everywhere" ends every session, this one too', async () => {
  const s: TestServer = await startTestServer()
  cleanups.push(() => s.stop())
  const other = await login(s.url, TEST_PASSWORD)
  const out = await s.fetch('/account/sign-out-everywhere', { method: 'POST' })
  expect(out.status).toBe(303)
  expect(out.headers.get('location')).toBe('/login')
  expect(out.headers.get('set-cookie')).toContain('Max-Age=0')
  expect(await signedIn(s.server, s.cookie)).toBe(false)
  expect(await signedIn(s.server, other)).toBe(false)
  expect(await login(s.url, TEST_PASSWORD)).toStartWith('dropfold_session=')
}, 60_000)

test('the account page is in the top menu', async () => {
  const s: TestServer = await startTestServer()
  cleanups.push(() => s.stop())
  expect(await (await s.fetch('/folders/1')).text()).toContain('<a href="/account">Account</a>')
}, 60_000)

describe('restarting with another ADMIN_PASSWORD', () => {
  test('ends the sessions made under the old one; the same password keeps them', async () => {
    const first = await serverWith('the first password')
    const cookie = await login(first.running.url, 'the first password')
    await first.stop()

    const same = await serverWith('the first password', first.dataDir)
    expect(await signedIn(same.running, cookie)).toBe(true)
    await same.stop()

    const changed = await serverWith('the second password', first.dataDir)
    expect(await signedIn(changed.running, cookie)).toBe(false)
    expect(await login(changed.running.url, 'the second password')).toStartWith('dropfold_session=')
  }, 60_000)

  test('ends them when ADMIN_PASSWORD is removed and the stored password takes over', async () => {
    const first = await serverWith(null)
    const generated = first.running.generatedPassword!
    await first.stop()
    const configured = await serverWith('a configured password', first.dataDir)
    const cookie = await login(configured.running.url, 'a configured password')
    await configured.stop()
    const stored = await serverWith(null, first.dataDir)
    expect(await signedIn(stored.running, cookie)).toBe(false)
    expect(await login(stored.running.url, generated)).toStartWith('dropfold_session=')
  }, 60_000)
})
