import * as library from '../../db/library.ts'
import { ROOT_FOLDER_ID } from '../../db/schema.ts'
import { validName } from '../../engine/file-names.ts'
import { fileArea, folderName } from '../../../views/folder.ts'
import { act, formId, formText, readForm, pathId, type ActionContext as Ctx } from '../respond.ts'
import type { Folders } from './listing.ts'


/** POST /folders/:id/folders: a new subfolder. */
export function createFolder({ deps, audit, pathOf, succeeded, listing }: Folders, { request, params, server }: Ctx) {
  const { db } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const parentId = pathId(params.id, 'folder')
    const name = validName(formText(await readForm(request), 'name'), 'folder name')
    const folder = library.createFolder(db, parentId, name, deps.clock())
    audit(request, server, 'folder.create', `${pathOf(parentId).replace(/\/$/, '')}/${folder.name}`)
    return succeeded(request, {
      flash: { kind: 'notice', text: `Folder “${folder.name}” created.` },
      redirect: `/folders/${parentId}`,
      fragment: () => fileArea(listing(parentId, {})),
    })
  })
}

/** POST /folders/:id/rename */
export function renameFolder({ deps, audit, pathOf, succeeded }: Folders, { request, params, server }: Ctx) {
  const { db } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const id = pathId(params.id, 'folder')
    const before = pathOf(id)
    const folder = library.renameFolder(db, id, validName(formText(await readForm(request), 'name'), 'folder name'))
    audit(request, server, 'folder.rename', before, { to: folder.name })
    return succeeded(request, { flash: { kind: 'notice', text: `Renamed to “${folder.name}”.` }, redirect: `/folders/${id}` })
  })
}

/** POST /folders/:id/move: into another folder (never into itself or below). */
export function moveFolder({ deps, audit, pathOf, succeeded }: Folders, { request, params, server }: Ctx) {
  const { db } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const id = pathId(params.id, 'folder')
    const target = formId(await readForm(request), 'target')
    const before = pathOf(id)
    const folder = library.moveFolder(db, id, target)
    audit(request, server, 'folder.move', before, { to: pathOf(folder.id) })
    return succeeded(request, { flash: { kind: 'notice', text: `Moved “${folder.name}” to ${pathOf(target)}.` }, redirect: `/folders/${id}` })
  })
}

/** POST /folders/:id/delete: into the trash, with everything in it. */
export function trashFolder({ deps, audit, pathOf, succeeded }: Folders, { request, params, server }: Ctx) {
  const { db } = deps
  return act(request, `/folders/${params.id}`, async () => {
    const id = pathId(params.id, 'folder')
    const path = pathOf(id)
    const folder = library.trashFolder(db, id, deps.clock())
    audit(request, server, 'folder.delete', path)
    return succeeded(request, {
      flash: { kind: 'notice', text: `“${folderName(folder)}” is in the trash; you can restore it from there.` },
      redirect: `/folders/${folder.parentId ?? ROOT_FOLDER_ID}`,
    })
  })
}
