import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { adminAudit } from './audit.ts'
import { hashPassword } from '../auth/admin-password.ts'
import { generateLinkPassword, weakLinkPassword } from '../auth/link-passwords.ts'
import { ConfigError, parseBytes } from '../config.ts'
import * as library from '../db/library.ts'
import * as linksDb from '../db/links.ts'
import type { LinkRow, NewLink } from '../db/links.ts'
import { HttpError } from '../errors.ts'
import { validLabel } from '../engine/file-names.ts'
import { cookieHeader, readCookie } from '../http/cookies.ts'
import { hashLinkToken, linkState, newLinkToken } from '../links/access.ts'
import { htmlResponse } from '../../views/html.ts'
import { linkPage, linksPage, type LinkLine, type LinkSecrets } from '../../views/links.ts'
import { act, formId, pathId, readForm, flashes } from './respond.ts'

const DAY_MS = 86_400_000
/** Carries a new link's address (and a generated password) to the one page that shows it. */
const SECRETS_COOKIE = 'dropfold_link_secrets'
const TOKEN_HINT_LENGTH = 4

/**
 * The password a create/edit form asks for: typed (and strong enough), generated, or none
 * given (`null`: keep or remove, as the form says).
 */
async function chosenPassword(form: FormData, label: string): Promise<{ password: string; generated: boolean } | null> {
  if (form.get('generatePassword') !== null) return { password: generateLinkPassword(), generated: true }
  const password = String(form.get('password') ?? '')
  if (password === '') return null
  const weak = weakLinkPassword(password)
  if (weak) throw new HttpError(400, `${label}: ${weak}`)
  return { password, generated: false }
}
type Ctx = { request: Request; params: { id: string }; server: Server<unknown> | null }

function optionalSize(form: FormData, name: string, label: string): number | null | undefined {
  const text = String(form.get(name) ?? '').trim()
  if (text === '') return null
  try {
    return parseBytes(text, label)
  } catch (error) {
    if (error instanceof ConfigError) throw new HttpError(400, error.message)
    throw error
  }
}

function optionalCount(form: FormData, name: string, label: string, max: number): number | null {
  const text = String(form.get(name) ?? '').trim()
  if (text === '') return null
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) throw new HttpError(400, `${label} must be a whole number from 1 to ${max}`)
  return Number(text)
}

function allowedTypes(form: FormData): string | null {
  const text = String(form.get('allowedTypes') ?? '').trim()
  if (text === '') return null
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean)
  for (const part of parts) {
    if (!/^(\.[A-Za-z0-9._-]{1,20}|[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+))$/i.test(part)) {
      throw new HttpError(400, `Allowed types must be extensions like .pdf or media types like image/*; "${part}" is neither`)
    }
  }
  return parts.join(', ')
}

