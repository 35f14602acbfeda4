import * as linksDb from '../../db/links.ts'
import { cookieHeader, readCookie } from '../../http/cookies.ts'
import { htmlResponse } from '../../../views/html.ts'
import { linkPage, linksPage } from '../../../views/links.ts'
import { SECRETS_COOKIE, type Links } from './shared.ts'

/** GET /links: every link, the form for a new one (for `?folder=` when sharing a folder), folder passwords. */
export function showLinks({ deps, takeFlash, pathOf, paths, line }: Links, request: Request, query: Record<string, string | undefined>) {
  const { db } = deps
  const shareFolderId = /^\d{1,15}$/.test(query.folder ?? '') ? Number(query.folder) : undefined
  const { flash, headers } = takeFlash(request)
  const protectedFolders = linksDb.protectedFolders(db).map((f) => ({ id: f.id, path: pathOf(f.id) }))
  return htmlResponse(
    linksPage({ lines: linksDb.allLinks(db).map((link) => line(link)), folders: paths(), protectedFolders, flash, shareFolderId }),
    200,
    headers,
  )
}

/** GET /links/:id: one link, its uploads, and (once, after a create or edit) its address and password. */
export function showLink({ deps, takeFlash, linkOr404, takeSecrets, line, paths }: Links, request: Request, id: string) {
  const { db } = deps
  const { flash, headers } = takeFlash(request)
  const link = linkOr404(id)
  const secrets = takeSecrets(request, link)
  const response = htmlResponse(linkPage({ line: line(link), folders: paths(), uploads: linksDb.linkUploads(db, link.id), flash, secrets }), 200, headers)
  if (readCookie(request, SECRETS_COOKIE) !== undefined) {
    response.headers.append('set-cookie', cookieHeader(SECRETS_COOKIE, '', { path: `/links/${link.id}`, maxAgeSeconds: 0, secure: deps.config.secureCookies }))
  }
  return response
}
