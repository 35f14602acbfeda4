import type { Server } from 'bun'
import { randomBytes } from 'node:crypto'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { refusalText, unlockClaims } from '../auth/limits.ts'
import { PASSWORD_HASHING } from '../auth/admin-password.ts'
import { linkOwner, type Link as LinkRow } from '../core/records.ts'
import { HttpError } from '../errors.ts'
import { clientAddress } from '../http/client-address.ts'
import { cookieHeader, readCookie } from '../http/cookies.ts'
import { refusalOf } from '../http/errors.ts'
import { formFields } from '../http/form-fields.ts'
import { routePolicy } from '../http/guard.ts'
import { linkAdmission, openLink, requiredPasswordHash, UnlockCookies, UNLOCK_TTL_MS, cookieSecret } from '../links/access.ts'
import { dropzoneRoutes } from '../protocols/dropzone.ts'
import type { UploadPrincipal } from '../protocols/principal.ts'
import { isCorsOrigin, tusRoutes } from '../protocols/tus/routes.ts'
import { dropFileList, dropPage, linkGonePage, unlockPage } from '../../views/drop.ts'
import { htmlResponse } from '../../views/html.ts'
import { fileResponse } from './downloads.ts'

/** A hash to verify against when there is nothing to verify, so every refusal costs the same. */
const DUMMY_HASH = Bun.password.hashSync('dropfold-no-password', PASSWORD_HASHING)
const FILE_LIST_LIMIT = 500
const VISITOR_COOKIE = 'dropfold_visitor'

/**
 * What a drop link (/d/<token>) opens for a visitor without an account: its upload page, the
 * Dropzone and tus endpoints bound to its folder and limits, and (if allowed) that folder's
 * files. Nothing else of the server is reachable through it.
 */
export function dropRoutes(deps: AppDeps) {
  const { store, config } = deps
  let unlockCookies: Promise<UnlockCookies> | undefined
  const unlocks = () => (unlockCookies ??= cookieSecret(store).then((secret) => new UnlockCookies(secret)))

  async function isUnlocked(request: Request, link: LinkRow): Promise<boolean> {
    const hash = await requiredPasswordHash(store, link)
    const cookies = await unlocks()
    return hash === null || cookies.valid(link, hash, readCookie(request, cookies.name(link)), deps.clock())
  }

  /** A usable link whose folder is live: a link into the trash takes nothing (the trash is purged). */
  async function openLiveLink(token: string): Promise<LinkRow> {
    const link = await openLink(store, token, deps.clock())
    if (await store.library.isInTrash(link.folderId)) throw new HttpError(410, 'The folder of this drop link has been deleted')
    return link
  }

  /** The link behind a request, checked on every request: disabling or expiry takes effect at once. */
  async function linkFor(request: Request, token: string): Promise<LinkRow> {
    const link = await openLiveLink(token)
    if (!(await isUnlocked(request, link))) throw new HttpError(401, 'Enter the password of this link first')
    return link
  }

  const principal = async (request: Request, params: Record<string, string>): Promise<UploadPrincipal> => {
    const link = await linkFor(request, params.token ?? '')
    return {
      owner: linkOwner(link.id),
      folderId: link.folderId,
      admit: linkAdmission(link),
      sizeUpFront: true,
      fileUrl: (fileId) => (link.allowDownload ? `/d/${params.token}/files/${fileId}/download` : null),
      clientKeyScope: visitorOf(request) ?? 'no-cookie',
    }
  }

  /** A visitor's own random id (a cookie set by the link's page), to keep visitors' uploads apart. */
  function visitorOf(request: Request): string | null {
    const id = readCookie(request, VISITOR_COOKIE)
    return id && /^[A-Za-z0-9_-]{22}$/.test(id) ? id : null
  }

  function visitorCookie(request: Request, token: string): Record<string, string> {
    if (visitorOf(request)) return {}
    const id = randomBytes(16).toString('base64url')
    return { 'set-cookie': cookieHeader(VISITOR_COOKIE, id, { path: `/d/${token}`, maxAgeSeconds: 30 * 86_400, secure: config.secureCookies }) }
  }

  function folderFiles(link: LinkRow) {
    return store.library.filePage({ folderId: link.folderId, sort: 'date', direction: 'desc', filter: '', limit: FILE_LIST_LIMIT, offset: 0 })
  }

  async function page(request: Request, token: string) {
    let link: LinkRow
    try {
      link = await openLiveLink(token)
    } catch (error) {
      const gone = refusalOf(error)
      if (gone) return htmlResponse(linkGonePage({ status: gone.status, message: gone.message }), gone.status)
      throw error
    }
    if (!(await isUnlocked(request, link))) return htmlResponse(unlockPage({ label: link.label, token }))
    const page = htmlResponse(
      dropPage({
        link,
        token,
        usage: await store.links.usage(link.id),
        chunkBytes: config.chunkBytes,
        maxFileBytes: Math.min(config.maxFileBytes, link.maxFileBytes ?? Number.POSITIVE_INFINITY),
        files: link.allowDownload ? await folderFiles(link) : null,
      }),
    )
    for (const [name, value] of Object.entries(visitorCookie(request, token))) page.headers.append(name, value)
    return page
  }

  async function unlock(request: Request, token: string, server: Server<unknown> | null) {
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

  async function downloadable(request: Request, token: string, fileId: string) {
    const link = await linkFor(request, token)
    if (!link.allowDownload) throw new HttpError(403, 'This link does not let visitors download')
    const file = /^\d{1,15}$/.test(fileId) ? await store.library.file(Number(fileId)) : undefined
    if (!file || file.folderId !== link.folderId || file.deletedAt !== null || (await store.library.isInTrash(file.folderId))) {
      throw new HttpError(404, 'No such file')
    }
    return file
  }

  // Every route here checks the link's token (and password) itself, on every request.
  const checksToken = 'drop link: checks its own token and password'
  return new Elysia({ name: 'drop-links' })
    .use(routePolicy)
    .guard({ public: checksToken, dropLink: true })
    .get('/d/:token', ({ request, params }) => page(request, params.token))
    .post('/d/:token/unlock', ({ request, params, server }) => unlock(request, params.token, server), { parse: 'none' })
    .get('/d/:token/files', async ({ request, params }) => {
      const link = await linkFor(request, params.token)
      if (!link.allowDownload) throw new HttpError(403, 'This link does not let visitors see the folder')
      return htmlResponse(dropFileList(params.token, await folderFiles(link)))
    })
    .get('/d/:token/files/:id/download', async ({ request, params }) =>
      fileResponse(deps.blobs, await downloadable(request, params.token, params.id), request, 'attachment'),
    )
    .guard({ streamsBody: true }, (uploads) =>
      uploads
        .use(dropzoneRoutes({ path: '/d/:token/upload', engine: deps.engine, config, authorize: principal }))
        .guard({ crossOrigin: (origin: string) => isCorsOrigin(config, origin) }, (tus) =>
          tus.use(tusRoutes({ prefix: '/d/:token/tus', engine: deps.engine, config, authorize: principal })),
        ),
    )
}
