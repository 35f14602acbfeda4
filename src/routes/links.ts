import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { createLink, deleteLink, disableLink, enableLink, setFolderPassword, updateLink } from './links/actions.ts'
import { showLink, showLinks } from './links/pages.ts'
import { links } from './links/shared.ts'
import type { ActionContext as Ctx } from './respond.ts'

/** Drop links and folder passwords (admin only): pages and actions. One named handler per route, in `links/`. */
export function linkRoutes(deps: AppDeps) {
  const l = links(deps)
  return new Elysia({ name: 'links' })
    .get('/links', ({ request, query }) => showLinks(l, request, query))
    .get('/links/:id', ({ request, params }) => showLink(l, request, params.id))
    .post('/links', (context: Omit<Ctx, 'params'>) => createLink(l, context), { parse: 'none' })
    .post('/links/folder-password', (context: Omit<Ctx, 'params'>) => setFolderPassword(l, context), { parse: 'none' })
    .post('/links/:id', (context: Ctx) => updateLink(l, context), { parse: 'none' })
    .post('/links/:id/disable', (context: Ctx) => disableLink(l, context))
    .post('/links/:id/enable', (context: Ctx) => enableLink(l, context))
    .post('/links/:id/delete', (context: Ctx) => deleteLink(l, context))
}
