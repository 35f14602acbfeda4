import { randomBytes } from 'node:crypto'
import type { AppDeps } from '../../http/deps.ts'
import * as library from '../../db/library.ts'
import { linkOwner, type LinkRow } from '../../db/links.ts'
import { HttpError } from '../../errors.ts'
import { cookieHeader, readCookie } from '../../http/cookies.ts'
import { linkAdmission, openLink, requiredPasswordHash, UnlockCookies, cookieSecret } from '../../links/access.ts'
import type { UploadPrincipal } from '../../protocols/principal.ts'

const FILE_LIST_LIMIT = 500
const VISITOR_COOKIE = 'dropfold_visitor'

/** What every drop-link handler shares: finding the link behind a request and who its visitor is. */
export type DropLinkAccess = ReturnType<typeof dropLinkAccess>

export function dropLinkAccess(deps: AppDeps) {
  const { db, config } = deps
  const unlocks = new UnlockCookies(cookieSecret(db))

  function isUnlocked(request: Request, link: LinkRow): boolean {
    const hash = requiredPasswordHash(db, link)
    return hash === null || unlocks.valid(link, hash, readCookie(request, unlocks.name(link)), deps.clock())
  }

  /** A usable link whose folder is live: a link into the trash takes nothing (the trash is purged). */
  function openLiveLink(token: string): LinkRow {
    const link = openLink(db, token, deps.clock())
    if (library.isInTrash(db, link.folderId)) throw new HttpError(410, 'The folder of this drop link has been deleted')
    return link
  }

  /** The link behind a request, checked on every request: disabling or expiry takes effect at once. */
  function linkFor(request: Request, token: string): LinkRow {
    const link = openLiveLink(token)
    if (!isUnlocked(request, link)) throw new HttpError(401, 'Enter the password of this link first')
    return link
  }

  /** Who uploads through the link: its folder, its limits, the visitor's own uploads. */
  const principal = (request: Request, params: Record<string, string>): UploadPrincipal => {
    const link = linkFor(request, params.token ?? '')
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
    return library.filePage(db, { folderId: link.folderId, sort: 'date', direction: 'desc', filter: '', limit: FILE_LIST_LIMIT, offset: 0 })
  }

  return { deps, unlocks, isUnlocked, openLiveLink, linkFor, principal, visitorCookie, folderFiles }
}
