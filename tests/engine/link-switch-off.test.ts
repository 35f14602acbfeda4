import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { serverPerTest, type TestServer } from '../helpers/server.ts'
import { adminPost, createLink, makeFolder, one, startLinkServer, TUS, tusMetadata, visit, type CreatedLink } from '../links/helpers.ts'


/**
 * Switching a drop link off (or its expiry, deletion, or its folder going to the trash) stops
 * its uploads already streaming in, within about a second: the request ends with an error and
 * nothing of it is stored.
 */

const setUp = serverPerTest(startLinkServer)

const PIECE = 16 * 1024

/** Set once a test has its answer: the slow clients stop sending. */
let finished = new AbortController()
afterEach(() => finished.abort())
beforeEach(() => (finished = new AbortController()))

/**
 * A body that a slow client trickles: `prefix`, then PIECE bytes every 50 ms until the test has
 * finished (or a minute has passed, so the test stays bounded).
 */
function trickle(prefix: Uint8Array = new Uint8Array()) {
  const until = Date.now() + 60_000
  const { signal } = finished
  let sentPrefix = false
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentPrefix) {
        sentPrefix = true
        if (prefix.length) return controller.enqueue(prefix)
      }
      if (Date.now() > until || signal.aborted) return controller.close()
      await Bun.sleep(50)
      controller.enqueue(new Uint8Array(PIECE).fill(7))
    },
  })
}

/** Resolves to the status of the response, or to 'still streaming' if there is none within `ms`. */
async function within(response: Promise<Response>, ms: number): Promise<number | 'still streaming'> {
  let timer: Timer | undefined
  const late = new Promise<'still streaming'>((resolve) => (timer = setTimeout(() => resolve('still streaming'), ms)))
  try {
    return await Promise.race([response.then((r) => r.status).catch(() => 0), late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Asks again until `probe` answers 423 (the upload is being written by the streaming request):
 * true then; false if the streaming request ended first (a probe held the upload when it came, so
 * it was the one refused; a slower locker, such as PostgreSQL's, makes that likelier).
 */
async function untilBusy(probe: () => Promise<Response>, streamingEnded: () => boolean) {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    const response = await probe()
    await response.arrayBuffer()
    if (response.status === 423) return true
    if (streamingEnded()) return false
  }
  throw new Error('the streaming request never reached the upload')
}

async function tusPatchUnderway(s: TestServer, link: CreatedLink) {
  const created = await visit(s, `${link.path}/tus/`, { method: 'POST', headers: { ...TUS, 'upload-length': String(64 * 1024 ** 2), 'upload-metadata': tusMetadata({ filename: 'slow.bin' }) } })
  expect(created.status).toBe(201)
  const location = created.headers.get('location')!
  const patch = (body: BodyInit) =>
    visit(s, location, { method: 'PATCH', headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body })
  for (let attempt = 0; attempt < 5; attempt++) {
    let ended = false
    const streaming = patch(trickle())
    void streaming.finally(() => (ended = true)).catch(() => {})
    // Wrapped: an async function returning the promise itself would wait for the response.
    if (await untilBusy(() => patch(new Uint8Array()), () => ended)) return { streaming }
  }
  throw new Error('the streaming request was refused every time')
}

const stored = (s: TestServer) => one<{ n: number }>(s, 'select count(*) as n from files')!.n
const linkUpload = (s: TestServer, link: CreatedLink) =>
  one<{ state: string; received_bytes: number; received_chunks: number }>(s, 'select state, received_bytes, received_chunks from uploads where owner = ?', `link:${link.id}`)

describe('a drop link switched off while an upload streams in', () => {
  test('a tus PATCH under way ends with 410 within a second or two, and nothing of it is kept', async () => {
    const s = await setUp()
    const link = await createLink(s)
    const { streaming } = await tusPatchUnderway(s, link)
    expect(await within(streaming, 1000)).toBe('still streaming')

    expect((await adminPost(s, `/links/${link.id}/disable`)).status).toBe(303)
    expect(await within(streaming, 5000)).toBe(410)
    expect(linkUpload(s, link)).toEqual({ state: 'receiving', received_bytes: 0, received_chunks: 0 })
    expect(stored(s)).toBe(0)
  }, 60_000)

  test('a Dropzone chunk under way ends with 410 too, and is not recorded', async () => {
    const s = await setUp()
    const link = await createLink(s)
    const boundary = 'dropfold-test-boundary'
    const chunk = 8 * 1024 ** 2
    const fields = { dzuuid: 'slow', dzchunkindex: 0, dztotalfilesize: 2 * chunk, dzchunksize: chunk, dztotalchunkcount: 2, dzchunkbyteoffset: 0 }
    const head =
      Object.entries(fields).map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join('') +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`
    const send = (body: BodyInit) =>
      visit(s, `${link.path}/upload`, { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, accept: 'application/json' } })
    const streaming = send(trickle(new TextEncoder().encode(head)))
    // The chunk is under way once its upload exists: the body trickles in for a minute.
    const deadline = Date.now() + 20_000
    while (!linkUpload(s, link) && Date.now() < deadline) await Bun.sleep(20)
    expect(linkUpload(s, link)).toMatchObject({ state: 'receiving', received_chunks: 0 })

    expect((await adminPost(s, `/links/${link.id}/disable`)).status).toBe(303)
    expect(await within(streaming, 5000)).toBe(410)
    // A refused first chunk leaves nothing behind: not even the upload it opened.
    expect(linkUpload(s, link)).toBeNull()
    expect(stored(s)).toBe(0)
  }, 60_000)

  test('deleting the link, or trashing its folder, stops a PATCH under way the same way', async () => {
    const s = await setUp()
    const deleted = await createLink(s)
    const { streaming: first } = await tusPatchUnderway(s, deleted)
    expect((await adminPost(s, `/links/${deleted.id}/delete`)).status).toBe(303)
    expect(await within(first, 5000)).toBe(404)

    const folder = await makeFolder(s, 1, 'Inbox')
    const trashed = await createLink(s, { folder: String(folder) })
    const { streaming: second } = await tusPatchUnderway(s, trashed)
    expect((await adminPost(s, `/folders/${folder}/delete`)).status).toBe(303)
    expect(await within(second, 5000)).toBe(410)
    expect(stored(s)).toBe(0)
  }, 60_000)
})
