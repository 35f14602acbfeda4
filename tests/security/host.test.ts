import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { rawRequest, requestText } from './raw-http.ts'


/** What a development error page or a stack trace would show. */
const LEAKS = [/\.ts\b/, /node_modules/, /\/work\//, /\bat .*:\d+/, /<html/i, /stack/i, /source/i]

describe('a request without a usable Host header', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer()
  })
  afterAll(() => t.stop())

  const cases: [string, () => string][] = [
    ['HTTP/1.0 without Host', () => 'GET /folders/1 HTTP/1.0\r\n\r\n'],
    ['HTTP/1.0 without Host, to a public page', () => 'GET /login HTTP/1.0\r\n\r\n'],
    ['an empty Host', () => requestText('GET', '/login', '')],
    ['a Host with userinfo and a path', () => requestText('GET', '/login', 'a@b/x')],
    ['a Host with a space', () => requestText('GET', '/healthz', 'a b')],
    ['a POST with an empty Host', () => requestText('POST', '/login', '', {}, 'password=x')],
    ['an empty Host in front of an admin path', () => requestText('GET', '/assets/files/1/download', '')],
  ]
  for (const [name, text] of cases) {
    test(`${name} is answered 400, with nothing of the server's insides`, async () => {
      const response = await rawRequest(t.url, text())
      expect(response.status).toBe(400)
      for (const leak of LEAKS) expect(response.body).not.toMatch(leak)
    })
  }

  test('the same requests with a Host are served (so the 400 is about the Host)', async () => {
    expect((await rawRequest(t.url, 'GET /login HTTP/1.0\r\nHost: x\r\n\r\n')).status).toBe(200)
    expect((await rawRequest(t.url, requestText('GET', '/healthz', 'a'))).status).toBe(200)
  })

  test('an unexpected error is a bare 500: logged here, never shown there', async () => {
    // A fault no route expects: a table gone from under it.
    t.sql.run('drop table activity')
    const response = await t.fetch('/activity')
    expect(response.status).toBe(500)
    const body = await response.text()
    expect(body).toBe('Internal server error\n')
    for (const leak of LEAKS) expect(body).not.toMatch(leak)
    expect(t.logs.some((line) => line.startsWith('unexpected error') && line.includes('activity'))).toBe(true)
  })
})
