import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestServer, type TestServer } from '../helpers/server.ts'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.stop())

const anonymous = { cookie: '' }

describe('each protocol answers errors in its own format, chosen by its routes', () => {
  test('Dropzone reads a refusal as JSON {error}, also one from the sign-in check before the route runs', async () => {
    const refused = await server.fetch('/upload', { method: 'POST', headers: { ...anonymous, 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--\r\n' })
    expect(refused.status).toBe(401)
    expect(await refused.json()).toEqual({ error: 'Sign in first' })

    const missing = await server.fetch('/upload/no-such-key')
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: 'No such upload' })
  })

  test('tus answers in text with Tus-Resumable, also when the sign-in check refuses', async () => {
    const refused = await server.fetch('/tus/', { method: 'POST', headers: { ...anonymous, 'tus-resumable': '1.0.0', 'upload-length': '1' } })
    expect(refused.status).toBe(401)
    expect(refused.headers.get('tus-resumable')).toBe('1.0.0')
    expect(await refused.text()).toBe('Sign in first\n')

    const missing = await server.fetch('/tus/0123456789abcdef0123456789abcdef', { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })
    expect(missing.status).toBe(404)
    expect(missing.headers.get('tus-resumable')).toBe('1.0.0')
  })

  test('a page whose address merely ends in /upload is no Dropzone route: its refusal is text', async () => {
    const response = await server.fetch('/files/upload', { headers: { accept: 'text/html' } })
    expect(response.status).toBe(404)
    expect(response.headers.get('content-type')).not.toContain('json')
  })
})
