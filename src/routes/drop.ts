import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { routePolicy } from '../http/guard.ts'
import { dropzoneRoutes } from '../protocols/dropzone.ts'
import { isCorsOrigin, multipartPreflight } from '../protocols/cors.ts'
import { tusRoutes } from '../protocols/tus/routes.ts'
import { resumableRoutes } from '../protocols/resumable/routes.ts'
import { dropLinkAccess } from './drop/access.ts'
import { downloadFromDropLink, dropLinkFiles } from './drop/files.ts'
import { dropLinkPage } from './drop/page.ts'
import { unlockDropLink } from './drop/unlock.ts'

/**
 * What a drop link (/d/<token>) opens for a visitor without an account: its upload page, the
 * Dropzone and tus endpoints bound to its folder and limits, and (if allowed) that folder's
 * files. Nothing else of the server is reachable through it. One handler per route, in
 * `drop/`; this plugin wires them to the paths.
 */
export function dropRoutes(deps: AppDeps) {
  const { config } = deps
  const access = dropLinkAccess(deps)
  const principal = access.principal

  // Every route here checks the link's token (and password) itself, on every request.
  const checksToken = 'drop link: checks its own token and password'
  return new Elysia({ name: 'drop-links' })
    .use(routePolicy)
    .guard({ public: checksToken, dropLink: true })
    .get('/d/:token', ({ request, params }) => dropLinkPage(access, request, params.token))
    .post('/d/:token/unlock', ({ request, params, server }) => unlockDropLink(access, request, params.token, server), { parse: 'none' })
    .get('/d/:token/files', ({ request, params }) => dropLinkFiles(access, request, params.token))
    .get('/d/:token/files/:id/download', ({ request, params }) => downloadFromDropLink(access, request, params.token, params.id))
    .use(multipartPreflight(config, '/d/:token/upload'))
    .guard({ streamsBody: true, crossOrigin: (origin: string) => isCorsOrigin(config, origin) }, (uploads) =>
      uploads
        .use(dropzoneRoutes({ path: '/d/:token/upload', engine: deps.engine, config, authorize: principal }))
        .use(
          tusRoutes({
            prefix: '/d/:token/tus',
            engine: deps.engine,
            config,
            authorize: principal,
            serveFile: (request, params, fileId) => downloadFromDropLink(access, request, params.token ?? '', String(fileId)),
          }),
        )
        .use(resumableRoutes({ prefix: '/d/:token/resumable', engine: deps.engine, config, authorize: principal })),
    )
}
