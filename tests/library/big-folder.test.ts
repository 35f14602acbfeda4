import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import type { Database } from 'bun:sqlite'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { fileRowCount, listedNames } from './helpers.ts'
import { sqliteTest } from '../helpers/backend.ts'


const COUNT = 100_000
const SHA = 'ab'.repeat(32)
const BASE_TIME = Date.UTC(2024, 0, 1)

const nameOf = (i: number) => `file-${String(i).padStart(6, '0')}.bin`
/** Sizes in an order unrelated to names and ids. */
const sizeOf = (i: number) => (i * 7919) % 1_000_003
/** Upload times in an order unrelated to ids (and some equal, to exercise the id tie-break). */
const timeOf = (i: number) => BASE_TIME + ((i * 4099) % 50_000) * 1000

let server: TestServer
beforeEach(async () => {
  server = await startTestServer()
  // In one statement, the same rows as nameOf, sizeOf and timeOf give (the dialects differ only in padding a number).
  const padded = server.server.backend === 'sqlite' ? "printf('%06d', i)" : "lpad(i::text, 6, '0')"
  server.sql.exec(`
    insert into blobs (sha256, size_bytes, ref_count, created_at) values ('${SHA}', 1, ${COUNT}, ${BASE_TIME});
    insert into files (folder_id, name, size_bytes, sha256, mime_type, created_at)
      with recursive n(i) as (select 1 union all select i + 1 from n where i < ${COUNT})
      select 1, 'file-' || ${padded} || '.bin', (i * 7919) % 1000003, '${SHA}', 'application/octet-stream', ${BASE_TIME} + ((i * 4099) % 50000) * 1000 from n`)
})
afterEach(async () => {
  await server.stop()
})

async function view(query: string) {
  const response = await server.fetch(`/folders/1/view?${query}`)
  expect(response.status).toBe(200)
  return response.text()
}

const pager = (body: string) => /<span>(Page \d+ of \d+ · \d+ files)<\/span>/.exec(body)?.[1]
const sizesShown = (body: string) => [...body.matchAll(/<td class="num" title="(\d+) bytes">/g)].map((m) => Number(m[1]))

/** JS model of the listing: ids 1..COUNT sorted like the server should. */
function expectedNames(compare: (a: number, b: number) => number, offset: number, filter = '') {
  const ids = Array.from({ length: COUNT }, (_, k) => k + 1).filter((i) => nameOf(i).includes(filter))
  return ids.sort(compare).slice(offset, offset + 100).map(nameOf)
}

describe('a folder with 100,000 files', () => {
  test('page 1 (newest first) shows exactly 100 rows and "Page 1 of 1000"', async () => {
    const body = await view('page=1')
    expect(fileRowCount(body)).toBe(100)
    expect((body.match(/<tr>/g) ?? []).length).toBe(101)
    expect(pager(body)).toBe('Page 1 of 1000 · 100000 files')
    expect(listedNames(body)).toEqual(expectedNames((a, b) => timeOf(b) - timeOf(a) || b - a, 0))
    expect(body).toContain('hx-get="/folders/1/view?sort=date&amp;dir=desc&amp;page=2"')
    expect(body).not.toContain('← Previous')
  })

  test('sorted by name, page 500: exactly 100 rows, the right ones, "Page 500 of 1000", links both ways', async () => {
    const body = await view('sort=name&dir=asc&page=500')
    expect(fileRowCount(body)).toBe(100)
    expect(pager(body)).toBe('Page 500 of 1000 · 100000 files')
    const names = listedNames(body)
    expect(names[0]).toBe(nameOf(49_901))
    expect(names[99]).toBe(nameOf(50_000))
    expect(names).toEqual(expectedNames((a, b) => a - b, 49_900))
    expect(body).toContain('hx-get="/folders/1/view?sort=name&amp;dir=asc&amp;page=499"')
    expect(body).toContain('hx-get="/folders/1/view?sort=name&amp;dir=asc&amp;page=501"')
    // The bulk form returns to this same page.
    expect(body).toContain('<input type="hidden" name="return" value="sort=name&amp;dir=asc&amp;page=500">')
    // The full page says the same.
    const page = await (await server.fetch('/folders/1?sort=name&dir=asc&page=500')).text()
    expect(fileRowCount(page)).toBe(100)
    expect(page).toContain('Page 500 of 1000')
  })

  test('sorted by size (largest first): exactly 100 rows in size order', async () => {
    const body = await view('sort=size')
    expect(fileRowCount(body)).toBe(100)
    expect(pager(body)).toBe('Page 1 of 1000 · 100000 files')
    const sizes = sizesShown(body)
    expect(sizes).toHaveLength(100)
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a))
    expect(listedNames(body)).toEqual(expectedNames((a, b) => sizeOf(b) - sizeOf(a) || b - a, 0))
    const last = await view('sort=size&dir=asc&page=1000')
    expect(fileRowCount(last)).toBe(100)
    expect(pager(last)).toBe('Page 1000 of 1000 · 100000 files')
    expect(listedNames(last)).toEqual(expectedNames((a, b) => sizeOf(a) - sizeOf(b) || a - b, 99_900))
  })

  test('a filter counts and pages only the matches', async () => {
    const body = await view('sort=name&q=-099')
    expect(fileRowCount(body)).toBe(100)
    expect(pager(body)).toBe('Page 1 of 10 · 1000 files')
    expect(listedNames(body)).toEqual(expectedNames((a, b) => a - b, 0, '-099'))
    const third = await view('sort=name&q=-099&page=3')
    expect(fileRowCount(third)).toBe(100)
    expect(listedNames(third)[0]).toBe(nameOf(99_200))
    expect(third).toContain('hx-get="/folders/1/view?sort=name&amp;dir=asc&amp;q=-099&amp;page=4"')
    // Exactly one page of matches: no pager, a count.
    const one = await view('q=-0999')
    expect(fileRowCount(one)).toBe(100)
    expect(pager(one)).toBeUndefined()
    expect(one).toContain('<p class="count">100 files</p>')
  })

  test('a page past the end shows the last page; nonsense pages show the first', async () => {
    expect(pager(await view('sort=name&page=5000'))).toBe('Page 1000 of 1000 · 100000 files')
    for (const page of ['0', '-1', 'abc', '']) expect(pager(await view(`sort=name&page=${page}`))).toBe('Page 1 of 1000 · 100000 files')
  })
})

