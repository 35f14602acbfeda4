import { Elysia } from 'elysia'
import { staticPlugin } from '@elysiajs/static'
import { fileURLToPath } from 'node:url'

/** Browser libraries come from their npm packages and are served by us: no CDN, works offline. */
const VENDOR: Record<string, { module: string; type: string }> = {
  'htmx.min.js': { module: 'htmx.org/dist/htmx.min.js', type: 'text/javascript; charset=utf-8' },
  'dropzone-min.js': { module: 'dropzone/dist/dropzone-min.js', type: 'text/javascript; charset=utf-8' },
  'dropzone.css': { module: 'dropzone/dist/dropzone.css', type: 'text/css; charset=utf-8' },
}

const PUBLIC_DIR = fileURLToPath(new URL('../../public', import.meta.url))

export function assetRoutes() {
  const vendorFiles = new Map(Object.entries(VENDOR).map(([name, v]) => [name, { path: Bun.resolveSync(v.module, import.meta.dir), type: v.type }]))
  return new Elysia({ name: 'assets' })
    .use(staticPlugin({ assets: PUBLIC_DIR, prefix: '/assets', alwaysStatic: false }))
    .get('/assets/vendor/:name', ({ params, status }) => {
      const file = vendorFiles.get(params.name)
      if (!file) return status(404, 'Not found')
      return new Response(Bun.file(file.path), { headers: { 'content-type': file.type, 'cache-control': 'public, max-age=86400' } })
    })
}
