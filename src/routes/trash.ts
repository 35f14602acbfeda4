import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { adminAudit } from './audit.ts'
import * as library from '../db/library.ts'
import { htmlResponse } from '../../views/html.ts'
import { trashPage } from '../../views/trash.ts'
import { act, pathId, flashes } from './respond.ts'

type Ctx = { request: Request; params: { id: string }; server: Server<unknown> | null }

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`

export function trashRoutes(deps: AppDeps) {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { db } = deps
  const audit = adminAudit(deps)
  const pathOf = (folderId: number) => library.folderPathText(db, folderId)

  return new Elysia({ name: 'trash' })
    .get('/trash', ({ request }) => {
      const { flash, headers } = takeFlash(request)
      return htmlResponse(trashPage({ entries: library.trashEntries(db), retentionDays: deps.config.trashRetentionDays, flash }), 200, headers)
    })
    .post('/trash/files/:id/restore', ({ request, params, server }: Ctx) =>
      act(request, '/trash', () => {
        const file = library.restoreFile(db, pathId(params.id, 'file'))
        audit(request, server, 'file.restore', file.name, { folder: pathOf(file.folderId) })
        return succeeded(request, { flash: { kind: 'notice', text: `Restored “${file.name}” to ${pathOf(file.folderId)}.` }, redirect: '/trash' })
      }),
    )
    .post('/trash/folders/:id/restore', ({ request, params, server }: Ctx) =>
      act(request, '/trash', () => {
        const folder = library.restoreFolder(db, pathId(params.id, 'folder'))
        audit(request, server, 'folder.restore', pathOf(folder.id))
        return succeeded(request, { flash: { kind: 'notice', text: `Restored “${folder.name}” as ${pathOf(folder.id)}.` }, redirect: '/trash' })
      }),
    )
    .post('/trash/empty', ({ request, server }: Omit<Ctx, 'params'>) =>
      act(request, '/trash', async () => {
        const result = await deps.engine.purgeTrash()
        audit(request, server, 'trash.empty', 'trash', { files: result.files, folders: result.folders, blobsRemoved: result.unusedBlobs.length })
        return succeeded(request, {
          flash: { kind: 'notice', text: `Deleted ${count(result.files, 'file')} and ${count(result.folders, 'folder')} for good.` },
          redirect: '/trash',
        })
      }),
    )
}
