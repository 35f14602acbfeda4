import type { AppDeps } from '../../http/deps.ts'
import type { FolderChoice, Link as LinkRow } from '../../core/records.ts'
import { HttpError } from '../../errors.ts'
import { cookieHeader, readCookie } from '../../http/cookies.ts'
import { hashLinkToken, linkState } from '../../links/access.ts'
import type { LinkLine, LinkSecrets, LinkSettings } from '../../../views/links.ts'
import { adminAudit, type Audit } from '../audit.ts'
import { flashes, pathId, type Flashes } from '../respond.ts'

/** Carries a new link's address (and a generated password) to the one page that shows it. */
export const SECRETS_COOKIE = 'dropfold_link_secrets'


/** What every link handler shares: the app's dependencies, flash messages, the audit log, and the helpers below. */
export interface Links {
  deps: AppDeps
  succeeded: Flashes['succeeded']
  takeFlash: Flashes['takeFlash']
  audit: Audit
  paths(): Promise<FolderChoice[]>
  pathOf(folderId: number): Promise<string>
  /** A link as its line in the list and on its page shows it. */
  line(link: LinkRow): Promise<LinkLine>
  linkOr404(id: string): Promise<LinkRow>
  /** Redirects to the link's page, which shows these secrets once (they are stored nowhere). */
  showOnce(request: Request, link: LinkRow, secrets: Omit<LinkSecrets, 'url'> & { token: string | null }, text: string): Response
  /** The secrets a create or edit left for this link's page, taken (cleared) as they are shown. */
  takeSecrets(request: Request, link: LinkRow): LinkSecrets | null
  /** A link's settings as the activity log records them (never its token or password). */
  described(link: LinkRow): Promise<Record<string, unknown>>
}

/** What a visitor of a link may do through it: shown on the admin's pages and recorded in the activity log. */
const limitsOf = (link: LinkRow) => ({
  expiresAt: link.expiresAt,
  maxFileBytes: link.maxFileBytes,
  maxTotalBytes: link.maxTotalBytes,
  maxFiles: link.maxFiles,
  allowedTypes: link.allowedTypes,
  allowDownload: link.allowDownload,
})

/** What the admin's pages show of a link: its settings, whether it has a password, never the hashes. */
function linkSettings(link: LinkRow): LinkSettings {
  return {
    id: link.id,
    label: link.label,
    tokenHint: link.tokenHint,
    folderId: link.folderId,
    hasPassword: link.passwordHash !== null,
    disabled: link.disabled,
    ...limitsOf(link),
  }
}

export function links(deps: AppDeps): Links {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { store } = deps
  const paths = () => store.library.allFolderPaths()
  const pathOf = (folderId: number) => store.library.folderPathText(folderId)
  const audit = adminAudit(deps)

  async function line(link: LinkRow): Promise<LinkLine> {
    const folderPath = await pathOf(link.folderId)
    return {
      link: linkSettings(link),
      folderPath: (await store.library.isInTrash(link.folderId)) ? `${folderPath} (in the trash)` : folderPath,
      state: linkState(link, deps.clock()),
      usage: await store.links.usage(link.id),
      passwordFrom: link.passwordHash ? 'link' : (await store.library.folderPasswordHash(link.folderId)) ? 'folder' : null,
    }
  }

  async function linkOr404(id: string) {
    const link = await store.links.find(pathId(id, 'link'))
    if (!link) throw new HttpError(404, 'No such link')
    return link
  }

  function showOnce(request: Request, link: LinkRow, secrets: Omit<LinkSecrets, 'url'> & { token: string | null }, text: string) {
    const response = succeeded(request, { flash: { kind: 'notice', text }, redirect: `/links/${link.id}` })
    if (secrets.token === null && secrets.password === null) return response
    const value = encodeURIComponent(JSON.stringify({ id: link.id, ...secrets }))
    response.headers.append('set-cookie', cookieHeader(SECRETS_COOKIE, value, { path: `/links/${link.id}`, maxAgeSeconds: 600, secure: deps.config.secureCookies }))
    return response
  }

  function takeSecrets(request: Request, link: LinkRow): LinkSecrets | null {
    const raw = readCookie(request, SECRETS_COOKIE)
    if (!raw) return null
    try {
      const value = JSON.parse(decodeURIComponent(raw)) as { id: number; token: string | null; password: string | null }
      if (value.id !== link.id || (value.token !== null && hashLinkToken(value.token) !== link.tokenHash)) return null
      return { url: value.token === null ? null : `${new URL(request.url).origin}/d/${value.token}`, password: typeof value.password === 'string' ? value.password : null }
    } catch {
      return null
    }
  }

  const described = async (link: LinkRow) => ({ folder: await pathOf(link.folderId), password: link.passwordHash !== null, ...limitsOf(link) })

  return { deps, succeeded, takeFlash, audit, paths, pathOf, line, linkOr404, showOnce, takeSecrets, described }
}
