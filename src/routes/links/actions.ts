import { hashPassword } from '../../auth/admin-password.ts'
import * as linksDb from '../../db/links.ts'
import type { NewLink } from '../../db/links.ts'
import { HttpError } from '../../errors.ts'
import { hashLinkToken, newLinkToken } from '../../links/access.ts'
import { act, formId, readForm, type ActionContext as Ctx } from '../respond.ts'
import { chosenPassword, settings } from './form.ts'
import type { Links } from './shared.ts'

const TOKEN_HINT_LENGTH = 4

/** POST /links: a new link; its address is shown once, on its page. */
export function createLink(links: Links, { request, server }: Omit<Ctx, 'params'>) {
  const { deps, audit, described, showOnce } = links
  const { db } = deps
  return act(request, '/links', async () => {
    const now = deps.clock()
    const { change, generatedPassword } = await settings(links, await readForm(request), null, now)
    const token = newLinkToken()
    const link = linksDb.insertLink(db, { ...(change as NewLink), tokenHash: hashLinkToken(token), tokenHint: token.slice(-TOKEN_HINT_LENGTH), createdAt: now })
    audit(request, server, 'link.create', link.label, described(link))
    return showOnce(request, link, { token, password: generatedPassword }, `Link “${link.label}” created. Copy its address now: it is shown only this once.`)
  })
}

/** POST /links/folder-password: sets or removes the password every link into a folder asks for. */
export function setFolderPassword({ deps, audit, paths, pathOf, succeeded }: Links, { request, server }: Omit<Ctx, 'params'>) {
  const { db } = deps
  return act(request, '/links', async () => {
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
  })
}

/** POST /links/:id: new settings, in force at once (also for uploads in progress). */
export function updateLink(links: Links, { request, params, server }: Ctx) {
  const { deps, audit, described, showOnce, linkOr404 } = links
  const { db } = deps
  return act(request, `/links/${params.id}`, async () => {
    const existing = linkOr404(params.id)
    const { change, generatedPassword } = await settings(links, await readForm(request), existing, deps.clock())
    const link = linksDb.updateLink(db, existing.id, change)!
    audit(request, server, 'link.update', link.label, described(link))
    return showOnce(request, link, { token: null, password: generatedPassword }, 'Saved. The new settings apply at once, also to uploads in progress.')
  })
}

/** POST /links/:id/disable: the address stops working at once. */
export function disableLink({ deps, audit, linkOr404, succeeded }: Links, { request, params, server }: Ctx) {
  const { db } = deps
  return act(request, `/links/${params.id}`, () => {
    const link = linksDb.updateLink(db, linkOr404(params.id).id, { disabled: true })!
    audit(request, server, 'link.disable', link.label)
    return succeeded(request, { flash: { kind: 'notice', text: `“${link.label}” is switched off; its address no longer works.` }, redirect: `/links/${link.id}` })
  })
}

/** POST /links/:id/enable */
export function enableLink({ deps, audit, linkOr404, succeeded }: Links, { request, params, server }: Ctx) {
  const { db } = deps
  return act(request, `/links/${params.id}`, () => {
    const link = linksDb.updateLink(db, linkOr404(params.id).id, { disabled: false })!
    audit(request, server, 'link.enable', link.label)
    return succeeded(request, { flash: { kind: 'notice', text: `“${link.label}” is switched on again.` }, redirect: `/links/${link.id}` })
  })
}

/** POST /links/:id/delete: the link goes; the files it brought in stay. */
export function deleteLink({ deps, audit, linkOr404, succeeded }: Links, { request, params, server }: Ctx) {
  const { db } = deps
  return act(request, `/links/${params.id}`, () => {
    const link = linksDb.deleteLink(db, linkOr404(params.id).id)!
    audit(request, server, 'link.delete', link.label)
    return succeeded(request, { flash: { kind: 'notice', text: `Deleted “${link.label}”. Files it brought in stay where they are.` }, redirect: '/links' })
  })
}
