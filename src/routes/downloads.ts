import { Elysia } from 'elysia'
import type { AppDeps } from '../app.ts'
import { findFile } from '../db/files.ts'
import { HttpError } from '../errors.ts'
import { contentDisposition } from '../http/content-disposition.ts'
import { parseRange } from '../http/range.ts'

function fileId(text: string): number {
  const id = Number(text)
  if (!/^\d{1,15}$/.test(text) || !Number.isSafeInteger(id)) throw new HttpError(404, 'No such file')
  return id
}

export function downloadRoutes(deps: AppDeps) {
  const download = ({ params, request }: { params: { id: string }; request: Request }) => {
    const file = findFile(deps.db, fileId(params.id))
    if (!file) throw new HttpError(404, 'No such file')
    const etag = `"${file.sha256}"`
    const headers: Record<string, string> = {
      'accept-ranges': 'bytes',
      etag,
      'content-type': file.mimeType,
      'content-disposition': contentDisposition(file.name),
      'cache-control': 'private, no-cache',
      // Uploaded HTML or SVG must never run as our origin.
      'content-security-policy': 'sandbox',
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
    const body = request.method === 'HEAD' ? null : deps.blobs.body(file.sha256, start, end)
    return new Response(body, { status: range ? 206 : 200, headers })
  }
  return new Elysia({ name: 'downloads' }).get('/files/:id/download', download).head('/files/:id/download', download)
}
