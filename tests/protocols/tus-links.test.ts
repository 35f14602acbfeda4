import { describe, expect, test } from 'bun:test'
import { serverPerTest, startTestServer, type TestServer } from '../helpers/server.ts'
import { createLink, stagingEntries, TUS, tusMetadata, type CreatedLink } from '../links/helpers.ts'
import { tusCreate, tusPatch } from './tus-requests.ts'

const start = serverPerTest((env) => startTestServer({ MAX_FILE_SIZE: '16M', ...env }))

/** A visitor: no admin session. */
const VISITOR = { cookie: '' }

const create = (s: TestServer, link: CreatedLink, headers: Record<string, string>) => tusCreate(s, `${link.path}/tus/`, { ...VISITOR, ...headers })

async function created(s: TestServer, link: CreatedLink, headers: Record<string, string>): Promise<string> {
  const response = await create(s, link, headers)
  expect({ status: response.status, body: await response.text() }).toEqual({ status: 201, body: '' })
  return response.headers.get('location')!
}

const patch = (s: TestServer, location: string, offset: number, body: BodyInit, headers: Record<string, string> = {}) =>
  tusPatch(s, location, offset, body, { ...VISITOR, ...headers })

const named = (name: string) => ({ 'upload-metadata': tusMetadata({ filename: name }) })
const partial = (length: number) => ({ 'upload-concat': 'partial', 'upload-length': String(length) })

async function finishedPartial(s: TestServer, link: CreatedLink, data: string): Promise<string> {
  const location = await created(s, link, partial(data.length))
  expect((await patch(s, location, 0, data)).status).toBe(204)
  return location
}

const final = (s: TestServer, link: CreatedLink, parts: string[], name: string) =>
  create(s, link, { 'upload-concat': `final;${parts.join(' ')}`, ...named(name) })

/** The files stored (the link's folder is Home), on either database. */
const files = async (s: TestServer) =>
  (await s.server.store.library.filePage({ folderId: 1, sort: 'date', direction: 'asc', filter: '', limit: 100, offset: 0 })).map((f) => ({ name: f.name, size_bytes: f.sizeBytes }))

describe('a drop link takes deferred lengths, its limits checked when the length is declared', () => {
  test('a declared length over the link\'s largest file is refused before its bytes are taken; within it, the file is stored', async () => {
    const s = await start()
    const link = await createLink(s, { maxFileSize: '10' })
    const location = await created(s, link, { 'upload-defer-length': '1', ...named('notes.txt') })
    expect((await patch(s, location, 0, 'abcd')).status).toBe(204)
    const tooLong = await patch(s, location, 4, 'efgh', { 'upload-length': '11' })
    expect(tooLong.status).toBe(413)
    expect(await tooLong.text()).toContain('up to 10 bytes')
    const head = await s.fetch(location, { method: 'HEAD', headers: { ...TUS, ...VISITOR } })
    expect(head.headers.get('upload-offset')).toBe('4')
    expect(head.headers.get('upload-defer-length')).toBe('1')

    expect((await patch(s, location, 4, 'efgh', { 'upload-length': '8' })).status).toBe(204)
    expect(await files(s)).toEqual([{ name: 'notes.txt', size_bytes: 8 }])
  })

  test("bytes sent before the length is declared are checked against the link's limits first", async () => {
    const s = await start()
    const link = await createLink(s, { maxTotalSize: '6' })
    const location = await created(s, link, { 'upload-defer-length': '1', ...named('a.txt') })
    expect((await patch(s, location, 0, 'abcd')).status).toBe(204)
    const over = await patch(s, location, 4, 'efg')
    expect(over.status).toBe(413)
    expect(await over.text()).toContain('6 bytes in total')
    // A body of unknown size cannot be accounted before it is read.
    const unknown = await patch(s, location, 4, new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('e')), c.close()) }))
    expect(unknown.status).toBe(411)
    expect((await patch(s, location, 4, 'ef', { 'upload-length': '6' })).status).toBe(204)
    expect(await files(s)).toEqual([{ name: 'a.txt', size_bytes: 6 }])
  })
})

describe('a drop link takes concatenation (parallel uploads)', () => {
  test('partials count as bytes, not files: a one-file link takes a file sent in three parts', async () => {
    const s = await start()
    const link = await createLink(s, { maxFiles: '1' })
    const parts = [await finishedPartial(s, link, 'abc'), await finishedPartial(s, link, 'def'), await finishedPartial(s, link, 'gh')]
    const response = await final(s, link, parts, 'whole.txt')
    expect(response.status).toBe(201)
    expect(await files(s)).toEqual([{ name: 'whole.txt', size_bytes: 8 }])
    // The link has its one file now: another, in parts or whole, is refused.
    const more = await final(s, link, [await finishedPartial(s, link, 'x')], 'more.txt')
    expect(more.status).toBe(403)
    expect((await create(s, link, { 'upload-length': '1', ...named('one.txt') })).status).toBe(403)
  })

  test("partials count against the link's total bytes before their bytes are accepted", async () => {
    const s = await start()
    const link = await createLink(s, { maxTotalSize: '10' })
    await created(s, link, partial(6))
    const over = await create(s, link, partial(5))
    expect(over.status).toBe(413)
    expect(stagingEntries(s)).toHaveLength(1)
  })

  test("a final upload is checked against the link's largest file and its types, and the partials stay for a retry", async () => {
    const s = await start()
    const link = await createLink(s, { maxFileSize: '5', allowedTypes: '.bin' })
    const parts = [await finishedPartial(s, link, 'abc'), await finishedPartial(s, link, 'def')]
    const tooLarge = await final(s, link, parts, 'whole.bin')
    expect(tooLarge.status).toBe(413)
    expect(await tooLarge.text()).toContain('up to 5 bytes')
    const small = [await finishedPartial(s, link, 'ab'), await finishedPartial(s, link, 'cd')]
    const wrongType = await final(s, link, small, 'whole.txt')
    expect(wrongType.status).toBe(415)
    expect(await files(s)).toEqual([])
    expect(stagingEntries(s)).toHaveLength(4)
    // Which could have been taken: the same partials under an allowed name are.
    expect((await final(s, link, small, 'whole.bin')).status).toBe(201)
    expect(await files(s)).toEqual([{ name: 'whole.bin', size_bytes: 4 }])
  })

  test('the link advertises both extensions, and what the link refuses is a refusal of its limits, not of the extension', async () => {
    const s = await start()
    const link = await createLink(s)
    const discovery = await s.fetch(`${link.path}/tus/`, { method: 'OPTIONS', headers: VISITOR })
    expect(discovery.headers.get('tus-extension')).toContain('creation-defer-length')
    expect(discovery.headers.get('tus-extension')).toContain('concatenation')
    expect((await create(s, link, { 'upload-defer-length': '1', ...named('a.txt') })).status).toBe(201)
    expect((await create(s, link, partial(3))).status).toBe(201)
  })
})
