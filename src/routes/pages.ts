import { Elysia } from 'elysia'
import type { AppDeps } from '../app.ts'
import { countFiles, findFolder, listFiles } from '../db/files.ts'
import { ROOT_FOLDER_ID } from '../db/schema.ts'
import { HttpError } from '../errors.ts'
import { htmlResponse } from '../../views/html.ts'
import { fileList, folderPage, type FileListData } from '../../views/folder.ts'

const PAGE_SIZE = 100

function positiveInt(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  return /^\d{1,9}$/.test(text) && n >= 1 ? n : fallback
}

export function pageRoutes(deps: AppDeps) {
  const folderOr404 = (id: string) => {
    const folder = /^\d{1,15}$/.test(id) ? findFolder(deps.db, Number(id)) : undefined
    if (!folder) throw new HttpError(404, 'No such folder')
    return folder
  }
  const listData = (folderId: number, page: number): FileListData => ({
    folderId,
    files: listFiles(deps.db, folderId, PAGE_SIZE, (page - 1) * PAGE_SIZE),
    total: countFiles(deps.db, folderId),
    page,
    pageSize: PAGE_SIZE,
  })
  return new Elysia({ name: 'pages' })
    .get('/', () => new Response(null, { status: 303, headers: { location: `/folders/${ROOT_FOLDER_ID}` } }))
    .get('/folders/:id', ({ params, query }) => {
      const folder = folderOr404(params.id)
      const list = listData(folder.id, positiveInt(query.page, 1))
      return htmlResponse(folderPage({ folder, list, chunkBytes: deps.config.chunkBytes, maxFileBytes: deps.config.maxFileBytes }))
    })
    .get('/folders/:id/files', ({ params, query }) => {
      const folder = folderOr404(params.id)
      return htmlResponse(fileList(listData(folder.id, positiveInt(query.page, 1))))
    })
}
