import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { adminAudit } from './audit.ts'
import { HttpError } from '../errors.ts'
import { htmlResponse } from '../../views/html.ts'
import { isWaitingPart, uploadsPage, uploadsTable, type UploadLine } from '../../views/uploads.ts'
import { act, flashes, isHtmx } from './respond.ts'

const STALLED_AFTER_MS = 60_000
const LIST_LIMIT = 500

type Ctx = { request: Request; params: { id: string }; server: Server<unknown> | null }

export function uploadsPageRoutes(deps: AppDeps) {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { store, engine } = deps

  async function lines(): Promise<UploadLine[]> {
    const now = deps.clock()
    const paths = new Map((await store.library.allFolderPaths()).map((f) => [f.id, f.path || '/']))
    return (await store.uploads.unfinished(LIST_LIMIT)).map((upload) => ({
      upload,
      folderPath: paths.get(upload.folderId) ?? '(in the trash)',
      shownState: upload.state === 'receiving' && now - upload.updatedAt > STALLED_AFTER_MS ? 'stalled' : isWaitingPart(upload) ? 'waiting' : upload.state,
      bytesPerSecond: engine.speed(upload.id),
    }))
  }

  /** The re-rendered table an htmx request gets after an action (read only for those). */
  const table = async () => uploadsTable(await lines(), deps.clock())
  const fragment = async (request: Request) => {
    if (!isHtmx(request)) return undefined
    const rendered = await table()
    return () => rendered
  }

  async function ownUpload(id: string) {
    const upload = /^[a-z0-9]{32}$/.test(id) ? await store.uploads.find(id) : undefined
    if (!upload) throw new HttpError(404, 'No such upload')
    return upload
  }

  const audit = adminAudit(deps)

  return new Elysia({ name: 'uploads-page' })
    .get('/uploads', async ({ request }) => {
      const { flash, headers } = takeFlash(request)
      const summary = await store.library.storageSummary()
      const storage = {
        storedBytes: summary.storedBytes,
        logicalBytes: summary.logicalBytes,
        fileCount: summary.fileCount,
        stagedBytes: await store.uploads.stagedBytes(),
        freeBytes: (await deps.space?.freeBytes()) ?? null,
      }
      return htmlResponse(uploadsPage({ lines: await lines(), storage, now: deps.clock(), flash }), 200, headers)
    })
    .get('/uploads/table', async () => htmlResponse(await table()))
    .post('/uploads/:id/cancel', ({ request, params, server }: Ctx) =>
      act(request, '/uploads', async () => {
        const upload = await ownUpload(params.id)
        if (!(await engine.cancel(upload.id))) throw new HttpError(409, `“${upload.fileName}” is no longer receiving`)
        await audit(request, server, 'upload.cancel', upload.fileName)
        return succeeded(request, { flash: { kind: 'notice', text: `Cancelled “${upload.fileName}”; its bytes are deleted.` }, redirect: '/uploads', fragment: await fragment(request) })
      }),
    )
    .post('/uploads/:id/dismiss', ({ request, params, server }: Ctx) =>
      act(request, '/uploads', async () => {
        const upload = await ownUpload(params.id)
        await engine.dismiss(upload.id)
        await audit(request, server, 'upload.remove', upload.fileName)
        return succeeded(request, { flash: { kind: 'notice', text: `Removed “${upload.fileName}” from the list.` }, redirect: '/uploads', fragment: await fragment(request) })
      }),
    )
}
