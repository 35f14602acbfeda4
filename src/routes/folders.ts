import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { ROOT_FOLDER_ID } from '../core/records.ts'
import { createFolder, moveFolder, renameFolder, trashFolder } from './folders/actions.ts'
import { bulkFileAction } from './folders/bulk.ts'
import { folders } from './folders/listing.ts'
import { folderView, showFolder } from './folders/pages.ts'
import type { ActionContext as Ctx } from './respond.ts'

/** The library's folders (admin only): pages and actions. One named handler per route, in `folders/`. */
export function folderRoutes(deps: AppDeps) {
  const f = folders(deps)
  return new Elysia({ name: 'folders' })
    .get('/', () => new Response(null, { status: 303, headers: { location: `/folders/${ROOT_FOLDER_ID}` } }))
    .get('/folders/:id', ({ params, query, request }) => showFolder(f, request, params.id, query))
    .get('/folders/:id/view', ({ params, query }) => folderView(f, params.id, query))
    .post('/folders/:id/folders', (context: Ctx) => createFolder(f, context), { parse: 'none' })
    .post('/folders/:id/rename', (context: Ctx) => renameFolder(f, context), { parse: 'none' })
    .post('/folders/:id/move', (context: Ctx) => moveFolder(f, context), { parse: 'none' })
    .post('/folders/:id/delete', (context: Ctx) => trashFolder(f, context), { parse: 'none' })
    .post('/files/bulk', (context: Omit<Ctx, 'params'>) => bulkFileAction(f, context), { parse: 'none' })
}
