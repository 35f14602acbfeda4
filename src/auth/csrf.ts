/**
 * Cross-site request forgery check for state-changing requests. Browsers label every request
 * with Sec-Fetch-Site and/or Origin; a request another site made a browser send is refused.
 * Requests without either header do not come from a browser page (curl, scripts) and carry no
 * ambient credentials of a victim, so they pass.
 */
export function isCrossSiteRequest(request: Request, trustProxy: boolean): boolean {
  const site = request.headers.get('sec-fetch-site')
  if (site !== null) return site !== 'same-origin' && site !== 'none'
  const origin = request.headers.get('origin')
  if (origin === null) return false
  try {
    return new URL(origin).origin !== requestOrigin(request, trustProxy)
  } catch {
    return true
  }
}

/**
 * The origin (scheme, host, port) the request came in on. Behind a trusted proxy that ends TLS
 * the scheme is the one the proxy appended to X-Forwarded-Proto.
 */
export function requestOrigin(request: Request, trustProxy: boolean): string {
  const url = new URL(request.url)
  const forwarded = trustProxy ? request.headers.get('x-forwarded-proto')?.split(',').pop()?.trim().toLowerCase() : undefined
  const scheme = forwarded === 'https' || forwarded === 'http' ? forwarded : url.protocol.slice(0, -1)
  return new URL(`${scheme}://${url.host}`).origin
}

export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Whether a request may change state. tus clients behind restrictive proxies send the real
 * method in X-HTTP-Method-Override, and the tus endpoint honours it whatever the request's own
 * method, so a HEAD that says DELETE is a DELETE.
 */
export function isUnsafeRequest(request: Request): boolean {
  const override = request.headers.get('x-http-method-override')
  return !SAFE_METHODS.has(request.method) || (override !== null && !SAFE_METHODS.has(override.trim().toUpperCase()))
}
