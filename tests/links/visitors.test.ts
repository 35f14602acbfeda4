import { afterEach, describe, expect, test } from 'bun:test'
import { randomData, sha256 } from '../helpers/data.ts'
import type { TestServer } from '../helpers/server.ts'
import { CHUNK, adminPost, createLink, one, sendLinkChunk, startLinkServer, unlock, visit } from './helpers.ts'

let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

/** Opens the link's page as a new visitor and returns the visitor cookie it sets ("name=value"). */
async function newVisitor(s: TestServer, path: string) {
  const page = await visit(s, path)
  expect(page.status).toBe(200)
  const cookie = (page.headers.getSetCookie?.() ?? [page.headers.get('set-cookie') ?? '']).find((c) => c.startsWith('dropfold_visitor='))
  expect(cookie).toMatch(new RegExp(`^dropfold_visitor=[A-Za-z0-9_-]{22}; Path=${path}; Max-Age=\\d+; HttpOnly; SameSite=Lax$`))
  return cookie!.split(';')[0]!
}

describe('visitors of one link', () => {
  test('cannot reach each other’s uploads, even with the same upload id', async () => {
    server = await startLinkServer()
    const link = await createLink(server)
    const alice = await newVisitor(server, link.path)
    const mallory = await newVisitor(server, link.path)
    expect(alice).not.toBe(mallory)
    const data = randomData(2 * CHUNK)
    expect((await sendLinkChunk(server, link, 'holiday', data, 0, { cookie: alice })).status).toBe(200)

    // Mallory knows (or guesses) Alice's upload id: the status is not hers to see...
    expect((await visit(server, `${link.path}/upload/holiday`, { cookie: mallory })).status).toBe(404)
    // ...and her "missing chunk" starts an upload of her own instead of completing Alice's.
    const forged = await sendLinkChunk(server, link, 'holiday', randomData(2 * CHUNK), 1, { cookie: mallory })
    expect(forged.status).toBe(200)
    expect((await forged.json()).upload.receivedChunks).toBe(1)

    const alicesStatus = await (await visit(server, `${link.path}/upload/holiday`, { cookie: alice })).json()
    expect(alicesStatus.chunks).toEqual([0])
    expect((await sendLinkChunk(server, link, 'holiday', data, 1, { cookie: alice })).status).toBe(200)
    const done = await (await visit(server, `${link.path}/upload/holiday`, { cookie: alice })).json()
    expect(done.upload.state).toBe('complete')
    expect(done.file.sha256).toBe(sha256(data))
  })

  test('a visitor cookie is set once and kept', async () => {
    server = await startLinkServer()
    const link = await createLink(server)
    const cookie = await newVisitor(server, link.path)
    const again = await visit(server, link.path, { cookie })
    expect(again.headers.get('set-cookie')).toBeNull()
  })
})

describe('unlocking', () => {
  test('a switched-off link says so (410) on its unlock form too', async () => {
    server = await startLinkServer()
    const link = await createLink(server, { password: 'let me in now' })
    expect((await adminPost(server, `/links/${link.id}/disable`)).status).toBe(303)
    const { response } = await unlock(server, link, 'let me in now')
    expect(response.status).toBe(410)
  })
})
