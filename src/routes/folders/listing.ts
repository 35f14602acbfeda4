import type { AppDeps } from '../../http/deps.ts'
import { HttpError } from '../../errors.ts'
import { fileArea, type Folder as ShownFolder, type FolderListing } from '../../../views/folder.ts'
import type { Folder } from '../../core/records.ts'
import type { SafeHtml } from '../../../views/html.ts'
import { adminAudit, type Audit } from '../audit.ts'
import { flashes, isHtmx, type Flashes } from '../respond.ts'

const PAGE_SIZE = 100

export type Query = Record<string, string | undefined>

/** What every folder handler shares: the app's dependencies, its flash messages and audit log, and reading a folder's listing. */
export interface Folders {
  deps: AppDeps
  succeeded: Flashes['succeeded']
  takeFlash: Flashes['takeFlash']
  audit: Audit
  pathOf(folderId: number): Promise<string>
  liveFolderOr404(id: number): Promise<Folder>
  /** One page of a folder's listing, sorted and filtered as the query asks. */
  listing(folderId: number, query: Query): Promise<FolderListing>
  /** The re-rendered file area an htmx request gets after an action (read only for those). */
  fragment(request: Request, folderId: number, query: Query): Promise<(() => SafeHtml) | undefined>
}

/** A folder as its pages show it (never its password hash). */
const shown = ({ id, name, parentId }: ShownFolder): ShownFolder => ({ id, name, parentId })

export function folders(deps: AppDeps): Folders {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { store } = deps

  async function liveFolderOr404(id: number) {
    const folder = await store.library.folder(id)
    if (!folder || (await store.library.isInTrash(id))) throw new HttpError(404, 'No such folder (it may be in the trash)')
    return folder
  }

  async function listing(folderId: number, query: Query): Promise<FolderListing> {
    const folder = await liveFolderOr404(folderId)
    const sort = (['name', 'size', 'date'] as const).find((s) => s === query.sort) ?? 'date'
    const direction = query.dir === 'asc' || query.dir === 'desc' ? query.dir : sort === 'name' ? 'asc' : 'desc'
    const filter = (query.q ?? '').trim().slice(0, 200)
    const total = await store.library.countLiveFiles(folder.id, filter)
    const lastPage = Math.max(1, Math.ceil(total / PAGE_SIZE))
    const page = Math.min(lastPage, Math.max(1, Number.parseInt(query.page ?? '1', 10) || 1))
    return {
      folder: shown(folder),
      path: (await store.library.folderPath(folder.id)).map(shown),
      subfolders: filter ? [] : (await store.library.liveSubfolders(folder.id)).map(shown),
      files: await store.library.filePage({ folderId: folder.id, sort, direction, filter, limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE }),
      total,
      page,
      pageSize: PAGE_SIZE,
      sort,
      direction,
      filter,
      folderChoices: await store.library.allFolderPaths(),
    }
  }

  const audit = adminAudit(deps)

  const pathOf = (folderId: number) => store.library.folderPathText(folderId)

  async function fragment(request: Request, folderId: number, query: Query) {
    if (!isHtmx(request)) return undefined
    const area = fileArea(await listing(folderId, query))
    return () => area
  }

  return { deps, succeeded, takeFlash, audit, pathOf, liveFolderOr404, listing, fragment }
}
