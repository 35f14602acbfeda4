import { Elysia } from 'elysia'
import { isUnsafeRequest } from './auth/csrf.ts'
import { HttpError } from './errors.ts'
import type { AppDeps } from './http/deps.ts'
import { errorResponse } from './http/errors.ts'
import { guard } from './http/guard.ts'
import { dropzoneRoutes } from './protocols/dropzone.ts'
import { endpointHeaders, isCorsOrigin, multipartPreflight, withEndpointHeaders } from './protocols/cors.ts'
import { tusRoutes } from './protocols/tus/routes.ts'
import { resumableRoutes } from './protocols/resumable/routes.ts'
import { assetRoutes } from './routes/assets.ts'
import { authRoutes } from './routes/auth.ts'
import { accountRoutes } from './routes/account.ts'
import { downloadRoutes, libraryFileResponse } from './routes/downloads.ts'
import { fileRoutes } from './routes/files.ts'
import { folderRoutes } from './routes/folders.ts'
import { trashRoutes } from './routes/trash.ts'
import { uploadsPageRoutes } from './routes/uploads-page.ts'
import { activityRoutes } from './routes/activity.ts'
import { dropRoutes } from './routes/drop.ts'
import { linkRoutes } from './routes/links.ts'

/** Elysia's own errors (unknown route, unparsable body) are the client's, not ours. */
function asHttpError(code: unknown, error: unknown): unknown {
  if (code === 'NOT_FOUND') return new HttpError(404, 'Not found')
  if (code === 'PARSE' || code === 'VALIDATION') return new HttpError(400, 'The request could not be read')
  return error
}

export function createApp(deps: AppDeps) {
  const { config } = deps
  if (config.tusCorsOrigins.includes('*')) {
    deps.log('warning: TUS_CORS_ORIGINS=* lets a page on any site upload with the cookies its visitor has here (the admin session and drop-link unlocks are SameSite=Lax, so a browser sends them cross-site only on top-level navigations)')
  }
  const crossOrigin = (origin: string) => isCorsOrigin(config, origin)
  return new Elysia({
    // Bun applies this cap to streamed bodies too; each route enforces its own, smaller limit.
    // Never Bun's development error page: it shows paths and source to the client.
    serve: { maxRequestBodySize: deps.config.maxFileBytes + 1024 * 1024, development: false },
    // The router takes the path as what follows "http://" and the host, whatever the host's
    // length (its default assumes a host of at least four characters, so `Host: x` routed
    // `/assets/files/1/download` as `/files/1/download`). The guard serves only such URLs.
    handler: { standardHostname: false },
  })
    // Answers under the upload endpoints carry their protocol's and the CORS headers, errors included.
    .onError(({ code, error, request }) => withEndpointHeaders(config, request, errorResponse(asHttpError(code, error), request, deps.log, deps.stopping?.() ?? false)))
    .mapResponse({ as: 'global' }, ({ request, responseValue, set }) => {
      if (responseValue instanceof Response) return withEndpointHeaders(config, request, responseValue)
      // Anything else (a protocol's JSON) becomes a response later, with these headers.
      Object.assign(set.headers, endpointHeaders(config, request))
    })
    // Before any route: every route after it is admin-only unless it declares otherwise.
    .use(guard(deps))
    // A change the page confirms survives a power cut (the upload engine does the same for its own steps).
    .onAfterHandle(async ({ request }) => {
      if (isUnsafeRequest(request)) await deps.store.durable()
    })
    .get('/healthz', () => 'ok', { public: 'health checks carry no credentials' })
    .use(assetRoutes())
    .use(authRoutes(deps))
    .use(accountRoutes(deps))
    .use(folderRoutes(deps))
    .use(fileRoutes(deps))
    .use(trashRoutes(deps))
    .use(uploadsPageRoutes(deps))
    .use(activityRoutes(deps))
    .use(dropRoutes(deps))
    .use(linkRoutes(deps))
    // The guard has already required the admin session for these.
    .use(multipartPreflight(config, '/upload'))
    .guard({ streamsBody: true, crossOrigin }, (uploads) =>
      uploads
        .use(dropzoneRoutes({ path: '/upload', engine: deps.engine, config, authorize: () => ({ owner: 'admin' }) }))
        .use(
          tusRoutes({
            prefix: '/tus',
            engine: deps.engine,
            config,
            authorize: () => ({ owner: 'admin' }),
            serveFile: (request, _params, fileId) => libraryFileResponse(deps, fileId, request, 'attachment'),
          }),
        )
        .use(resumableRoutes({ prefix: '/resumable', engine: deps.engine, config, authorize: () => ({ owner: 'admin' }) })),
    )
    .use(downloadRoutes(deps))
}

export type App = ReturnType<typeof createApp>
