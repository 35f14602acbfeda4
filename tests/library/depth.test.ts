import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { expectHtmxError, makeFolder, post, row, snapshot, uploadFile } from './helpers.ts'


let server: TestServer
beforeEach(async () => {
  server = await startTestServer()
})
afterEach(async () => {
  await server.stop()
})

const LIMIT = 64

/** A chain of folders below `parentId` written straight into the database (as data from before the limit could be); returns the deepest. */
function chainInDatabase(parentId: number, length: number, prefix = 'level'): number {
  const base = server.sql.get<{ id: number }>('select max(id) as id from folders')!.id
  // One statement, ids given: each folder's parent is the one made just before it.
  server.sql.run(
    `insert into folders (id, parent_id, name, created_at)
     with recursive level(i) as (select 1 union all select i + 1 from level where i < ?)
     select ? + i, case when i = 1 then ? else ? + i - 1 end, ? || ' ' || i, 0 from level`,
    length, base, parentId, base, prefix,
  )
  // PostgreSQL hands out ids from a sequence, which the ids given here did not move.
  if (server.server.backend === 'postgres') server.sql.get("select setval(pg_get_serial_sequence('folders', 'id'), (select max(id) from folders))")
  return base + length
}

async function chainOverHttp(parentId: number, length: number, prefix: string): Promise<number> {
  let id = parentId
  for (let i = 0; i < length; i++) id = await makeFolder(server, id, `${prefix} ${i + 1}`)
  return id
}

const pageBytes = async (path: string) => {
  const response = await server.fetch(path)
  expect(response.status).toBe(200)
  return (await response.arrayBuffer()).byteLength
}

describe('folders are at most 64 levels deep', () => {
  test('a folder at level 64 can be made; one at level 65 is refused (400) and nothing changes', async () => {
    const deepest = await chainOverHttp(1, LIMIT, 'd')
    const before = snapshot(server)
    await expectHtmxError(
      await post(server, `/folders/${deepest}/folders`, { name: 'one too many' }, { htmx: true }),
      400,
      'Folders can be at most 64 levels deep; &quot;one too many&quot; would be at level 65',
    )
    expect(snapshot(server)).toEqual(before)
  })

  test('moving a folder so that something inside it would be deeper is refused (400)', async () => {
    const level60 = await chainOverHttp(1, 60, 'd')
    const branch = await makeFolder(server, 1, 'branch')
    // branch and three levels inside it: moved into level 60 it would reach 64, into level 61 65.
    const inside = await chainOverHttp(branch, 3, 'b')
    const level61 = await makeFolder(server, level60, 'd 61')
    const before = snapshot(server)
    await expectHtmxError(
      await post(server, `/folders/${branch}/move`, { target: level61 }, { htmx: true }),
      400,
      'Folders can be at most 64 levels deep; moving &quot;branch&quot; there would put folders at level 65',
    )
    expect(snapshot(server)).toEqual(before)
    // The folder page offers level 60 as a target but not level 61.
    const page = await (await server.fetch(`/folders/${branch}`)).text()
    const moveSelect = /<select name="target" aria-label="Move folder to">([\s\S]*?)<\/select>/.exec(page)![1]!
    expect(moveSelect).toContain(`value="${level60}"`)
    expect(moveSelect).not.toContain(`value="${level61}"`)

    expect((await post(server, `/folders/${branch}/move`, { target: level60 })).status).toBe(303)
    expect(row<{ parent_id: number }>(server, 'select parent_id from folders where id = ?', branch)!.parent_id).toBe(level60)
    expect(inside).toBeGreaterThan(0)
  })

  test('what is inside a folder in the trash counts too, since it can be restored there', async () => {
    const level62 = await chainOverHttp(1, 62, 'd')
    const branch = await makeFolder(server, 1, 'branch')
    const trashed = await chainOverHttp(branch, 2, 'b')
    expect((await post(server, `/folders/${trashed}/delete`)).status).toBe(303)
    await expectHtmxError(await post(server, `/folders/${branch}/move`, { target: level62 }, { htmx: true }), 400, 'would put folders at level 65')
  })

  test('a folder already deeper than the limit can be opened, but nothing more is made inside it', async () => {
    const deepest = chainInDatabase(1, LIMIT + 10)
    expect((await server.fetch(`/folders/${deepest}`)).status).toBe(200)
    await expectHtmxError(await post(server, `/folders/${deepest}/folders`, { name: 'x' }, { htmx: true }), 400, 'would be at level 75')
  })
})

describe('pages grow linearly with the depth of folders', () => {
  test('a deep folder’s breadcrumbs show Home, the first folder, …, and the last four', async () => {
    const deepest = chainInDatabase(1, 100)
    const page = await (await server.fetch(`/folders/${deepest}`)).text()
    const crumbs = /<nav class="crumbs"[^>]*>([\s\S]*?)<\/nav>/.exec(page)![1]!.replace(/<[^>]+>/g, '')
    expect(crumbs).toBe('Home/level 1/…/level 97/level 98/level 99/level 100')
  })

  test('folder page and /links at depth 500, 1,000 and 1,500: under 1 MB, and twice the depth about twice the size', async () => {
    const sizes: Record<number, { folder: number; links: number }> = {}
    let deepest = 1
    for (const depth of [500, 1000, 1500]) {
      deepest = chainInDatabase(deepest, 500, `at ${depth}`)
      // A file, so the page offers "move selected files to" every folder; a link, so /links shows the path.
      await uploadFile(server, `file at ${depth}.txt`, 'x', deepest)
      expect((await post(server, '/links', { folder: deepest, label: `depth ${depth}` })).status).toBe(303)
      sizes[depth] = { folder: await pageBytes(`/folders/${deepest}`), links: await pageBytes('/links') }
    }
    for (const page of ['folder', 'links'] as const) {
      expect(sizes[1500]![page]).toBeLessThan(1_000_000)
      expect(sizes[1000]![page] / sizes[500]![page]).toBeLessThan(2.5)
      expect(sizes[1500]![page] / sizes[500]![page]).toBeLessThan(3.5)
    }
    // The other pages that list folder paths.
    const upper = await (await server.fetch(`/folders/${deepest}`)).text()
    expect(upper).toContain('>/at 500 1/at 500 2/…/at 1500 496/at 1500 497/at 1500 498/at 1500 499</option>')
    expect(await pageBytes('/trash')).toBeLessThan(1_000_000)
    expect(await pageBytes('/uploads')).toBeLessThan(1_000_000)
  })
})
