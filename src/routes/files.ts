import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { adminAudit } from './audit.ts'
import { validName } from '../engine/file-names.ts'
import { HttpError } from '../errors.ts'
import { filePage, type FileDetail } from '../../views/file.ts'
import { htmlResponse } from '../../views/html.ts'
import { previewKind } from './downloads.ts'
import { act, formId, formText, pathId, readForm, flashes } from './respond.ts'

const TEXT_PREVIEW_BYTES = 256 * 1024

type Ctx = { request: Request; params: { id: string }; server: Server<unknown> | null }

export function fileRoutes(deps: AppDeps) {
  const { succeeded, takeFlash } = flashes(deps.config)
  const { store } = deps
  const pathOf = (folderId: number) => store.library.folderPathText(folderId)

  async function liveFile(id: number) {
    const file = await store.library.file(id)
    if (!file || file.deletedAt !== null || (await store.library.isInTrash(file.folderId))) throw new HttpError(404, 'No such file (it may be in the trash)')
    return file
  }

  async function detail(id: number): Promise<FileDetail> {
    const file = await liveFile(id)
    const kind = previewKind(file.mimeType)
    let preview: FileDetail['preview'] = null
    if (kind === 'text') {
      const end = Math.min(file.sizeBytes, TEXT_PREVIEW_BYTES)
      preview = { kind, text: await new Response(await deps.blobs.body(file.sha256, 0, end)).text(), truncated: end < file.sizeBytes }
    } else if (kind) preview = { kind }
    const upload = file.uploadId ? ((await store.uploads.find(file.uploadId)) ?? null) : null
    const linkId = upload?.owner.startsWith('link:') ? Number(upload.owner.slice('link:'.length)) : null
    const link = linkId !== null ? await store.links.find(linkId) : undefined
    return {
      file,
      folderPath: await pathOf(file.folderId),
      upload,
      link: link ? { id: link.id, label: link.label } : null,
      preview,
      folderChoices: await store.library.allFolderPaths(),
    }
  }

  const audit = adminAudit(deps)

  return new Elysia({ name: 'files' })
    .get('/files/:id', async ({ params, request }) => {
      const { flash, headers } = takeFlash(request)
      return htmlResponse(filePage(await detail(pathId(params.id, 'file')), flash), 200, headers)
    })
    .post(
      '/files/:id/rename',
      ({ request, params, server }: Ctx) =>
        act(request, `/files/${params.id}`, async () => {
          const id = pathId(params.id, 'file')
          const before = (await liveFile(id)).name
          const file = await store.library.renameFile(id, validName(formText(await readForm(request), 'name'), 'file name'))
          await audit(request, server, 'file.rename', before, { to: file.name, folder: await pathOf(file.folderId) })
          return succeeded(request, { flash: { kind: 'notice', text: `Renamed to “${file.name}”.` }, redirect: `/files/${id}` })
        }),
      { parse: 'none' },
    )
    .post(
      '/files/:id/move',
      ({ request, params, server }: Ctx) =>
        act(request, `/files/${params.id}`, async () => {
          const id = pathId(params.id, 'file')
          const from = await pathOf((await liveFile(id)).folderId)
          const target = formId(await readForm(request), 'target')
          const [file] = await store.library.moveFiles([id], target)
          await audit(request, server, 'file.move', file!.name, { from, to: await pathOf(target) })
          return succeeded(request, { flash: { kind: 'notice', text: `Moved to ${await pathOf(target)}.` }, redirect: `/files/${id}` })
        }),
      { parse: 'none' },
    )
    .post(
      '/files/:id/delete',
      ({ request, params, server }: Ctx) =>
        act(request, `/files/${params.id}`, async () => {
          const id = pathId(params.id, 'file')
          const [file] = await store.library.trashFiles([id], deps.clock())
          await audit(request, server, 'file.delete', file!.name, { folder: await pathOf(file!.folderId) })
          return succeeded(request, {
            flash: { kind: 'notice', text: `“${file!.name}” is in the trash; you can restore it from there.` },
            redirect: `/folders/${file!.folderId}`,
          })
        }),
      { parse: 'none' },
    )
}
