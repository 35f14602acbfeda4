import { Elysia } from 'elysia'
import { isCrossSiteRequest, SAFE_METHODS } from './auth/csrf.ts'
import { isValidSession, SESSION_COOKIE } from './auth/sessions.ts'
import type { PasswordChecks } from './auth/password-checks.ts'
import type { Config } from './config.ts'
import { durable } from './db/durable.ts'
import type { Db } from './db/open.ts'
import type { UploadEngine } from './engine/engine.ts'
import { HttpError } from './errors.ts'
import { readCookie } from './http/cookies.ts'
import { errorResponse } from './http/errors.ts'
import { dropzoneRoutes } from './protocols/dropzone.ts'
import { isCorsOrigin, tusRoutes } from './protocols/tus.ts'
import { assetRoutes } from './routes/assets.ts'
import { authRoutes } from './routes/auth.ts'
import { accountRoutes } from './routes/account.ts'
import { downloadRoutes } from './routes/downloads.ts'
import { fileRoutes } from './routes/files.ts'
import { folderRoutes } from './routes/folders.ts'
import { trashRoutes } from './routes/trash.ts'
import { uploadsPageRoutes } from './routes/uploads-page.ts'
import { activityRoutes } from './routes/activity.ts'
import { dropRoutes } from './routes/drop.ts'
import { linkRoutes } from './routes/links.ts'
import type { BlobStore, Staging } from './storage/types.ts'

export interface AppDeps {
  config: Config
  db: Db
  engine: UploadEngine
  blobs: BlobStore
  staging: Staging
  clock: () => number
  log: (message: string, context?: Record<string, unknown>) => void
  /** Every password check (sign-in, drop-link unlock): rate-limited and bounded. */
  passwordChecks: PasswordChecks
}

/** Paths anyone may reach; everything else needs the admin session (deny by default). */
const PUBLIC_PATHS = [
  /^\/login$/,
  /^\/assets\//,
  /^\/healthz$/,
  // Drop links check their own token (and password) on every request.
  /^\/d\/[^/]+(\/|$)/,
]
/** Routes that stream large bodies and enforce their own limits. */
const STREAMING_PATHS = [/^\/upload$/, /^\/tus(\/|$)/, /^\/d\/[^/]+\/(upload|tus)(\/|$)/]
const TUS_PATH = /^(\/d\/[^/]+)?\/tus(\/|$)/

const isPublic = (request: Request, path: string) =>
  PUBLIC_PATHS.some((re) => re.test(path)) ||
  // tus discovery and CORS preflight carry no credentials.
  (request.method === 'OPTIONS' && TUS_PATH.test(path))

/** A page on an origin allowed to use tus cross-origin is not a forgery. */
const isAllowedCrossOrigin = (config: Config, request: Request, path: string) => {
  const origin = request.headers.get('origin')
  return origin !== null && TUS_PATH.test(path) && isCorsOrigin(config, origin)
}
const FORM_BODY_LIMIT_BYTES = 1024 * 1024

/** Elysia's own errors (unknown route, unparsable body) are the client's, not ours. */
function asHttpError(code: unknown, error: unknown): unknown {
  if (code === 'NOT_FOUND') return new HttpError(404, 'Not found')
  if (code === 'PARSE' || code === 'VALIDATION') return new HttpError(400, 'The request could not be read')
  return error
}

export function createApp(deps: AppDeps) {
  return new Elysia({
    // Bun applies this cap to streamed bodies too; each route enforces its own, smaller limit.
    serve: { maxRequestBodySize: deps.config.maxFileBytes + 1024 * 1024 },
  })
    .onError(({ code, error, request }) => errorResponse(asHttpError(code, error), request, deps.log))
    .onRequest(({ request }) => {
      const path = new URL(request.url).pathname
      if (!SAFE_METHODS.has(request.method)) {
        if (isCrossSiteRequest(request) && !isAllowedCrossOrigin(deps.config, request, path)) {
          throw new HttpError(403, 'Cross-site request refused')
        }
        const declared = Number(request.headers.get('content-length') ?? 0)
        if (!STREAMING_PATHS.some((re) => re.test(path)) && declared > FORM_BODY_LIMIT_BYTES) {
          throw new HttpError(413, 'Request body too large')
        }
      }
      if (isPublic(request, path)) return
      if (isValidSession(deps.db, readCookie(request, SESSION_COOKIE), deps.clock())) return
      const wantsPage = request.method === 'GET' && (request.headers.get('accept') ?? '').includes('text/html')
      if (wantsPage) {
        return new Response(null, { status: 303, headers: { location: `/login?next=${encodeURIComponent(path)}` } })
      }
      throw new HttpError(401, 'Sign in first')
    })
    // A change the page confirms survives a power cut (the upload engine does the same for its own steps).
    .onAfterHandle(async ({ request }) => {
      if (!SAFE_METHODS.has(request.method)) await durable(deps.db)
    })
    .get('/healthz', () => 'ok')
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
    // The global guard has already required the admin session for these.
    .use(dropzoneRoutes({ path: '/upload', engine: deps.engine, config: deps.config, authorize: () => ({ owner: 'admin' }) }))
    .use(
      tusRoutes({
        prefix: '/tus',
        engine: deps.engine,
        config: deps.config,
        authorize: () => ({ owner: 'admin' }),
      }),
    )
    .use(downloadRoutes(deps))
}

export type App = ReturnType<typeof createApp>
