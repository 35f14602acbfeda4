import { Elysia } from 'elysia'
import type { AppDeps } from '../app.ts'
import { AttemptLimiter } from '../auth/rate-limit.ts'
import { logActivity } from '../db/activity.ts'
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


export function authRoutes(deps: AppDeps) {
  const limiter = new AttemptLimiter()
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
        const waitMs = limiter.waitMs(address, now)
        if (waitMs > 0) {
          const seconds = Math.ceil(waitMs / 1000)
          return htmlResponse(loginPage({ next, error: `Too many wrong passwords. Try again in ${seconds} seconds.` }), 429, {
            'retry-after': String(seconds),
          })
        }
        if (!(await Bun.password.verify(password, deps.adminPasswordHash))) {
          limiter.failed(address, now)
          deps.log('login failed', { address })
          logActivity(deps.db, now, { actor: 'anonymous', action: 'login.failure', target: 'admin', clientAddress: address })
          return htmlResponse(loginPage({ next, error: 'Wrong password.' }), 401)
        }
        limiter.succeeded(address)
        logActivity(deps.db, now, { actor: 'admin', action: 'login.success', target: 'admin', clientAddress: address })
        const token = createSession(deps.db, { now, ttlMs: deps.config.sessionTtlMs, clientAddress: address })
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
    .post('/logout', ({ request }) => {
      deleteSession(deps.db, readCookie(request, SESSION_COOKIE))
      return new Response(null, {
        status: 303,
        headers: { location: '/login', 'set-cookie': cookieHeader(SESSION_COOKIE, '', { maxAgeSeconds: 0, secure: deps.config.secureCookies }) },
      })
    })
}
