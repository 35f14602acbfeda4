import { Elysia } from 'elysia'
import { HttpError } from '../../errors.ts'
import { errorFormats, refusalOf } from '../../http/errors.ts'
import { routePolicy } from '../../http/guard.ts'
import { preflightHeaders } from '../cors.ts'
import type { CreateContext } from '../tus/post.ts'
import { create } from './create.ts'
import { PARTIAL_UPLOAD, problemError, uploadLimit, type ResumableOptions } from './fields.ts'
import { cancel, head, ownUpload, patch } from './upload.ts'

export type { ResumableOptions } from './fields.ts'

const REQUEST_HEADERS = 'Content-Type, Content-Disposition, Upload-Complete, Upload-Offset, Upload-Length, Dropfold-Folder'

/**
 * Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload-15) in front of the upload
 * engine: creation (POST or PUT with `Upload-Complete`), offset retrieval (HEAD), append
 * (PATCH), cancellation (DELETE), `Upload-Limit`, problem details. Finished uploads become files
 * exactly like tus and Dropzone uploads. One handler per step; this plugin wires them.
 */
export function resumableRoutes(options: ResumableOptions) {
  const { prefix } = options

  async function handle(request: Request, work: () => Promise<Response> | Response): Promise<Response> {
    try {
      return await work()
    } catch (error) {
      const refusal = refusalOf(error)
      if (!refusal) throw error
      await request.body?.cancel().catch(() => {})
      // A 413 for the upload's limits carries them (draft, "Limits").
      if (refusal.status === 413) return problemError(new HttpError(413, refusal.message, { ...refusal.headers, ...uploadLimit(options) }))
      return problemError(refusal)
    }
  }

  const onUpload = ({ request, params }: { request: Request; params: Record<string, string> }) =>
    handle(request, async () => {
      const principal = await options.authorize(request, params)
      const upload = await ownUpload(options, principal, params.id!)
      const context = { request, upload, principal }
      if (request.method === 'HEAD') return head(context, options)
      if (request.method === 'PATCH') return patch(context, options)
      if (request.method === 'DELETE') return cancel(context, options)
      throw new HttpError(405, 'Use HEAD, PATCH or DELETE on an upload', { allow: 'HEAD, PATCH, DELETE, OPTIONS' })
    })

  const onCreate = (context: CreateContext) => handle(context.request, () => create(context, options))

  /** OPTIONS: the draft's discovery (Accept-Patch, Upload-Limit) and a browser's CORS preflight. Carries no credentials. */
  const onDiscovery = ({ request }: { request: Request }) =>
    new Response(null, {
      status: 204,
      headers: { 'accept-patch': PARTIAL_UPLOAD, ...uploadLimit(options), ...preflightHeaders(options.config, request, 'POST, PUT, HEAD, PATCH, DELETE, OPTIONS', REQUEST_HEADERS) },
    })

  const discoveryIsPublic = { public: 'resumable upload discovery and CORS preflight', errorFormat: problemError }
  const streamed = { parse: 'none', errorFormat: problemError } as const
  return new Elysia({ name: `resumable:${prefix}` })
    .use(routePolicy)
    .use(errorFormats)
    .options(prefix, onDiscovery, discoveryIsPublic)
    .options(`${prefix}/`, onDiscovery, discoveryIsPublic)
    .options(`${prefix}/:id`, onDiscovery, discoveryIsPublic)
    .post(prefix, onCreate, streamed)
    .post(`${prefix}/`, onCreate, streamed)
    .put(prefix, onCreate, streamed)
    .put(`${prefix}/`, onCreate, streamed)
    .head(`${prefix}/:id`, onUpload, { errorFormat: problemError })
    .patch(`${prefix}/:id`, onUpload, streamed)
    .delete(`${prefix}/:id`, onUpload, streamed)
}
