import { Elysia } from 'elysia'
import { readdirSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { routePolicy } from '../http/guard.ts'

/** Browser libraries come from their npm packages and are served by us: no CDN, works offline. */
const VENDOR: Record<string, string> = {
  'htmx.min.js': 'htmx.org/dist/htmx.min.js',
  'dropzone-min.js': 'dropzone/dist/dropzone-min.js',
  'dropzone.css': 'dropzone/dist/dropzone.css',
}

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' }

const PUBLIC_DIR = fileURLToPath(new URL('../../public', import.meta.url))

/** Only the files listed at start-up are served: a name from the URL never becomes a path. */
function servable(entries: [string, string][]) {
  return new Map(entries.filter(([name]) => TYPES[extname(name)]).map(([name, path]) => [name, { path, type: TYPES[extname(name)]! }]))
}

export function assetRoutes() {
  const own = servable(readdirSync(PUBLIC_DIR).map((name) => [name, join(PUBLIC_DIR, name)]))
  const vendor = servable(Object.entries(VENDOR).map(([name, module]) => [name, Bun.resolveSync(module, import.meta.dir)]))
  const serve = (files: typeof own) => ({ params, status }: { params: { name: string }; status: (code: 404, body: string) => unknown }) => {
    const file = files.get(params.name)
    if (!file) return status(404, 'Not found')
    return new Response(Bun.file(file.path), { headers: { 'content-type': file.type, 'cache-control': 'public, max-age=86400' } })
  }
  const why = { public: "the pages' scripts and styles, the sign-in page's included" }
  return new Elysia({ name: 'assets' })
    .use(routePolicy)
    .get('/assets/:name', serve(own), why)
    .get('/assets/vendor/:name', serve(vendor), why)
}