describe('query plans', () => {
  const test = sqliteTest("reads SQLite's query plans")
  function plan(sqlite: Database, query: string, ...params: (string | number)[]) {
    return (sqlite.query(`explain query plan ${query}`).all(...params) as { detail: string }[]).map((r) => r.detail)
  }

  const shape = (order: string) =>
    `select id, folder_id, name, size_bytes, sha256, mime_type, upload_id, created_at, deleted_at from files where folder_id = ? and deleted_at is null order by ${order} limit 100 offset ?`

  test.each([
    ['name asc', 'name asc, id asc'],
    ['name desc', 'name desc, id desc'],
    ['date desc', 'created_at desc, id desc'],
    ['date asc', 'created_at asc, id asc'],
    ['size desc', 'size_bytes desc, id desc'],
  ])('a page sorted by %s reads an index in order (no temporary B-tree for ORDER BY)', (_, order) => {
    const steps = plan(server.server.sqlite.$client, shape(order), 1, 49_900)
    expect(steps.join('\n')).toMatch(/USING (COVERING )?INDEX files_folder_/)
    expect(steps.join('\n')).not.toContain('USE TEMP B-TREE FOR ORDER BY')
    expect(steps.join('\n')).not.toMatch(/^SCAN files$/m)
  })

  test('the SQL the server actually runs for a page uses an index for every sort', async () => {
    const sqlite = server.server.sqlite.$client
    const captured = new Set<string>()
    const original = sqlite.prepare.bind(sqlite)
    const spy = (query: string, ...rest: unknown[]) => {
      if (/from "files"/.test(query) && /order by/.test(query)) captured.add(query)
      return (original as (...args: unknown[]) => ReturnType<Database['prepare']>)(query, ...rest)
    }
    ;(sqlite as unknown as { prepare: typeof spy }).prepare = spy
    try {
      for (const query of ['sort=name&dir=asc&page=500', 'sort=name&dir=desc', 'sort=date&dir=desc&page=7', 'sort=date&dir=asc', 'sort=size&dir=desc']) await view(query)
    } finally {
      delete (sqlite as unknown as { prepare?: unknown }).prepare
    }
    expect(captured.size).toBeGreaterThanOrEqual(5)
    for (const query of captured) {
      // Bind folder 1 and placeholders for limit and offset.
      const params = [...query.matchAll(/\?/g)].map((_, i) => (i === 0 ? 1 : 100))
      const steps = plan(sqlite, query, ...params).join('\n')
      expect(steps).toMatch(/USING (COVERING )?INDEX files_folder_/)
      expect(steps).not.toContain('USE TEMP B-TREE FOR ORDER BY')
    }
  })
})
