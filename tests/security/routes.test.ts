import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { inParallel } from '../helpers/data.ts'
import { login, startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'
import { row, rows, uploadFile } from '../library/helpers.ts'
import { rawRequest, requestText, type RawResponse } from './raw-http.ts'


/**
 * Authorisation is decided on the route the router picked. Every route comes from the app itself
 * (`app.routes`), so a route added later is covered without touching this file.
 */

interface Route {
  method: string
  path: string
}

/** Routes anyone may call; each checks what it needs itself (a drop link its token and password). */
const PUBLIC_ROUTES = [
  'GET /healthz',
  'GET /login',
  'POST /login',
  'GET /assets/:name',
  'GET /assets/vendor/:name',
  'OPTIONS /tus',
  'OPTIONS /tus/',
  'OPTIONS /tus/:id',
  'OPTIONS /resumable',
  'OPTIONS /resumable/',
  'OPTIONS /resumable/:id',
  'OPTIONS /upload',
  'OPTIONS /upload/:key',
]
const isDropLinkRoute = (route: Route) => route.path === '/d/:token' || route.path.startsWith('/d/:token/')
const key = (route: Route) => `${route.method} ${route.path}`

const HOSTS = ['x', 'ab', 'abc', 'x:1', 'X', '[::1]:1234', 'h'.repeat(10 * 1024)]
/** Paths of public routes that a request might hide an admin path behind. */
const PUBLIC_PREFIXES = ['/assets', '/assets/vendor', '/d/some-token', '/login', '/healthz']

/** A concrete path for a route pattern: file, folder, link 1 and made-up names. */
const concrete = (path: string) =>
  path.replace(':token', 'no-such-token').replace(':id', '1').replace(':key', 'some-upload').replace(':name', 'some-name').replace('*', 'x')

const routesOf = (t: TestServer): Route[] => t.server.app.routes.map((r) => ({ method: r.method, path: r.path }))

/**
 * The answer the guard gives without the admin session: 401, or to a page request a redirect to
 * sign in. A HEAD answer has no body to say why: there the status must be the guard's.
 */
function refusedForSession(method: string, status: number, location: string | null | undefined, body: string) {
  if (method === 'HEAD') return status === 401
  return (status === 401 && body.includes('Sign in first')) || (status === 303 && (location ?? '').startsWith('/login?'))
}

const rawRefused = (method: string, response: RawResponse) => refusedForSession(method, response.status, response.headers.get('location'), response.body)

function describeRaw(method: string, target: string, host: string | null, response: RawResponse) {
  return `${method} ${target.slice(0, 80)} (Host ${host === null ? 'none' : JSON.stringify(host.slice(0, 20))}) → ${response.status}`
}

describe('every route without a session', () => {
  let t: TestServer
  let fileId: number
  let adminRoutes: Route[]

  beforeAll(async () => {
    t = await startTestServer()
    fileId = (await uploadFile(t, 'secret.txt', 'the secret')).id
    expect(fileId).toBe(1)
    const created = await t.fetch('/links', { method: 'POST', body: new URLSearchParams({ label: 'one', folder: '1' }) })
    expect(created.status).toBe(303)
    adminRoutes = routesOf(t).filter((route) => !PUBLIC_ROUTES.includes(key(route)) && !isDropLinkRoute(route))
  })
  afterAll(() => t.stop())

  test('the routes anyone may call are exactly the sign-in page, assets, health check, tus discovery and drop links', async () => {
    const routes = routesOf(t)
    for (const expected of PUBLIC_ROUTES) expect(routes.map(key)).toContain(expected)
    expect(routes.filter(isDropLinkRoute).length).toBeGreaterThan(5)
    const reachable: string[] = []
    for (const route of routes) {
      const response = await fetch(t.url + concrete(route.path), { method: route.method, redirect: 'manual', headers: { accept: 'text/html' } })
      if (!refusedForSession(route.method, response.status, response.headers.get('location'), await response.text())) reachable.push(key(route))
    }
    expect(reachable.sort()).toEqual(routes.filter((r) => PUBLIC_ROUTES.includes(key(r)) || isDropLinkRoute(r)).map(key).sort())
  })

  test('every other route refuses, whatever the Host header says', async () => {
    const failures: string[] = []
    const tasks = adminRoutes.flatMap((route) =>
      [...HOSTS, new URL(t.url).host].map((host) => async () => {
        const target = concrete(route.path)
        const response = await rawRequest(t.url, requestText(route.method, target, host))
        if (!rawRefused(route.method, response)) failures.push(describeRaw(route.method, target, host, response))
      }),
    )
    await inParallel(tasks, 8)
    expect(failures).toEqual([])
  })

  test('an admin path behind a public one never reaches the admin route', async () => {
    const failures: string[] = []
    const tasks = adminRoutes.flatMap((route) =>
      HOSTS.flatMap((host) =>
        // `/login` + `/` is `/login/`, the sign-in page itself.
        PUBLIC_PREFIXES.filter(() => route.path !== '/').map((prefix) => async () => {
          const target = prefix + concrete(route.path)
          const response = await rawRequest(t.url, requestText(route.method, target, host))
          if (response.status < 400 && !rawRefused(route.method, response)) failures.push(describeRaw(route.method, target, host, response))
        }),
      ),
    )
    await inParallel(tasks, 8)
    expect(failures).toEqual([])
    // Nothing happened: the file is still there, and no action was logged as the admin's.
    expect(row(t, 'select deleted_at from files where id = ?', fileId)).toEqual({ deleted_at: null })
    expect(rows(t, "select action from activity where actor = 'admin' and action != 'login.success'")).toEqual([
      { action: 'link.create' },
    ])
  })

  test('absolute-form request targets are routed and refused like their path', async () => {
    const failures: string[] = []
    const tasks = adminRoutes.flatMap((route) =>
      ['x', 'abc', new URL(t.url).host].flatMap((host) =>
        [`http://${host}`, `http://x/assets`, t.url].map((base) => async () => {
          const target = base + concrete(route.path)
          const response = await rawRequest(t.url, requestText(route.method, target, host))
          if (!(rawRefused(route.method, response) || (base.endsWith('/assets') && response.status === 404))) {
            failures.push(describeRaw(route.method, target, host, response))
          }
        }),
      ),
    )
    await inParallel(tasks, 8)
    expect(failures).toEqual([])
  })

  test('HEAD on every page is refused like its GET', async () => {
    const pages = adminRoutes.filter((route) => route.method === 'GET')
    expect(pages.length).toBeGreaterThan(10)
    for (const route of pages) {
      for (const host of ['x', 'abc']) {
        const response = await rawRequest(t.url, requestText('HEAD', concrete(route.path), host))
        expect(describeRaw('HEAD', route.path, host, response)).toBe(describeRaw('HEAD', route.path, host, { ...response, status: 401 }))
      }
    }
  })

  test('with the session, each of those routes does answer (so the refusals above are the guard)', async () => {
    // Signing out (here or everywhere) ends the session the others need: last.
    const endsSession = (r: { path: string }) => r.path === '/logout' || r.path === '/account/sign-out-everywhere'
    const ordered = [...adminRoutes.filter((r) => !endsSession(r)), ...adminRoutes.filter(endsSession)]
    expect(ordered.length).toBeGreaterThan(40)
    for (const route of ordered) {
      if (endsSession(route)) t.cookie = await login(t.url, TEST_PASSWORD)
      const response = await rawRequest(t.url, requestText(route.method, concrete(route.path), 'x', { cookie: t.cookie, accept: 'text/html' }))
      expect(`${key(route)} → ${rawRefused(route.method, response) ? 'refused' : 'answered'}`).toBe(`${key(route)} → answered`)
    }
  })
})

describe('reached by a one-letter host name', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer()
  })
  afterAll(() => t.stop())

  test('a signed-in admin gets their pages, their scripts and styles, and downloads', async () => {
    const file = await uploadFile(t, 'notes.txt', 'hello from nas')
    for (const host of ['x', 'nas', 'x:1', '[::1]:1234']) {
      const signedIn = { cookie: t.cookie, accept: 'text/html' }
      const home = await rawRequest(t.url, requestText('GET', '/', host, signedIn))
      expect(home.status).toBe(303)
      expect(home.headers.get('location')).toBe('/folders/1')
      const folder = await rawRequest(t.url, requestText('GET', '/folders/1', host, signedIn))
      expect(folder.status).toBe(200)
      expect(folder.body).toContain('notes.txt')
      const detail = await rawRequest(t.url, requestText('GET', `/files/${file.id}`, host, signedIn))
      expect(detail.status).toBe(200)
      expect(detail.body).toContain(file.sha256)
      const download = await rawRequest(t.url, requestText('GET', `/files/${file.id}/download`, host, signedIn))
      expect(download.status).toBe(200)
      expect(download.body).toBe('hello from nas')
      const health = await rawRequest(t.url, requestText('GET', '/healthz', host))
      expect(health.status).toBe(200)
      for (const asset of ['/assets/app.css', '/assets/upload.js', '/assets/vendor/htmx.min.js']) {
        const response = await rawRequest(t.url, requestText('GET', asset, host))
        expect(`${asset} ${response.status}`).toBe(`${asset} 200`)
      }
    }
  })

  test('signing in from it works and leads back to the page asked for', async () => {
    const asked = await rawRequest(t.url, requestText('GET', '/activity', 'x', { accept: 'text/html' }))
    expect(asked.status).toBe(303)
    expect(asked.headers.get('location')).toBe('/login?next=%2Factivity')
    const body = 'password=' + encodeURIComponent('correct horse battery') + '&next=%2Factivity'
    const signIn = await rawRequest(t.url, requestText('POST', '/login', 'x', { 'content-type': 'application/x-www-form-urlencoded' }, body))
    expect(signIn.status).toBe(303)
    expect(signIn.headers.get('location')).toBe('/activity')
  })
})
