import { fileArea, folderPage } from '../../../views/folder.ts'
import { htmlResponse } from '../../../views/html.ts'
import { pathId } from '../respond.ts'
import type { Folders, Query } from './listing.ts'

/** GET /folders/:id: the folder's page, with its upload area and any message left for it. */
export async function showFolder({ deps, takeFlash, listing }: Folders, request: Request, id: string, query: Query) {
  const { store } = deps
  const { flash, headers } = takeFlash(request)
  const l = await listing(pathId(id, 'folder'), query)
  const page = folderPage({
    listing: l,
    folderTargets: await store.library.folderMoveTargets(l.folder.id),
    flash,
    chunkBytes: deps.config.chunkBytes,
    maxFileBytes: deps.config.maxFileBytes,
  })
  return htmlResponse(page, 200, headers)
}

/** GET /folders/:id/view: only the listing, re-rendered by htmx as it is sorted, filtered or paged. */
export async function folderView({ listing }: Folders, id: string, query: Query) {
  return htmlResponse(fileArea(await listing(pathId(id, 'folder'), query)))
}
