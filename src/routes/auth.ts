import { Elysia } from 'elysia'
import type { AppDeps } from '../app.ts'
import { adminPasswordHash } from '../auth/admin-password.ts'
import { loginClaims, refusalText } from '../auth/limits.ts'
import { logActivity } from '../db/activity.ts'
import { createSession, deleteSession, SESSION_COOKIE } from '../auth/sessions.ts'
import { clientAddress } from '../http/client-address.ts'
import { cookieHeader, readCookie } from '../http/cookies.ts'
import { formFields } from '../http/form-fields.ts'
import { htmlResponse } from '../../views/html.ts'
import { loginPage } from '../../views/login.ts'

/** Only same-site paths may be a post-login destination. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/'
}

/** Checks the admin password, rate-limited per client and bounded like every password check. */
export function checkAdminPassword(deps: AppDeps, address: string, password: string, now: number) {
  return deps.passwordChecks.check({
    claims: loginClaims(address),
    slotKey: `login:${address}`,
    now,
    verify: () => Bun.password.verify(password, adminPasswordHash(deps.db)),
  })
}

export const endSessionCookie = (deps: AppDeps) => cookieHeader(SESSION_COOKIE, '', { maxAgeSeconds: 0, secure: deps.config.secureCookies })

export function authRoutes(deps: AppDeps) {
  return new Elysia({ name: 'auth' })
    .get('/login', ({ query }) => htmlResponse(loginPage({ next: safeNext(query.next) })))
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
          logActivity(deps.db, now, { actor: 'anonymous', action: 'login.failure', target: 'admin', clientAddress: address })
          return htmlResponse(loginPage({ next, error: 'Wrong password.' }), 401)
        }
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
      { parse: 'none' },
    )
    .post('/logout', ({ request }) => {
      deleteSession(deps.db, readCookie(request, SESSION_COOKIE))
      return new Response(null, { status: 303, headers: { location: '/login', 'set-cookie': endSessionCookie(deps) } })
    })
}
