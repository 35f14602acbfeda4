import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { adminAudit } from './audit.ts'
import { htmlResponse } from '../../views/html.ts'
import { trashPage } from '../../views/trash.ts'
import { act, pathId, flashes } from './respond.ts'

type Ctx = { request: Request; params: { id: string }; server: Server<unknown> | null }

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`

export function trashRoutes(deps: AppDeps) {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { store } = deps
  const audit = adminAudit(deps)
  const pathOf = async (folderId: number) => await store.library.folderPathText(folderId)

  return new Elysia({ name: 'trash' })
    .get('/trash', async ({ request }) => {
      const { flash, headers } = takeFlash(request)
      return htmlResponse(trashPage({ entries: await store.library.trashEntries(), retentionDays: deps.config.trashRetentionDays, flash }), 200, headers)
    })
    .post('/trash/files/:id/restore', ({ request, params, server }: Ctx) =>
      act(request, '/trash', async () => {
        const file = await store.library.restoreFile(pathId(params.id, 'file'))
        await audit(request, server, 'file.restore', file.name, { folder: await pathOf(file.folderId) })
        return succeeded(request, { flash: { kind: 'notice', text: `Restored “${file.name}” to ${await pathOf(file.folderId)}.` }, redirect: '/trash' })
      }),
    )
    .post('/trash/folders/:id/restore', ({ request, params, server }: Ctx) =>
      act(request, '/trash', async () => {
        const folder = await store.library.restoreFolder(pathId(params.id, 'folder'))
        await audit(request, server, 'folder.restore', await pathOf(folder.id))
        return succeeded(request, { flash: { kind: 'notice', text: `Restored “${folder.name}” as ${await pathOf(folder.id)}.` }, redirect: '/trash' })
      }),
    )
    .post('/trash/empty', ({ request, server }: Omit<Ctx, 'params'>) =>
      act(request, '/trash', async () => {
        const result = await deps.engine.purgeTrash()
        await audit(request, server, 'trash.empty', 'trash', { files: result.files, folders: result.folders, blobsRemoved: result.unusedBlobs.length })
        return succeeded(request, {
          flash: { kind: 'notice', text: `Deleted ${count(result.files, 'file')} and ${count(result.folders, 'folder')} for good.` },
          redirect: '/trash',
        })
      }),
    )
}
