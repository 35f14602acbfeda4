import { hashPassword } from '../../auth/admin-password.ts'
import type { NewLink } from '../../core/records.ts'
import { HttpError } from '../../errors.ts'
import { hashLinkToken, newLinkToken } from '../../links/access.ts'
import { act, formId, readForm, type ActionContext as Ctx } from '../respond.ts'
import { chosenPassword, settings } from './form.ts'
import type { Links } from './shared.ts'

const TOKEN_HINT_LENGTH = 4

/** POST /links: a new link; its address is shown once, on its page. */
export function createLink(links: Links, { request, server }: Omit<Ctx, 'params'>) {
  const { deps, audit, described, showOnce } = links
  const { store } = deps
  return act(request, '/links', async () => {
    const now = deps.clock()
    const { change, generatedPassword } = await settings(links, await readForm(request), null, now)
    const token = newLinkToken()
    const link = await store.links.create({ ...(change as NewLink), tokenHash: hashLinkToken(token), tokenHint: token.slice(-TOKEN_HINT_LENGTH), createdAt: now })
    await audit(request, server, 'link.create', link.label, await described(link))
    return showOnce(request, link, { token, password: generatedPassword }, `Link “${link.label}” created. Copy its address now: it is shown only this once.`)
  })
}

/** POST /links/folder-password: sets or removes the password every link into a folder asks for. */
export function setFolderPassword({ deps, audit, paths, pathOf, succeeded }: Links, { request, server }: Omit<Ctx, 'params'>) {
  const { store } = deps
  return act(request, '/links', async () => {
    const form = await readForm(request)
    const folderId = formId(form, 'folder')
    if (!(await paths()).some((f) => f.id === folderId)) throw new HttpError(404, `Folder ${folderId} does not exist`)
    if (form.get('action') === 'remove') {
      await store.library.setFolderPassword(folderId, null)
      await audit(request, server, 'folder.password.remove', await pathOf(folderId))
      return succeeded(request, { flash: { kind: 'notice', text: `${await pathOf(folderId)} no longer has a password.` }, redirect: '/links' })
    }
    const chosen = await chosenPassword(form, 'Folder password')
    if (!chosen) throw new HttpError(400, 'Type a password for the folder, or let Dropfold generate one')
    await store.library.setFolderPassword(folderId, await hashPassword(chosen.password))
    await audit(request, server, 'folder.password.set', await pathOf(folderId))
    const shown = chosen.generated ? ` Its password is ${chosen.password} (shown only this once).` : ''
    return succeeded(request, { flash: { kind: 'notice', text: `${await pathOf(folderId) || '/'} is now protected by a password.${shown}` }, redirect: '/links' })
  })
}

/** POST /links/:id: new settings, in force at once (also for uploads in progress). */
export function updateLink(links: Links, { request, params, server }: Ctx) {
  const { deps, audit, described, showOnce, linkOr404 } = links
  const { store } = deps
  return act(request, `/links/${params.id}`, async () => {
    const existing = await linkOr404(params.id)
    const { change, generatedPassword } = await settings(links, await readForm(request), existing, deps.clock())
    const link = (await store.links.update(existing.id, change))!
    await audit(request, server, 'link.update', link.label, await described(link))
    return showOnce(request, link, { token: null, password: generatedPassword }, 'Saved. The new settings apply at once, also to uploads in progress.')
  })
}

/** POST /links/:id/disable: the address stops working at once. */
export function disableLink({ deps, audit, linkOr404, succeeded }: Links, { request, params, server }: Ctx) {
  const { store } = deps
  return act(request, `/links/${params.id}`, async () => {
    const link = (await store.links.update((await linkOr404(params.id)).id, { disabled: true }))!
    await audit(request, server, 'link.disable', link.label)
    return succeeded(request, { flash: { kind: 'notice', text: `“${link.label}” is switched off; its address no longer works.` }, redirect: `/links/${link.id}` })
  })
}

/** POST /links/:id/enable */
export function enableLink({ deps, audit, linkOr404, succeeded }: Links, { request, params, server }: Ctx) {
  const { store } = deps
  return act(request, `/links/${params.id}`, async () => {
    const link = (await store.links.update((await linkOr404(params.id)).id, { disabled: false }))!
    await audit(request, server, 'link.enable', link.label)
    return succeeded(request, { flash: { kind: 'notice', text: `“${link.label}” is switched on again.` }, redirect: `/links/${link.id}` })
  })
}

/** POST /links/:id/delete: the link goes; the files it brought in stay. */
export function deleteLink({ deps, audit, linkOr404, succeeded }: Links, { request, params, server }: Ctx) {
  const { store } = deps
  return act(request, `/links/${params.id}`, async () => {
    const link = (await store.links.remove((await linkOr404(params.id)).id))!
    await audit(request, server, 'link.delete', link.label)
    return succeeded(request, { flash: { kind: 'notice', text: `Deleted “${link.label}”. Files it brought in stay where they are.` }, redirect: '/links' })
  })
}
