import { findFile } from '../../db/files.ts'
import * as library from '../../db/library.ts'
import { HttpError } from '../../errors.ts'
import { dropFileList } from '../../../views/drop.ts'
import { htmlResponse } from '../../../views/html.ts'
import { fileResponse } from '../downloads.ts'
import type { DropLinkAccess } from './access.ts'

/** GET /d/:token/files: the folder's files, for a link that lets visitors download. */
export function dropLinkFiles({ linkFor, folderFiles }: DropLinkAccess, request: Request, token: string) {
  const link = linkFor(request, token)
  if (!link.allowDownload) throw new HttpError(403, 'This link does not let visitors see the folder')
  return htmlResponse(dropFileList(token, folderFiles(link)))
}

/** GET /d/:token/files/:id/download: one live file of the link's folder. */
export function downloadFromDropLink(access: DropLinkAccess, request: Request, token: string, fileId: string) {
  return fileResponse(access.deps.blobs, downloadable(access, request, token, fileId), request, 'attachment')
}

function downloadable({ deps, linkFor }: DropLinkAccess, request: Request, token: string, fileId: string) {
  const { db } = deps
  const link = linkFor(request, token)
  if (!link.allowDownload) throw new HttpError(403, 'This link does not let visitors download')
  const file = /^\d{1,15}$/.test(fileId) ? findFile(db, Number(fileId)) : undefined
  if (!file || file.folderId !== link.folderId || file.deletedAt !== null || library.isInTrash(db, file.folderId)) {
    throw new HttpError(404, 'No such file')
  }
  return file
}
