import { afterAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commitTogether, durable } from '../../src/adapters/sqlite/durable.ts'
import { openDatabase } from '../../src/adapters/sqlite/open.ts'

const dir = mkdtempSync(join(tmpdir(), 'dropfold-together-'))
const db = openDatabase(join(dir, 'test.sqlite'))
const sqlite = db.$client
sqlite.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)')
afterAll(() => {
  sqlite.close()
  rmSync(dir, { recursive: true, force: true })
})

const insert = (text: string) => () => sqlite.query('INSERT INTO notes (text) VALUES (?)').run(text)
const texts = () => (sqlite.query('SELECT text FROM notes ORDER BY id').all() as { text: string }[]).map((r) => r.text)
/** Frames in the WAL since it was last emptied: one per page written per commit. */
const walFrames = () => (sqlite.query('PRAGMA wal_checkpoint(PASSIVE)').get() as { log: number }).log

test('writes asked for at the same moment are committed in one transaction, each page once', async () => {
  sqlite.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((t) => commitTogether(db, insert(t))))
  const together = walFrames()
  sqlite.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  for (const t of ['i', 'j', 'k', 'l', 'm', 'n', 'o', 'p']) await commitTogether(db, insert(t))
  const apart = walFrames()
  expect(texts()).toEqual('abcdefghijklmnop'.split(''))
  // Eight commits write the table's page and the index's page eight times; one writes them once.
  expect(apart).toBeGreaterThanOrEqual(16)
  expect(together).toBeLessThanOrEqual(4)
  await durable(db)
})

test('one write that throws fails alone: the others are committed, its own changes are not', async () => {
  sqlite.exec('DELETE FROM notes')
  const failing = () => {
    sqlite.query('INSERT INTO notes (text) VALUES (?)').run('half-done')
    throw new Error('refused')
  }
  const results = await Promise.allSettled([commitTogether(db, insert('x')), commitTogether(db, failing), commitTogether(db, insert('y')), commitTogether(db, insert('x'))])
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected'])
  expect(String((results[1] as PromiseRejectedResult).reason)).toContain('refused')
  expect(String((results[3] as PromiseRejectedResult).reason)).toContain('UNIQUE')
  expect(texts()).toEqual(['x', 'y'])
  expect(sqlite.inTransaction).toBe(false)
})