export function linkRoutes(deps: AppDeps) {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { db } = deps
  const paths = () => library.allFolderPaths(db)
  const pathOf = (folderId: number) => library.folderPathText(db, folderId)
  const audit = adminAudit(deps)

  function line(link: LinkRow): LinkLine {
    return {
      link,
      folderPath: library.isInTrash(db, link.folderId) ? `${pathOf(link.folderId)} (in the trash)` : pathOf(link.folderId),
      state: linkState(link, deps.clock()),
      usage: linksDb.linkUsage(db, link.id),
      passwordFrom: link.passwordHash ? 'link' : linksDb.folderPasswordHash(db, link.folderId) ? 'folder' : null,
    }
  }

  function linkOr404(id: string) {
    const link = linksDb.findLink(db, pathId(id, 'link'))
    if (!link) throw new HttpError(404, 'No such link')
    return link
  }

  /**
   * Reads the create/edit form; for an edit, blank password and expiry keep what was set.
   * `now` is the request's one reading of the clock, so a new link's expiry is exactly
   * the chosen number of days after its creation time, however long password hashing takes.
   */
  async function settings(form: FormData, existing: LinkRow | null, now: number): Promise<{ change: Partial<NewLink>; generatedPassword: string | null }> {
    const folderId = formId(form, 'folder')
    if (library.isInTrash(db, folderId) || !paths().some((f) => f.id === folderId)) throw new HttpError(404, `Folder ${folderId} does not exist`)
    const label = validLabel(String(form.get('label') ?? ''))
    const change: Partial<NewLink> = {
      folderId,
      label,
      maxFileBytes: optionalSize(form, 'maxFileSize', 'Largest file'),
      maxTotalBytes: optionalSize(form, 'maxTotalSize', 'Total size'),
      maxFiles: optionalCount(form, 'maxFiles', 'Number of files', 1_000_000),
      allowedTypes: allowedTypes(form),
      allowDownload: form.get('allowDownload') !== null,
    }
    const days = optionalCount(form, 'expiresInDays', 'Expires in days', 36_500)
    if (days !== null) change.expiresAt = now + days * DAY_MS
    else if (!existing || form.get('noExpiry') !== null) change.expiresAt = null
    const chosen = await chosenPassword(form, 'Link password')
    if (chosen) change.passwordHash = await hashPassword(chosen.password)
    else if (!existing || form.get('removePassword') !== null) change.passwordHash = null
    return { change, generatedPassword: chosen?.generated ? chosen.password : null }
  }

  /** Redirects to the link's page, which shows these secrets once (they are stored nowhere). */
  function showOnce(request: Request, link: LinkRow, secrets: Omit<LinkSecrets, 'url'> & { token: string | null }, text: string) {
    const response = succeeded(request, { flash: { kind: 'notice', text }, redirect: `/links/${link.id}` })
    if (secrets.token === null && secrets.password === null) return response
    const value = encodeURIComponent(JSON.stringify({ id: link.id, ...secrets }))
    response.headers.append('set-cookie', cookieHeader(SECRETS_COOKIE, value, { path: `/links/${link.id}`, maxAgeSeconds: 600, secure: deps.config.secureCookies }))
    return response
  }

  /** The secrets a create or edit left for this link's page, taken (cleared) as they are shown. */
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

  const described = (link: LinkRow) => ({
    folder: pathOf(link.folderId),
    password: link.passwordHash !== null,
    expiresAt: link.expiresAt,
    maxFileBytes: link.maxFileBytes,
    maxTotalBytes: link.maxTotalBytes,
    maxFiles: link.maxFiles,
    allowedTypes: link.allowedTypes,
    allowDownload: link.allowDownload,
  })

  return new Elysia({ name: 'links' })
    .get('/links', ({ request, query }) => {
      const shareFolderId = /^\d{1,15}$/.test(query.folder ?? '') ? Number(query.folder) : undefined
      const { flash, headers } = takeFlash(request)
      const protectedFolders = linksDb.protectedFolders(db).map((f) => ({ id: f.id, path: pathOf(f.id) }))
      return htmlResponse(
        linksPage({ lines: linksDb.allLinks(db).map((link) => line(link)), folders: paths(), protectedFolders, flash, shareFolderId }),
        200,
        headers,
      )
    })
    .get('/links/:id', ({ request, params }) => {
      const { flash, headers } = takeFlash(request)
      const link = linkOr404(params.id)
      const secrets = takeSecrets(request, link)
      const response = htmlResponse(linkPage({ line: line(link), folders: paths(), uploads: linksDb.linkUploads(db, link.id), flash, secrets }), 200, headers)
      if (readCookie(request, SECRETS_COOKIE) !== undefined) {
        response.headers.append('set-cookie', cookieHeader(SECRETS_COOKIE, '', { path: `/links/${link.id}`, maxAgeSeconds: 0, secure: deps.config.secureCookies }))
      }
      return response
    })
    .post(
      '/links',
      ({ request, server }: Omit<Ctx, 'params'>) =>
        act(request, '/links', async () => {
          const now = deps.clock()
          const { change, generatedPassword } = await settings(await readForm(request), null, now)
          const token = newLinkToken()
          const link = linksDb.insertLink(db, { ...(change as NewLink), tokenHash: hashLinkToken(token), tokenHint: token.slice(-TOKEN_HINT_LENGTH), createdAt: now })
          audit(request, server, 'link.create', link.label, described(link))
          return showOnce(request, link, { token, password: generatedPassword }, `Link “${link.label}” created. Copy its address now: it is shown only this once.`)
        }),
      { parse: 'none' },
    )
    .post(
      '/links/folder-password',
      ({ request, server }: Omit<Ctx, 'params'>) =>
        act(request, '/links', async () => {
          const form = await readForm(request)
          const folderId = formId(form, 'folder')
          if (!paths().some((f) => f.id === folderId)) throw new HttpError(404, `Folder ${folderId} does not exist`)
          if (form.get('action') === 'remove') {
            linksDb.setFolderPassword(db, folderId, null)
            audit(request, server, 'folder.password.remove', pathOf(folderId))
            return succeeded(request, { flash: { kind: 'notice', text: `${pathOf(folderId)} no longer has a password.` }, redirect: '/links' })
          }
          const chosen = await chosenPassword(form, 'Folder password')
          if (!chosen) throw new HttpError(400, 'Type a password for the folder, or let Dropfold generate one')
          linksDb.setFolderPassword(db, folderId, await hashPassword(chosen.password))
          audit(request, server, 'folder.password.set', pathOf(folderId))
          const shown = chosen.generated ? ` Its password is ${chosen.password} (shown only this once).` : ''
          return succeeded(request, { flash: { kind: 'notice', text: `${pathOf(folderId) || '/'} is now protected by a password.${shown}` }, redirect: '/links' })
        }),
      { parse: 'none' },
    )
    .post(
      '/links/:id',
      ({ request, params, server }: Ctx) =>
        act(request, `/links/${params.id}`, async () => {
          const existing = linkOr404(params.id)
          const { change, generatedPassword } = await settings(await readForm(request), existing, deps.clock())
          const link = linksDb.updateLink(db, existing.id, change)!
          audit(request, server, 'link.update', link.label, described(link))
          return showOnce(request, link, { token: null, password: generatedPassword }, 'Saved. The new settings apply at once, also to uploads in progress.')
        }),
      { parse: 'none' },
    )
    .post('/links/:id/disable', ({ request, params, server }: Ctx) =>
      act(request, `/links/${params.id}`, () => {
        const link = linksDb.updateLink(db, linkOr404(params.id).id, { disabled: true })!
        audit(request, server, 'link.disable', link.label)
        return succeeded(request, { flash: { kind: 'notice', text: `“${link.label}” is switched off; its address no longer works.` }, redirect: `/links/${link.id}` })
      }),
    )
    .post('/links/:id/enable', ({ request, params, server }: Ctx) =>
      act(request, `/links/${params.id}`, () => {
        const link = linksDb.updateLink(db, linkOr404(params.id).id, { disabled: false })!
        audit(request, server, 'link.enable', link.label)
        return succeeded(request, { flash: { kind: 'notice', text: `“${link.label}” is switched on again.` }, redirect: `/links/${link.id}` })
      }),
    )
    .post('/links/:id/delete', ({ request, params, server }: Ctx) =>
      act(request, `/links/${params.id}`, () => {
        const link = linksDb.deleteLink(db, linkOr404(params.id).id)!
        audit(request, server, 'link.delete', link.label)
        return succeeded(request, { flash: { kind: 'notice', text: `Deleted “${link.label}”. Files it brought in stay where they are.` }, redirect: '/links' })
      }),
    )
}
