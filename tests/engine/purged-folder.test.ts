import { describe, expect, test } from 'bun:test'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { serverPerTest } from '../helpers/server.ts'
import { adminPost, CHUNK, createLink, makeFolder, one, sendLinkChunk, stagingEntries, startLinkServer } from '../links/helpers.ts'


/** Uploads whose target folder is deleted for good (trash emptied) while they are under way. */

const setUp = serverPerTest(startLinkServer)

describe('an upload whose folder was purged', () => {
  test('the admin’s finishes into the home folder, though the next chunks still name the purged folder', async () => {
    const s = await setUp()
    const folder = await makeFolder(s, 1, 'Gone soon')
    const data = randomData(3 * CHUNK + 10)
    const send = (index: number) => sendChunk(s, chunkFields('purged', data.length, CHUNK, index), chunkOf(data, CHUNK, index), { fileName: 'kept.bin', folder })
    expect((await send(0)).status).toBe(200)

    expect((await adminPost(s, `/folders/${folder}/delete`)).status).toBe(303)
    expect((await adminPost(s, '/trash/empty')).status).toBe(303)
    expect(one(s, 'select count(*) as n from folders where id = ?', folder)).toEqual({ n: 0 })

    for (const index of [1, 2, 3]) {
      const response = await send(index)
      expect({ index, status: response.status }).toEqual({ index, status: 200 })
      if (index === 3) expect((await response.json()).file).toMatchObject({ folderId: 1, name: 'kept.bin', sha256: sha256(data) })
    }
    expect(stagingEntries(s)).toEqual([])
  }, 30_000)

  test('a drop link’s is cancelled with a reason and its staged bytes are freed; the link is gone with its folder', async () => {
    const s = await setUp()
    const folder = await makeFolder(s, 1, 'Inbox')
    const link = await createLink(s, { folder: String(folder) })
    const data = randomData(3 * CHUNK + 10)
    expect((await sendLinkChunk(s, link, 'visitor', data, 0)).status).toBe(200)
    expect(stagingEntries(s)).toHaveLength(1)

    expect((await adminPost(s, `/folders/${folder}/delete`)).status).toBe(303)
    // In the trash the link takes nothing more (410), and the upload is still there to restore.
    expect((await sendLinkChunk(s, link, 'visitor', data, 1)).status).toBe(410)
    expect((await adminPost(s, '/trash/empty')).status).toBe(303)

    expect(one(s, 'select state, error from uploads where owner = ?', `link:${link.id}`)).toEqual({ state: 'cancelled', error: 'The folder of this drop link was deleted' })
    expect(stagingEntries(s)).toEqual([])
    expect((await sendLinkChunk(s, link, 'visitor', data, 1)).status).toBe(404)
    expect(one(s, 'select count(*) as n from files')).toEqual({ n: 0 })
  }, 30_000)
})
