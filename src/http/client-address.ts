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

/** "10.0.0.0/8, 192.168.1.7, ::1/128" as a set of ranges; null when an entry is not an address or range. */
export function parseProxyRanges(text: string): BlockList | null {
  const ranges = new BlockList()
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const [address = '', prefix, extra] = entry.split('/')
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null
    if (family === null || extra !== undefined) return null
    const bits = family === 'ipv4' ? 32 : 128
    if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits)) return null
    ranges.addSubnet(address, prefix === undefined ? bits : Number(prefix), family)
  }
  return ranges
}
