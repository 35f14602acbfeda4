import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { makeFolder, post, uploadFile } from '../library/helpers.ts'

/** Every way the admin reaches a stored file's bytes or page. */
const ways = (id: number) => [
  ['GET', `/files/${id}`],
  ['GET', `/files/${id}/download`],
  ['HEAD', `/files/${id}/download`],
  ['GET', `/files/${id}/preview`],
  ['GET', `/files/${id}/preview/picture.png`],
]

describe('a file in the trash is reached only from the Trash page', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer()
  })
  afterAll(() => t.stop())

  const statuses = async (id: number) => {
    const out: string[] = []
    for (const [method, path] of ways(id)) out.push(`${method} ${path} ${(await t.fetch(path!, { method })).status}`)
    return out
  }
  const all = (id: number, status: number) => ways(id).map(([method, path]) => `${method} ${path} ${status}`)

  test('its page, download and preview are 404 while it is there, and back once restored', async () => {
    const file = await uploadFile(t, 'picture.png', 'not really a png')
    expect(await statuses(file.id)).toEqual(all(file.id, 200))
    expect((await post(t, `/files/${file.id}/delete`)).status).toBe(303)
    expect(await statuses(file.id)).toEqual(all(file.id, 404))
    expect(await (await t.fetch('/trash')).text()).not.toContain(`/files/${file.id}/download`)
    expect((await post(t, `/trash/files/${file.id}/restore`)).status).toBe(303)
    expect(await statuses(file.id)).toEqual(all(file.id, 200))
  })

  test('the same for a file whose folder is in the trash', async () => {
    const folder = await makeFolder(t, 1, 'old')
    const file = await uploadFile(t, 'picture.png', 'another one', folder)
    expect(await statuses(file.id)).toEqual(all(file.id, 200))
    expect((await post(t, `/folders/${folder}/delete`)).status).toBe(303)
    expect(await statuses(file.id)).toEqual(all(file.id, 404))
  })
})
