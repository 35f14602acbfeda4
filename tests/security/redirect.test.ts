import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'

/** `next` values as the query parser hands them over (decoded once). */
const HOSTILE = [
  '/\t/evil.example/',
  '/\t/evil.example',
  '/\n/evil.example',
  '/\r/evil.example',
  '/\\evil.example',
  '/\\\\evil.example',
  '\\\\evil.example',
  '//evil.example',
  '///evil.example',
  '/\t\\evil.example',
  '/\u0000/evil.example',
  'https://evil.example/',
  'http:evil.example',
  'evil.example',
  '',
]

describe('the page after signing in', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer()
  })
  afterAll(() => t.stop())

  const signIn = (next: string) =>
    fetch(`${t.url}/login`, { method: 'POST', body: new URLSearchParams({ password: TEST_PASSWORD, next }), redirect: 'manual' })

  test('is a path on this site, kept as asked', async () => {
    for (const next of ['/folders/1?sort=name&dir=asc', '/files/2', '/links#new', '/%2F%2Fevil.example']) {
      const response = await signIn(next)
      expect(response.status).toBe(303)
      expect(response.headers.get('location')).toBe(next)
    }
  })

  test('is the home page for anything a browser would take to another host', async () => {
    for (const next of HOSTILE) {
      const response = await signIn(next)
      expect(`${JSON.stringify(next)} → ${response.headers.get('location')}`).toBe(`${JSON.stringify(next)} → /`)
    }
  })

  test('from the query string too: the sign-in form carries only a safe path', async () => {
    for (const query of ['%2F%09%2Fevil.example%2F', '/%2F%2Fevil', '%2F%2Fevil', '/%5Cevil', '/%09/evil', 'https://evil']) {
      const page = await (await fetch(`${t.url}/login?next=${query}`)).text()
      const value = /name="next" value="([^"]*)"/.exec(page)?.[1]
      expect(`${query} → ${value}`).toBe(`${query} → /`)
    }
  })
})
