import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import type { FileRecord as FileRow } from '../core/records.ts'
import type { BlobStore } from '../ports/blobs.ts'
import { pathId } from './respond.ts'
import { HttpError } from '../errors.ts'
import { contentDisposition } from '../http/content-disposition.ts'
import { parseRange } from '../http/range.ts'

/** Kinds of files a browser can show by itself; everything else is only ever downloaded. */
export function previewKind(mimeType: string): 'image' | 'video' | 'audio' | 'pdf' | 'text' | null {
  if (/^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml)$/.test(mimeType)) return 'image'
  if (/^video\/(mp4|webm|ogg|quicktime)$/.test(mimeType)) return 'video'
  if (/^audio\/(mpeg|mp4|ogg|wav|x-wav|webm|flac|aac)$/.test(mimeType)) return 'audio'
  if (mimeType === 'application/pdf') return 'pdf'
  if (/^text\//.test(mimeType) || /^application\/(json|xml|x-yaml|yaml|toml|javascript)$/.test(mimeType)) return 'text'
  return null
}

/**
 * A stored file as an HTTP response: attachment (download) or inline (preview), with ETag,
 * conditional requests and single byte ranges.
 */
export async function fileResponse(blobs: BlobStore, file: FileRow, request: Request, disposition: 'attachment' | 'inline'): Promise<Response> {
  // Text is previewed as escaped source on our page; inline serving is for media the browser renders.
  if (disposition === 'inline' && !['image', 'video', 'audio', 'pdf'].includes(previewKind(file.mimeType) ?? '')) {
    throw new HttpError(404, 'This file has no preview')
  }
  const etag = `"${file.sha256}"`
  const headers: Record<string, string> = {
    'accept-ranges': 'bytes',
    etag,
    'content-type': file.mimeType,
    'content-disposition': contentDisposition(file.name, disposition),
    'cache-control': 'private, no-cache',
    // Uploaded HTML or SVG must never run as our origin. Chrome's PDF viewer refuses sandboxed
    // documents, so an inline PDF (a type nosniff keeps from being read as HTML) gets a CSP
    // that only forbids it to load anything.
    'content-security-policy': disposition === 'inline' && file.mimeType === 'application/pdf' ? "default-src 'none'" : 'sandbox',
    'x-content-type-options': 'nosniff',
  }
  const ifNoneMatch = request.headers.get('if-none-match')
  if (ifNoneMatch && ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
    return new Response(null, { status: 304, headers })
  }
  const ifRange = request.headers.get('if-range')
  const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.get('range'), file.sizeBytes)
  if (range === 'unsatisfiable') {
    return new Response(null, { status: 416, headers: { ...headers, 'content-range': `bytes */${file.sizeBytes}` } })
  }
  const { start, end } = range ?? { start: 0, end: file.sizeBytes }
  if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${file.sizeBytes}`
  headers['content-length'] = String(end - start)
  const body = request.method === 'HEAD' ? null : await blobs.body(file.sha256, start, end)
  return new Response(body, { status: range ? 206 : 200, headers })
}

/** A live file of the library as the admin fetches it (the caller has checked the session). */
export async function libraryFileResponse(deps: Pick<AppDeps, 'store' | 'blobs'>, fileId: number, request: Request, disposition: 'attachment' | 'inline') {
  const file = await deps.store.library.file(fileId)
  // A file in the trash is reached only from the Trash page, which offers restoring, not downloading.
  if (!file || file.deletedAt !== null || (await deps.store.library.isInTrash(file.folderId))) throw new HttpError(404, 'No such file (it may be in the trash)')
  return fileResponse(deps.blobs, file, request, disposition)
}

export function downloadRoutes(deps: AppDeps) {
  const serve = ({ params, request }: { params: { id: string }; request: Request }, disposition: 'attachment' | 'inline') =>
    libraryFileResponse(deps, pathId(params.id, 'file'), request, disposition)
  const download = (ctx: { params: { id: string }; request: Request }) => serve(ctx, 'attachment')
  const preview = (ctx: { params: { id: string }; request: Request }) => serve(ctx, 'inline')
  return new Elysia({ name: 'downloads' })
    .get('/files/:id/download', download)
    .head('/files/:id/download', download)
    .get('/files/:id/preview', preview)
    .head('/files/:id/preview', preview)
    // The same, with the file's name after it (ignored) for viewers that title a document by its URL.
    .get('/files/:id/preview/:name', preview)
    .head('/files/:id/preview/:name', preview)
}
