import type { TestServer } from '../helpers/server.ts'
import { TUS } from '../links/helpers.ts'

/** tus requests as a test sends them: the protocol's headers, then the test's own. */

export const tusCreate = (s: TestServer, endpoint: string, headers: Record<string, string>, body?: BodyInit) =>
  s.fetch(endpoint, { method: 'POST', headers: { ...TUS, ...headers }, body })

export const tusPatch = (s: TestServer, location: string, offset: number, body: BodyInit, headers: Record<string, string> = {}) =>
  s.fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), ...headers },
    body,
  })
