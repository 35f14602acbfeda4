import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { changeAdminPassword, MIN_ADMIN_PASSWORD_LENGTH } from '../auth/admin-password.ts'
import { refusalText } from '../auth/limits.ts'
import { deleteSessions, SESSION_COOKIE } from '../auth/sessions.ts'
import { clientAddress } from '../http/client-address.ts'
import { readCookie } from '../http/cookies.ts'
import { formFields } from '../http/form-fields.ts'
import { htmlResponse } from '../../views/html.ts'
import { accountPage } from '../../views/account.ts'
import type { Flash } from '../../views/folder.ts'
import { adminAudit } from './audit.ts'
import { checkAdminPassword, endSessionCookie } from './auth.ts'
import { flashes } from './respond.ts'

type Ctx = { request: Request; server: Server<unknown> | null }

/** The admin's account: change the password (ending every other session) and sign out everywhere. */
export function accountRoutes(deps: AppDeps) {
  const { succeeded, takeFlash } = flashes(deps.config)
  const audit = adminAudit(deps)
  const fromEnvironment = deps.config.adminPassword !== null
  const page = (args: { error?: string; flash?: Flash | null; status?: number; headers?: Record<string, string> } = {}) =>
    htmlResponse(accountPage({ fromEnvironment, minLength: MIN_ADMIN_PASSWORD_LENGTH, error: args.error ?? null, flash: args.flash ?? null }), args.status ?? 200, args.headers)

  async function changePassword({ request, server }: Ctx): Promise<Response> {
    if (fromEnvironment) {
      return page({ status: 409, error: 'The admin password is set by ADMIN_PASSWORD in the server’s environment: change it there and restart the server.' })
    }
    const form = await formFields(request)
    const current = form.get('current') ?? ''
    const password = form.get('password') ?? ''
    if (password.length < MIN_ADMIN_PASSWORD_LENGTH) return page({ status: 400, error: `The new password needs at least ${MIN_ADMIN_PASSWORD_LENGTH} characters.` })
    if (password !== (form.get('confirm') ?? '')) return page({ status: 400, error: 'The new password and its repetition differ.' })
    const address = clientAddress(request, server, deps.config.trustProxy) ?? 'unknown'
    const outcome = await checkAdminPassword(deps, address, current, deps.clock())
    if (outcome.kind === 'refused') return page({ status: outcome.status, error: refusalText(outcome), headers: { 'retry-after': String(outcome.retryAfterSeconds) } })
    if (outcome.kind === 'wrong') {
      await audit(request, server, 'account.password.failure', 'admin')
      return page({ status: 401, error: 'The current password is wrong.' })
    }
    await changeAdminPassword(deps.store, password, readCookie(request, SESSION_COOKIE))
    await audit(request, server, 'account.password.change', 'admin')
    return succeeded(request, { flash: { kind: 'notice', text: 'Password changed. Every other session has been signed out.' }, redirect: '/account' })
  }

  return new Elysia({ name: 'account' })
    .get('/account', ({ request }) => {
      const { flash, headers } = takeFlash(request)
      return page({ flash, headers })
    })
    .post('/account/password', (ctx: Ctx) => changePassword(ctx), { parse: 'none' })
    .post('/account/sign-out-everywhere', async ({ request, server }: Ctx) => {
      await audit(request, server, 'account.sign-out-everywhere', 'admin')
      await deleteSessions(deps.store)
      return new Response(null, { status: 303, headers: { location: '/login', 'set-cookie': endSessionCookie(deps) } })
    })
}
