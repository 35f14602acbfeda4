import { cookieHeader, readCookie } from '../../http/cookies.ts'
import { htmlResponse } from '../../../views/html.ts'
import { linkPage, linksPage } from '../../../views/links.ts'
import { SECRETS_COOKIE, type Links } from './shared.ts'

/** GET /links: every link, the form for a new one (for `?folder=` when sharing a folder), folder passwords. */
export async function showLinks({ deps, takeFlash, pathOf, paths, line }: Links, request: Request, query: Record<string, string | undefined>) {
  const { store } = deps
  const shareFolderId = /^\d{1,15}$/.test(query.folder ?? '') ? Number(query.folder) : undefined
  const { flash, headers } = takeFlash(request)
  const protectedFolders = await Promise.all((await store.library.protectedFolders()).map(async (f) => ({ id: f.id, path: await pathOf(f.id) })))
  const lines = await Promise.all((await store.links.all()).map(line))
  return htmlResponse(
    linksPage({ lines, folders: await paths(), protectedFolders, flash, shareFolderId }),
    200,
    headers,
  )
}

/** GET /links/:id: one link, its uploads, and (once, after a create or edit) its address and password. */
export async function showLink({ deps, takeFlash, linkOr404, takeSecrets, line, paths }: Links, request: Request, id: string) {
  const { store } = deps
  const { flash, headers } = takeFlash(request)
  const link = await linkOr404(id)
  const secrets = takeSecrets(request, link)
  const response = htmlResponse(linkPage({ line: await line(link), folders: await paths(), uploads: await store.uploads.ofLink(link.id), flash, secrets }), 200, headers)
  if (readCookie(request, SECRETS_COOKIE) !== undefined) {
    response.headers.append('set-cookie', cookieHeader(SECRETS_COOKIE, '', { path: `/links/${link.id}`, maxAgeSeconds: 0, secure: deps.config.secureCookies }))
  }
  return response
}
