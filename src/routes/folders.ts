import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { adminAudit } from './audit.ts'
import { findFolder } from '../db/files.ts'
import * as library from '../db/library.ts'
import { ROOT_FOLDER_ID } from '../db/schema.ts'
import { validName } from '../engine/file-names.ts'
import { HttpError } from '../errors.ts'
import { fileArea, folderName, folderPage, type FolderListing } from '../../views/folder.ts'
import { htmlResponse } from '../../views/html.ts'
import { act, formId, formText, pathId, readForm, flashes } from './respond.ts'

const PAGE_SIZE = 100

type Query = Record<string, string | undefined>
type Ctx = { request: Request; params: { id: string }; server: Server<unknown> | null }

export function folderRoutes(deps: AppDeps) {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { db } = deps

  function liveFolderOr404(id: number) {
    const folder = findFolder(db, id)
    if (!folder || library.isInTrash(db, id)) throw new HttpError(404, 'No such folder (it may be in the trash)')
    return folder
  }

  function listing(folderId: number, query: Query): FolderListing {
    const folder = liveFolderOr404(folderId)
    const sort = (['name', 'size', 'date'] as const).find((s) => s === query.sort) ?? 'date'
    const direction = query.dir === 'asc' || query.dir === 'desc' ? query.dir : sort === 'name' ? 'asc' : 'desc'
    const filter = (query.q ?? '').trim().slice(0, 200)
    const total = library.countLiveFiles(db, folder.id, filter)
    const lastPage = Math.max(1, Math.ceil(total / PAGE_SIZE))
    const page = Math.min(lastPage, Math.max(1, Number.parseInt(query.page ?? '1', 10) || 1))
    return {
      folder,
      path: library.folderPath(db, folder.id),
      subfolders: filter ? [] : library.liveSubfolders(db, folder.id),
      files: library.filePage(db, { folderId: folder.id, sort, direction, filter, limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE }),
      total,
      page,
      pageSize: PAGE_SIZE,
      sort,
      direction,
      filter,
      folderChoices: library.allFolderPaths(db),
    }
  }

  const audit = adminAudit(deps)

  const pathOf = (folderId: number) => library.folderPathText(db, folderId)

  return new Elysia({ name: 'folders' })
    .get('/', () => new Response(null, { status: 303, headers: { location: `/folders/${ROOT_FOLDER_ID}` } }))
    .get('/folders/:id', ({ params, query, request }) => {
      const { flash, headers } = takeFlash(request)
      const l = listing(pathId(params.id, 'folder'), query)
      const page = folderPage({
        listing: l,
        folderTargets: library.folderMoveTargets(db, l.folder.id),
        flash,
        chunkBytes: deps.config.chunkBytes,
        maxFileBytes: deps.config.maxFileBytes,
      })
      return htmlResponse(page, 200, headers)
    })
    .get('/folders/:id/view', ({ params, query }) => htmlResponse(fileArea(listing(pathId(params.id, 'folder'), query))))
    .post(
      '/folders/:id/folders',
      ({ request, params, server }: Ctx) =>
        act(request, `/folders/${params.id}`, async () => {
          const parentId = pathId(params.id, 'folder')
          const name = validName(formText(await readForm(request), 'name'), 'folder name')
          const folder = library.createFolder(db, parentId, name, deps.clock())
          audit(request, server, 'folder.create', `${pathOf(parentId).replace(/\/$/, '')}/${folder.name}`)
          return succeeded(request, {
            flash: { kind: 'notice', text: `Folder “${folder.name}” created.` },
            redirect: `/folders/${parentId}`,
            fragment: () => fileArea(listing(parentId, {})),
          })
        }),
      { parse: 'none' },
    )
    .post(
      '/folders/:id/rename',
      ({ request, params, server }: Ctx) =>
        act(request, `/folders/${params.id}`, async () => {
          const id = pathId(params.id, 'folder')
          const before = pathOf(id)
          const folder = library.renameFolder(db, id, validName(formText(await readForm(request), 'name'), 'folder name'))
          audit(request, server, 'folder.rename', before, { to: folder.name })
          return succeeded(request, { flash: { kind: 'notice', text: `Renamed to “${folder.name}”.` }, redirect: `/folders/${id}` })
        }),
      { parse: 'none' },
    )
    .post(
      '/folders/:id/move',
      ({ request, params, server }: Ctx) =>
        act(request, `/folders/${params.id}`, async () => {
          const id = pathId(params.id, 'folder')
          const target = formId(await readForm(request), 'target')
          const before = pathOf(id)
          const folder = library.moveFolder(db, id, target)
          audit(request, server, 'folder.move', before, { to: pathOf(folder.id) })
          return succeeded(request, { flash: { kind: 'notice', text: `Moved “${folder.name}” to ${pathOf(target)}.` }, redirect: `/folders/${id}` })
        }),
      { parse: 'none' },
    )
    .post(
      '/folders/:id/delete',
      ({ request, params, server }: Ctx) =>
        act(request, `/folders/${params.id}`, async () => {
          const id = pathId(params.id, 'folder')
          const path = pathOf(id)
          const folder = library.trashFolder(db, id, deps.clock())
          audit(request, server, 'folder.delete', path)
          return succeeded(request, {
            flash: { kind: 'notice', text: `“${folderName(folder)}” is in the trash; you can restore it from there.` },
            redirect: `/folders/${folder.parentId ?? ROOT_FOLDER_ID}`,
          })
        }),
      { parse: 'none' },
    )
    .post(
      '/files/bulk',
      async ({ request, server }: Omit<Ctx, 'params'>) => {
        const form = await readForm(request)
        const folderText = form.get('folder')
        const folderId = typeof folderText === 'string' && /^\d{1,15}$/.test(folderText) ? Number(folderText) : ROOT_FOLDER_ID
        const returnQuery = new URLSearchParams(String(form.get('return') ?? ''))
        const back = `/folders/${folderId}?${returnQuery}`
        return act(request, back, () => {
          // The listing re-rendered afterwards must exist, or the action would be done yet reported as refused.
          liveFolderOr404(folderId)
          const ids = form.getAll('ids').map((v) => {
            if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw new HttpError(400, 'Field ids must be file ids')
            return Number(v)
          })
          if (ids.length === 0) throw new HttpError(400, 'Select at least one file first')
          const action = form.get('action')
          let text: string
          if (action === 'move') {
            const target = formId(form, 'target')
            const moved = library.moveFiles(db, ids, target)
            for (const file of moved) audit(request, server, 'file.move', file.name, { from: pathOf(folderId), to: pathOf(target) })
            text = `Moved ${moved.length} ${moved.length === 1 ? 'file' : 'files'} to ${pathOf(target)}.`
          } else if (action === 'delete') {
            const trashed = library.trashFiles(db, ids, deps.clock())
            for (const file of trashed) audit(request, server, 'file.delete', file.name, { folder: pathOf(file.folderId) })
            text = `${trashed.length} ${trashed.length === 1 ? 'file is' : 'files are'} in the trash.`
          } else throw new HttpError(400, 'Field action must be move or delete')
          return succeeded(request, {
            flash: { kind: 'notice', text },
            redirect: back,
            fragment: () => fileArea(listing(folderId, Object.fromEntries(returnQuery))),
          })
        })
      },
      { parse: 'none' },
    )
}
