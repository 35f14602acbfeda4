import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { adminPasswordHash } from '../auth/admin-password.ts'
import { loginClaims, refusalText } from '../auth/limits.ts'
import { createSession, deleteSession, SESSION_COOKIE } from '../auth/sessions.ts'
import { clientAddress } from '../http/client-address.ts'
import { cookieHeader, readCookie } from '../http/cookies.ts'
import { formFields } from '../http/form-fields.ts'
import { routePolicy } from '../http/guard.ts'
import { htmlResponse } from '../../views/html.ts'
import { loginPage } from '../../views/login.ts'

const NEXT_BASE = 'http://base.invalid'

/**
 * Only a path on this site may be a post-login destination, read as a browser reads a Location:
 * browsers drop tabs and newlines and take a backslash for '/', so `/<tab>/evil.example` is
 * `//evil.example`, another host. Anything with a control character or a backslash is refused.
 */
function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || /[\x00-\x1f\x7f\\]/.test(next)) return '/'
  if (!URL.canParse(next, NEXT_BASE)) return '/'
  const url = new URL(next, NEXT_BASE)
  return url.origin === NEXT_BASE ? url.pathname + url.search + url.hash : '/'
}

/** Checks the admin password, rate-limited per client and bounded like every password check. */
export function checkAdminPassword(deps: AppDeps, address: string, password: string, now: number) {
  return deps.passwordChecks.check({
    claims: loginClaims(address),
    slotKey: `login:${address}`,
    now,
    verify: async () => Bun.password.verify(password, await adminPasswordHash(deps.store)),
  })
}

export const endSessionCookie = (deps: AppDeps) => cookieHeader(SESSION_COOKIE, '', { maxAgeSeconds: 0, secure: deps.config.secureCookies })

export function authRoutes(deps: AppDeps) {
  return new Elysia({ name: 'auth' })
    .use(routePolicy)
    .get('/login', ({ query }) => htmlResponse(loginPage({ next: safeNext(query.next) })), { public: 'signing in' })
    .post(
      '/login',
      async ({ request, server }) => {
        const address = clientAddress(request, server, deps.config.trustProxy) ?? 'unknown'
        const form = await formFields(request)
        const password = form.get('password') ?? ''
        const next = safeNext(form.get('next'))
        const now = deps.clock()
        const outcome = await checkAdminPassword(deps, address, password, now)
        if (outcome.kind === 'refused') {
          return htmlResponse(loginPage({ next, error: refusalText(outcome) }), outcome.status, { 'retry-after': String(outcome.retryAfterSeconds) })
        }
        if (outcome.kind === 'wrong') {
          deps.log('login failed', { address })
          await deps.store.activity.log(now, { actor: 'anonymous', action: 'login.failure', target: 'admin', clientAddress: address })
          return htmlResponse(loginPage({ next, error: 'Wrong password.' }), 401)
        }
        await deps.store.activity.log(now, { actor: 'admin', action: 'login.success', target: 'admin', clientAddress: address })
        const token = await createSession(deps.store, { now, ttlMs: deps.config.sessionTtlMs, clientAddress: address })
        return new Response(null, {
          status: 303,
          headers: {
            location: next,
            'set-cookie': cookieHeader(SESSION_COOKIE, token, { maxAgeSeconds: deps.config.sessionTtlMs / 1000, secure: deps.config.secureCookies }),
          },
        })
      },
      { parse: 'none', public: 'signing in' },
    )
    .post('/logout', async ({ request }) => {
      await deleteSession(deps.store, readCookie(request, SESSION_COOKIE))
      return new Response(null, { status: 303, headers: { location: '/login', 'set-cookie': endSessionCookie(deps) } })
    })
}
