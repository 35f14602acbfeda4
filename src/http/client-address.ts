import type { Server } from 'bun'

/** The client's address: the socket's peer, or X-Forwarded-For's first hop behind a trusted proxy. */
export function clientAddress(request: Request, server: Server<unknown> | null | undefined, trustProxy: boolean): string | null {
  if (trustProxy) {
    const forwarded = request.headers.get('x-forwarded-for')?.split(',')[0]?.trim()
    if (forwarded) return forwarded
  }
  return server?.requestIP(request)?.address ?? null
}
