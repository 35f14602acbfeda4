import { randomBytes } from 'node:crypto'
import type { AppDeps } from '../../http/deps.ts'
import { linkOwner, type FileRecord, type Link as LinkRow } from '../../core/records.ts'
import { HttpError } from '../../errors.ts'
import { cookieHeader, readCookie } from '../../http/cookies.ts'
import { linkAdmission, openLink, requiredPasswordHash, UnlockCookies, cookieSecret } from '../../links/access.ts'
import type { UploadPrincipal } from '../../protocols/principal.ts'

const FILE_LIST_LIMIT = 500
const VISITOR_COOKIE = 'dropfold_visitor'

/** What every drop-link handler shares: finding the link behind a request and who its visitor is. */
export interface DropLinkAccess {
  deps: AppDeps
  /** Signs and checks unlock cookies with the secret kept in the store (read once, when first needed). */
  unlocks(): Promise<UnlockCookies>
  isUnlocked(request: Request, link: LinkRow): Promise<boolean>
  /** A usable link whose folder is live: a link into the trash takes nothing (the trash is purged). */
  openLiveLink(token: string): Promise<LinkRow>
  /** The link behind a request, checked on every request: disabling or expiry takes effect at once. */
  linkFor(request: Request, token: string): Promise<LinkRow>
  /** Who uploads through the link: its folder, its limits, the visitor's own uploads. */
  principal(request: Request, params: Record<string, string>): Promise<UploadPrincipal>
  visitorCookie(request: Request, token: string): Record<string, string>
  folderFiles(link: LinkRow): Promise<FileRecord[]>
}

export function dropLinkAccess(deps: AppDeps): DropLinkAccess {
  const { store, config } = deps
  let unlockCookies: Promise<UnlockCookies> | undefined
  const unlocks = () => (unlockCookies ??= cookieSecret(store).then((secret) => new UnlockCookies(secret)))

  async function isUnlocked(request: Request, link: LinkRow): Promise<boolean> {
    const hash = await requiredPasswordHash(store, link)
    if (hash === null) return true
    const cookies = await unlocks()
    return cookies.valid(link, hash, readCookie(request, cookies.name(link)), deps.clock())
  }

  async function openLiveLink(token: string): Promise<LinkRow> {
    const link = await openLink(store, token, deps.clock())
    if (await store.library.isInTrash(link.folderId)) throw new HttpError(410, 'The folder of this drop link has been deleted')
    return link
  }

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

  return { deps, unlocks, isUnlocked, openLiveLink, linkFor, principal, visitorCookie, folderFiles }
}
