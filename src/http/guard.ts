import { Elysia } from 'elysia'
import { isCrossSiteRequest, isUnsafeRequest } from '../auth/csrf.ts'
import { isValidSession, SESSION_COOKIE } from '../auth/sessions.ts'
import type { Config } from '../config.ts'
import type { MetadataStore } from '../ports/metadata.ts'
import { HttpError } from '../errors.ts'
import { readCookie } from './cookies.ts'

/**
 * Who may call a route, decided on the route the router picked (never on a path parsed apart
 * from it). Every route needs the admin session and takes at most a small form, unless it
 * declares otherwise in its own options, next to its definition:
 *
 *   .get('/healthz', () => 'ok', { public: 'health checks carry no credentials' })
 *
 * The options set the request's policy in the route's `transform` step; the one guard
 * (`guard`, below) reads it in `beforeHandle`, which every route runs after `transform`.
 */
interface RoutePolicy {
  /** Why anyone may call it without the admin session (it checks whatever it needs itself). */
  public?: string
  /** It streams its own body and enforces its own limits (uploads). */
  streamsBody?: boolean
  /** Pages on origins this accepts may call it cross-site (tus with TUS_CORS_ORIGINS). */
  crossOrigin?: (origin: string) => boolean
}

const policies = new WeakMap<Request, RoutePolicy>()

function declare(request: Request, policy: RoutePolicy) {
  policies.set(request, { ...policies.get(request), ...policy })
}

/** The route options above; every route plugin uses it. */
export const routePolicy = new Elysia({ name: 'route-policy' }).macro({
  public: (reason: string) => ({
    transform({ request }) {
      declare(request, { public: reason })
    },
  }),
  streamsBody: (streams: boolean) => ({
    transform({ request }) {
      declare(request, { streamsBody: streams })
    },
  }),
  crossOrigin: (accepts: (origin: string) => boolean) => ({
    transform({ request }) {
      declare(request, { crossOrigin: accepts })
    },
  }),
  /** A drop link's pages: the token is in the URL, so it is never sent on, kept or indexed. */
  dropLink: (isDropLink: boolean) => ({
    transform({ set }) {
      if (!isDropLink) return
      set.headers['referrer-policy'] = 'no-referrer'
      set.headers['cache-control'] = 'no-store'
      set.headers['x-robots-tag'] = 'noindex'
    },
  }),
})

/** Forms and htmx actions are small; only upload routes (streamsBody) take more. */
export const FORM_BODY_LIMIT_BYTES = 1024 * 1024

/**
 * Bun builds `request.url` from the Host header, leaving it relative when that header is
 * missing or not a host (`a@b/x`). The router finds the path as what follows "http://" and the
 * host, so only an absolute http URL is served (TLS ends at a proxy in front of Dropfold).
 */
function servedUrl(url: string): boolean {
  return url.startsWith('http://') && URL.canParse(url)
}

/** The one place that enforces route policies; `.use` it before any route. */
export function guard(deps: { config: Config; store: MetadataStore; clock: () => number }) {
  return new Elysia({ name: 'guard' })
    .use(routePolicy)
    .onRequest(({ request }) => {
      if (!servedUrl(request.url)) throw new HttpError(400, 'The Host header is missing or invalid')
    })
    .onBeforeHandle({ as: 'global' }, async ({ request, path }) => {
      const policy = policies.get(request) ?? {}
      if (isUnsafeRequest(request)) {
        const origin = request.headers.get('origin')
        const allowed = origin !== null && policy.crossOrigin?.(origin) === true
        if (!allowed && isCrossSiteRequest(request, deps.config.trustProxy !== false)) throw new HttpError(403, 'Cross-site request refused')
        if (!policy.streamsBody) refuseLargeForm(request)
      }
      if (policy.public !== undefined) return
      if (await isValidSession(deps.store, readCookie(request, SESSION_COOKIE), deps.clock())) return
      const wantsPage = request.method === 'GET' && (request.headers.get('accept') ?? '').includes('text/html')
      if (wantsPage) {
        return new Response(null, { status: 303, headers: { location: `/login?next=${encodeURIComponent(path)}` } })
      }
      throw new HttpError(401, 'Sign in first')
    })
}

function refuseLargeForm(request: Request) {
  const declared = request.headers.get('content-length')
  if (declared === null) {
    // A body without a length could be of any size; forms always say theirs.
    if (request.headers.has('transfer-encoding')) throw new HttpError(411, 'Send a Content-Length')
    return
  }
  if (Number(declared) > FORM_BODY_LIMIT_BYTES) throw new HttpError(413, 'Request body too large')
}
