import { ROOT_FOLDER_ID } from '../../core/records.ts'
import { validName } from '../../engine/file-names.ts'
import { folderName } from '../../../views/folder.ts'
import { act, formId, formText, readForm, pathId, type ActionContext as Ctx } from '../respond.ts'
import type { Folders } from './listing.ts'


/** POST /folders/:id/folders: a new subfolder. */
export function createFolder({ deps, audit, pathOf, succeeded, fragment }: Folders, { request, params, server }: Ctx) {
  const { store } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const parentId = pathId(params.id, 'folder')
    const name = validName(formText(await readForm(request), 'name'), 'folder name')
    const folder = await store.library.createFolder(parentId, name, deps.clock())
    await audit(request, server, 'folder.create', `${(await pathOf(parentId)).replace(/\/$/, '')}/${folder.name}`)
    return succeeded(request, {
      flash: { kind: 'notice', text: `Folder “${folder.name}” created.` },
      redirect: `/folders/${parentId}`,
      fragment: await fragment(request, parentId, {}),
    })
  })
}

/** POST /folders/:id/rename */
export function renameFolder({ deps, audit, pathOf, succeeded }: Folders, { request, params, server }: Ctx) {
  const { store } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const id = pathId(params.id, 'folder')
    const before = await pathOf(id)
    const folder = await store.library.renameFolder(id, validName(formText(await readForm(request), 'name'), 'folder name'))
    await audit(request, server, 'folder.rename', before, { to: folder.name })
    return succeeded(request, { flash: { kind: 'notice', text: `Renamed to “${folder.name}”.` }, redirect: `/folders/${id}` })
  })
}

/** POST /folders/:id/move: into another folder (never into itself or below). */
export function moveFolder({ deps, audit, pathOf, succeeded }: Folders, { request, params, server }: Ctx) {
  const { store } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const id = pathId(params.id, 'folder')
    const target = formId(await readForm(request), 'target')
    const before = await pathOf(id)
    const folder = await store.library.moveFolder(id, target)
    await audit(request, server, 'folder.move', before, { to: await pathOf(folder.id) })
    return succeeded(request, { flash: { kind: 'notice', text: `Moved “${folder.name}” to ${await pathOf(target)}.` }, redirect: `/folders/${id}` })
  })
}

/** POST /folders/:id/delete: into the trash, with everything in it. */
export function trashFolder({ deps, audit, pathOf, succeeded }: Folders, { request, params, server }: Ctx) {
  const { store } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const id = pathId(params.id, 'folder')
    const path = await pathOf(id)
    const folder = await store.library.trashFolder(id, deps.clock())
    await audit(request, server, 'folder.delete', path)
    return succeeded(request, {
      flash: { kind: 'notice', text: `“${folderName(folder)}” is in the trash; you can restore it from there.` },
      redirect: `/folders/${folder.parentId ?? ROOT_FOLDER_ID}`,
    })
  })
}
