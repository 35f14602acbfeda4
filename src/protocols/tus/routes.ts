import { Elysia } from 'elysia'
import { HttpError } from '../../errors.ts'
import { errorFormats, refusalOf } from '../../http/errors.ts'
import { routePolicy } from '../../http/guard.ts'
import { terminate } from './delete.ts'
import { head } from './head.ts'
import { discover } from './options.ts'
import { patch } from './patch.ts'
import { create, type CreateContext } from './post.ts'
import { download } from './get.ts'
import { ownUpload, TUS_VERSION, tusError, type TusOptions } from './shared.ts'

export { isCorsOrigin } from '../cors.ts'
export type { TusOptions } from './shared.ts'

/**
 * tus 1.0 (https://tus.io/protocols/resumable-upload) in front of the upload engine: core
 * protocol plus creation, creation-with-upload, creation-defer-length, termination, expiration,
 * checksum and concatenation. Finished uploads become files exactly like Dropzone uploads.
 * One handler per method, each in its own file; this plugin wires them to the routes.
 */
export function tusRoutes(options: TusOptions) {
  const { prefix, engine } = options

  /** X-HTTP-Method-Override lets clients behind proxies that only pass GET and POST speak tus. */
  const method = (request: Request) => request.headers.get('x-http-method-override')?.toUpperCase() ?? request.method

  /** Refusals answered in tus's format (the app adds Tus-Resumable and CORS to every answer here). */
  async function handle(request: Request, work: () => Promise<Response> | Response): Promise<Response> {
    let response: Response
    try {
      // GET is no tus request: a finished upload's URL serves its file to anyone allowed to see it.
      if (!['OPTIONS', 'GET'].includes(method(request)) && request.headers.get('tus-resumable') !== TUS_VERSION) {
        throw new HttpError(412, `Tus-Resumable ${TUS_VERSION} is required`, { 'tus-version': TUS_VERSION })
      }
      response = await work()
    } catch (error) {
      const refusal = refusalOf(error)
      if (!refusal) throw error
      response = tusError(refusal)
      await request.body?.cancel().catch(() => {})
    }
    return response
  }

  const onUpload = async ({ request, params }: { request: Request; params: Record<string, string> }) =>
    handle(request, async () => {
      const principal = await options.authorize(request, params)
      const upload = await ownUpload(engine, principal, params.id!)
      switch (method(request)) {
        case 'GET':
          return download({ request, upload, principal, params }, options)
        case 'HEAD':
          return head({ request, upload, principal, params }, options)
        case 'PATCH':
          return patch({ request, upload, principal, params }, options)
        case 'DELETE':
          return terminate({ request, upload, principal, params }, options)
        default:
          throw new HttpError(405, 'Use GET, HEAD, PATCH or DELETE on an upload', { allow: 'GET, HEAD, PATCH, DELETE, OPTIONS' })
      }
    })

  const onDiscovery = ({ request }: { request: Request }) => handle(request, () => discover({ request }, options))
  const onCreate = (context: CreateContext) => handle(context.request, () => create(context, options))

  // Discovery and CORS preflight carry no credentials.
  const discoveryIsPublic = { public: 'tus discovery and CORS preflight', errorFormat: tusError }
  const streamed = { parse: 'none', errorFormat: tusError } as const
  return new Elysia({ name: `tus:${prefix}` })
    .use(routePolicy)
    .use(errorFormats)
    .options(prefix, onDiscovery, discoveryIsPublic)
    .options(`${prefix}/`, onDiscovery, discoveryIsPublic)
    .options(`${prefix}/:id`, onDiscovery, discoveryIsPublic)
    .post(prefix, onCreate, streamed)
    .post(`${prefix}/`, onCreate, streamed)
    .get(`${prefix}/:id`, onUpload, { errorFormat: tusError })
    .head(`${prefix}/:id`, onUpload, { errorFormat: tusError })
    .patch(`${prefix}/:id`, onUpload, streamed)
    .delete(`${prefix}/:id`, onUpload, streamed)
    .post(`${prefix}/:id`, onUpload, streamed)
}
