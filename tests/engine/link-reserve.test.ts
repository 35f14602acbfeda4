import { describe, expect, test } from 'bun:test'
import { statfsSync } from 'node:fs'
import { serverPerTest, type TestServer } from '../helpers/server.ts'
import { createLink, one, sendLinkChunk, startClockedServer, stagingEntries, TUS, tusMetadata, visit, type CreatedLink } from '../links/helpers.ts'
import { randomData } from '../helpers/data.ts'


/**
 * What uploads through a drop link may reserve of the disk before sending their bytes, and how
 * long an idle one keeps it: a visitor must not be able to block the server's disk, least of
 * all for the admin, by declaring a huge file and sending nothing.
 */

const setUp = serverPerTest(startClockedServer)

const MIN_FREE = 256 * 1024 ** 2

/** Space free for uploads on the data volume now (what MIN_FREE_SPACE leaves). */
function room(s: TestServer) {
  const stat = statfsSync(s.dataDir)
  return stat.bavail * stat.bsize - MIN_FREE
}

function tusCreate(s: TestServer, path: string, length: number, init: { cookie?: string; admin?: boolean } = {}) {
  const headers = { ...TUS, 'upload-length': String(length), 'upload-metadata': tusMetadata({ filename: 'big.bin' }) }
  return init.admin ? s.fetch('/tus/', { method: 'POST', headers }) : visit(s, `${path}/tus/`, { method: 'POST', headers })
}

const linkUploads = (s: TestServer, link: CreatedLink) =>
  one<{ n: number }>(s, "select count(*) as n from uploads where owner = ? and state = 'receiving'", `link:${link.id}`)!.n

describe('what a drop link may reserve', () => {
  test('a visitor declaring a file as large as the free space is refused (507); the admin can still upload beside a link upload that takes 40%', async () => {
    const s = await setUp({ MAX_FILE_SIZE: '1000T' })
    const link = await createLink(s)

    const attack = await tusCreate(s, link.path, Math.floor(room(s) * 0.95))
    expect(attack.status).toBe(507)
    expect(await attack.text()).toContain("This link's unfinished uploads may reserve")
    expect(linkUploads(s, link)).toBe(0)

    // Within the link's share (half the free space by default) a large file is still taken...
    const large = await tusCreate(s, link.path, Math.floor(room(s) * 0.4))
    expect(large.status).toBe(201)
    // ...and a second one that would take the link past its share is not.
    expect((await tusCreate(s, link.path, Math.floor(room(s) * 0.2))).status).toBe(507)
    expect(linkUploads(s, link)).toBe(1)

    // The admin's upload does not count what the link reserved and has not sent (40% + 80% > 100%).
    const admin = await tusCreate(s, '', Math.floor(room(s) * 0.8), { admin: true })
    expect(admin.status).toBe(201)
  }, 30_000)

  test('LINK_RESERVE_MAX as a size bounds the link whatever the free space; uploads that finish give their share back', async () => {
    const s = await setUp({ LINK_RESERVE_MAX: '200K' })
    const link = await createLink(s)
    const first = randomData(150 * 1024)
    const second = randomData(150 * 1024)
    // Chunk 0 of three: the upload has 64 KiB and reserves the 86 KiB still to come.
    expect((await sendLinkChunk(s, link, 'first', first, 0)).status).toBe(200)
    const refused = await sendLinkChunk(s, link, 'second', second, 0)
    expect(refused.status).toBe(507)
    expect((await refused.json()).error).toContain('may reserve 204800 bytes')
    expect(one(s, "select count(*) as n from uploads where client_key like '%second'")).toEqual({ n: 0 })
    // What has arrived no longer counts as reserved: with the first upload finished, the second fits.
    for (const index of [1, 2]) expect((await sendLinkChunk(s, link, 'first', first, index)).status).toBe(200)
    expect((await sendLinkChunk(s, link, 'second', second, 0)).status).toBe(200)
  }, 30_000)
})

describe('idle uploads through a drop link', () => {
  test('expire after LINK_UPLOAD_TTL_HOURS (24 h by default) without a byte, while the admin’s last UPLOAD_TTL_HOURS', async () => {
    const s = (await setUp()) as Awaited<ReturnType<typeof startClockedServer>>
    const link = await createLink(s)
    const created = await tusCreate(s, link.path, 1000)
    expect(created.status).toBe(201)
    const linkUpload = created.headers.get('location')!
    // tus clients are told the shorter expiry.
    const expires = Date.parse(created.headers.get('upload-expires')!)
    expect(Math.abs(expires - (s.now() + 24 * 3_600_000))).toBeLessThan(5_000)
    const admin = await tusCreate(s, '', 1000, { admin: true })
    expect(admin.status).toBe(201)
    expect(stagingEntries(s)).toHaveLength(2)

    // A byte keeps it alive: idle means nothing received for that long.
    s.advance(20 * 3_600_000)
    const patch = (path: string, offset: number, fetcher: typeof visit = visit) =>
      fetcher(s, path, { method: 'PATCH', headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }, body: new Uint8Array(1) })
    expect((await patch(linkUpload, 0)).status).toBe(204)
    s.advance(20 * 3_600_000)
    expect(await s.server.engine.expireStale()).toBe(0)

    s.advance(5 * 3_600_000)
    expect(await s.server.engine.expireStale()).toBe(1)
    expect((await visit(s, linkUpload, { method: 'HEAD', headers: TUS })).status).toBe(410)
    expect(stagingEntries(s)).toHaveLength(1)
    // The admin's upload, idle for 45 hours, is still there.
    expect((await s.fetch(admin.headers.get('location')!, { method: 'HEAD', headers: TUS })).status).toBe(200)
  }, 30_000)
})
