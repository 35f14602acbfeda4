import type { Server } from 'bun'
import { refusalText, unlockClaims } from '../../auth/limits.ts'
import { PASSWORD_HASHING } from '../../auth/admin-password.ts'
import { linkOwner, type Link as LinkRow } from '../../core/records.ts'
import type { HttpError } from '../../errors.ts'
import { clientAddress } from '../../http/client-address.ts'
import { cookieHeader } from '../../http/cookies.ts'
import { refusalOf } from '../../http/errors.ts'
import { formFields } from '../../http/form-fields.ts'
import { requiredPasswordHash, UNLOCK_TTL_MS } from '../../links/access.ts'
import { linkGonePage, unlockPage } from '../../../views/drop.ts'
import { htmlResponse } from '../../../views/html.ts'
import type { DropLinkAccess } from './access.ts'

/** A hash to verify against when there is nothing to verify, so every refusal costs the same. */
const DUMMY_HASH = Bun.password.hashSync('dropfold-no-password', PASSWORD_HASHING)

/** POST /d/:token/unlock: a visitor's password for the link, rate-limited like a sign-in. */
export async function unlockDropLink(access: DropLinkAccess, request: Request, token: string, server: Server<unknown> | null) {
  const { deps, openLiveLink, unlocks } = access
  const { store, config } = deps
  const address = clientAddress(request, server, config.trustProxy) ?? 'unknown'
  const now = deps.clock()
  const password = (await formFields(request)).get('password') ?? ''
  let link: LinkRow | null = null
  let gone: HttpError | null = null
  try {
    link = await openLiveLink(token)
  } catch (error) {
    gone = refusalOf(error)
    if (!gone) throw error
  }
  const hash = link ? await requiredPasswordHash(store, link) : null
  // Every attempt pays for one password check, whether or not the link exists.
  const outcome = await deps.passwordChecks.check({
    claims: unlockClaims(address, link && hash !== null ? link.id : null),
    slotKey: `unlock:${address}`,
    now,
    verify: () => Bun.password.verify(password, hash ?? DUMMY_HASH),
  })
  if (outcome.kind === 'refused') {
    return htmlResponse(unlockPage({ label: link?.label ?? 'Drop link', token, error: refusalText(outcome) }), outcome.status, {
      'retry-after': String(outcome.retryAfterSeconds),
    })
  }
  if (!link) {
    const status = gone?.status ?? 404
    return htmlResponse(linkGonePage({ status, message: gone?.message ?? 'There is no drop link at this address' }), status)
  }
  if (hash === null) return new Response(null, { status: 303, headers: { location: `/d/${token}` } })
  if (outcome.kind === 'wrong') {
    await store.activity.log(now, { actor: 'anonymous', action: 'link.unlock.failure', target: link.label, details: { link: link.id }, clientAddress: address })
    return htmlResponse(unlockPage({ label: link.label, token, error: 'Wrong password.' }), 401)
  }
  await store.activity.log(now, { actor: linkOwner(link.id), action: 'link.unlock.success', target: link.label, clientAddress: address })
  const cookies = await unlocks()
  const cookie = cookieHeader(cookies.name(link), cookies.value(link, hash, now), {
    path: `/d/${token}`,
    maxAgeSeconds: UNLOCK_TTL_MS / 1000,
    secure: config.secureCookies,
  })
  return new Response(null, { status: 303, headers: { location: `/d/${token}`, 'set-cookie': cookie } })
}
