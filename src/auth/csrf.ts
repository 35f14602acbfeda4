/**
 * Cross-site request forgery check for state-changing requests. Browsers label every request
 * with Sec-Fetch-Site and/or Origin; a request another site made a browser send is refused.
 * Requests without either header do not come from a browser page (curl, scripts) and carry no
 * ambient credentials of a victim, so they pass.
 */
export function isCrossSiteRequest(request: Request): boolean {
  const site = request.headers.get('sec-fetch-site')
  if (site !== null) return site !== 'same-origin' && site !== 'none'
  const origin = request.headers.get('origin')
  if (origin === null) return false
  const host = request.headers.get('host')
  try {
    return new URL(origin).host !== host
  } catch {
    return true
  }
}

export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
