import type { Server } from 'bun'
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { TrustProxy } from '../config.ts'

/**
 * The client's address. Without a trusted proxy, the socket's peer. Behind one, the address
 * the proxy appended to X-Forwarded-For: each proxy appends the address it received the request
 * from, so only the right-most entries were written by proxies we trust; everything to their
 * left came from the client and may be forged.
 */
export function clientAddress(request: Request, server: Server<unknown> | null | undefined, trustProxy: TrustProxy): string | null {
  const peer = server?.requestIP(request)?.address ?? null
  if (trustProxy === false) return peer
  const forwarded = (request.headers.get('x-forwarded-for') ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
  if ('hops' in trustProxy) return forwarded[forwarded.length - trustProxy.hops] ?? forwarded[0] ?? peer
  // Only a peer inside the trusted ranges is a proxy of ours; then skip the proxies' own entries.
  if (peer === null || !isTrusted(trustProxy.proxies, peer)) return peer
  for (let i = forwarded.length - 1; i >= 0; i--) {
    if (!isTrusted(trustProxy.proxies, forwarded[i]!)) return forwarded[i]!
  }
  return forwarded[0] ?? peer
}

function isTrusted(proxies: BlockList, address: string): boolean {
  if (isIPv4(address)) return proxies.check(address, 'ipv4')
  if (isIPv6(address)) return proxies.check(address, 'ipv6')
  return false
}
