import { ROOT_FOLDER_ID } from '../../core/records.ts'
import { HttpError } from '../../errors.ts'
import { act, formId, readForm, type ActionContext as Ctx } from '../respond.ts'
import type { Folders } from './listing.ts'

/** POST /files/bulk: move the selected files of a folder, or put them in the trash. */
export async function bulkFileAction({ deps, audit, pathOf, succeeded, fragment, liveFolderOr404 }: Folders, { request, server }: Omit<Ctx, 'params'>) {
  const { store } = deps
  const form = await readForm(request)
  const folderText = form.get('folder')
  const folderId = typeof folderText === 'string' && /^\d{1,15}$/.test(folderText) ? Number(folderText) : ROOT_FOLDER_ID
  const returnQuery = new URLSearchParams(String(form.get('return') ?? ''))
  const back = `/folders/${folderId}?${returnQuery}`
  return act(request, back, async () => {
    // The listing re-rendered afterwards must exist, or the action would be done yet reported as refused.
    await liveFolderOr404(folderId)
    const ids = form.getAll('ids').map((v) => {
      if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw new HttpError(400, 'Field ids must be file ids')
      return Number(v)
    })
    if (ids.length === 0) throw new HttpError(400, 'Select at least one file first')
    const action = form.get('action')
    let text: string
    if (action === 'move') {
      const target = formId(form, 'target')
      const moved = await store.library.moveFiles(ids, target)
      for (const file of moved) await audit(request, server, 'file.move', file.name, { from: await pathOf(folderId), to: await pathOf(target) })
      text = `Moved ${moved.length} ${moved.length === 1 ? 'file' : 'files'} to ${await pathOf(target)}.`
    } else if (action === 'delete') {
      const trashed = await store.library.trashFiles(ids, deps.clock())
      for (const file of trashed) await audit(request, server, 'file.delete', file.name, { folder: await pathOf(file.folderId) })
      text = `${trashed.length} ${trashed.length === 1 ? 'file is' : 'files are'} in the trash.`
    } else throw new HttpError(400, 'Field action must be move or delete')
    return succeeded(request, {
      flash: { kind: 'notice', text },
      redirect: back,
      fragment: await fragment(request, folderId, Object.fromEntries(returnQuery)),
    })
  })
}
