import { HttpError } from '../../errors.ts'
import { dropFileList } from '../../../views/drop.ts'
import { htmlResponse } from '../../../views/html.ts'
import { fileResponse } from '../downloads.ts'
import type { DropLinkAccess } from './access.ts'

/** GET /d/:token/files: the folder's files, for a link that lets visitors download. */
export async function dropLinkFiles({ linkFor, folderFiles }: DropLinkAccess, request: Request, token: string) {
  const link = await linkFor(request, token)
  if (!link.allowDownload) throw new HttpError(403, 'This link does not let visitors see the folder')
  return htmlResponse(dropFileList(token, await folderFiles(link)))
}

/** GET /d/:token/files/:id/download: one live file of the link's folder. */
export async function downloadFromDropLink(access: DropLinkAccess, request: Request, token: string, fileId: string) {
  return fileResponse(access.deps.blobs, await downloadable(access, request, token, fileId), request, 'attachment')
}

async function downloadable({ deps, linkFor }: DropLinkAccess, request: Request, token: string, fileId: string) {
  const { store } = deps
  const link = await linkFor(request, token)
  if (!link.allowDownload) throw new HttpError(403, 'This link does not let visitors download')
  const file = /^\d{1,15}$/.test(fileId) ? await store.library.file(Number(fileId)) : undefined
  if (!file || file.folderId !== link.folderId || file.deletedAt !== null || (await store.library.isInTrash(file.folderId))) {
    throw new HttpError(404, 'No such file')
  }
  return file
}
