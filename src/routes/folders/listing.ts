import type { AppDeps } from '../../http/deps.ts'
import { findFolder } from '../../db/files.ts'
import * as library from '../../db/library.ts'
import { HttpError } from '../../errors.ts'
import type { FolderListing } from '../../../views/folder.ts'
import { adminAudit, type Audit } from '../audit.ts'
import { flashes, type Flashes } from '../respond.ts'

const PAGE_SIZE = 100

export type Query = Record<string, string | undefined>

/** What every folder handler shares: the app's dependencies, its flash messages and audit log, and reading a folder's listing. */
export interface Folders {
  deps: AppDeps
  succeeded: Flashes['succeeded']
  takeFlash: Flashes['takeFlash']
  audit: Audit
  pathOf(folderId: number): string
  liveFolderOr404(id: number): NonNullable<ReturnType<typeof findFolder>>
  /** One page of a folder's listing, sorted and filtered as the query asks. */
  listing(folderId: number, query: Query): FolderListing
}

export function folders(deps: AppDeps): Folders {
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

  return { deps, succeeded, takeFlash, audit, pathOf, liveFolderOr404, listing }
}
