import { expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { drizzle } from 'drizzle-orm/bun-sqlite'
import { migrate } from 'drizzle-orm/bun-sqlite/migrator'
import { loadConfig } from '../../src/config.ts'
import { startServer } from '../../src/server.ts'
import { login, TEST_PASSWORD } from '../helpers/server.ts'

/**
 * The migration that stops storing drop-link tokens: a database made by the previous version
 * (tokens in clear text) keeps its links, their uploads and files, and the links keep working.
 */

const MIGRATIONS = join(import.meta.dir, '../../drizzle')
const BEFORE = '0004_tokens_attempts'

/** A data directory as the version before this migration left it: one link with uploads and a file. */
function previousVersionData(token: string, content: Uint8Array) {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropfold-test-'))
  const oldMigrations = join(dataDir, 'old-migrations')
  cpSync(MIGRATIONS, oldMigrations, { recursive: true })
  const journalPath = join(oldMigrations, 'meta/_journal.json')
  const journal = JSON.parse(readFileSync(journalPath, 'utf8'))
  const index = journal.entries.findIndex((e: { tag: string }) => e.tag === BEFORE)
  expect(index).toBeGreaterThan(0)
  journal.entries = journal.entries.slice(0, index)
  writeFileSync(journalPath, JSON.stringify(journal))

  const sqlite = new Database(join(dataDir, 'dropfold.sqlite'), { create: true })
  migrate(drizzle({ client: sqlite }), { migrationsFolder: oldMigrations })
  const sha = createHash('sha256').update(content).digest('hex')
  const now = Date.now()
  sqlite.exec('PRAGMA foreign_keys = ON')
  sqlite.query('insert into folders (id, parent_id, name, created_at) values (1, null, ?, ?), (2, 1, ?, ?)').run('', now, 'Inbox', now)
  sqlite
    .query('insert into links (id, token, token_hash, folder_id, label, created_at) values (7, ?, ?, 2, ?, ?)')
    .run(token, createHash('sha256').update(token).digest('hex'), 'Old link', now)
  sqlite.query('insert into blobs (sha256, size_bytes, ref_count, created_at) values (?, ?, 1, ?)').run(sha, content.length, now)
  sqlite.query("insert into files (id, folder_id, name, size_bytes, sha256, mime_type, upload_id, created_at) values (3, 2, 'old.bin', ?, ?, 'application/octet-stream', 'up-1', ?)").run(content.length, sha, now)
  sqlite
    .query(
      `insert into uploads (id, protocol, owner, client_key, folder_id, file_name, mime_type, total_bytes, chunk_bytes, chunk_count, received_chunks, received_bytes, state, sha256, file_id, created_at, updated_at, completed_at)
       values ('up-1', 'dropzone', 'link:7', 'k1', 2, 'old.bin', 'application/octet-stream', ?, ?, 1, 1, ?, 'complete', ?, 3, ?, ?, ?)`,
    )
    .run(content.length, content.length, content.length, sha, now, now, now)
  sqlite.close()
  mkdirSync(join(dataDir, 'blobs', sha.slice(0, 2)), { recursive: true })
  writeFileSync(join(dataDir, 'blobs', sha.slice(0, 2), sha), content)
  rmSync(oldMigrations, { recursive: true })
  return dataDir
}

test('links made before tokens were hashed only keep working, with their uploads and files; the token column is gone', async () => {
  const token = randomBytes(24).toString('base64url')
  const content = randomBytes(5000)
  const dataDir = previousVersionData(token, content)
  const server = await startServer(loadConfig({ PORT: '0', DATA_DIR: dataDir, ADMIN_PASSWORD: TEST_PASSWORD }), { log: () => {} })
  try {
    const db = server.sqlite.$client
    const columns = (db.query('pragma table_info(links)').all() as { name: string }[]).map((c) => c.name)
    expect(columns).not.toContain('token')
    expect(db.query('select id, label, token_hint from links').all()).toEqual([{ id: 7, label: 'Old link', token_hint: token.slice(-4) }])
    expect(JSON.stringify(db.query('select * from links').all())).not.toContain(token)
    expect(db.query('select id, state, file_id from uploads').all()).toEqual([{ id: 'up-1', state: 'complete', file_id: 3 }])
    expect(db.query('select id, name from files').all()).toEqual([{ id: 3, name: 'old.bin' }])
    expect(db.query('pragma foreign_keys').get()).toEqual({ foreign_keys: 1 })
    // The old address still opens the link, and the file downloads whole.
    expect((await fetch(`${server.url}/d/${token}`)).status).toBe(200)
    const cookie = await login(server.url, TEST_PASSWORD)
    const download = await fetch(`${server.url}/files/3/download`, { headers: { cookie } })
    expect(download.status).toBe(200)
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(new Uint8Array(content))
    const list = await (await fetch(`${server.url}/links`, { headers: { cookie } })).text()
    expect(list).toContain(`/d/…${token.slice(-4)}`)
    expect(list).toContain('1 file')
  } finally {
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}, 60_000)
