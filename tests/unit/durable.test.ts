import { afterAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { durable, routeWalSyncs } from '../../src/adapters/sqlite/durable.ts'
import { openDatabase } from '../../src/adapters/sqlite/open.ts'
import { syncPath } from '../../src/platform/sync-path.ts'

const dir = mkdtempSync(join(tmpdir(), 'dropfold-durable-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

test('a commit made before the first durable() call on a connection is synced by that call', async () => {
  // At start-up, recovery commits (an upload failed, say) and then removes bytes once durable()
  // says the commit is on disk: it must not take the commits before its first call as synced.
  const db = openDatabase(join(dir, 'first.sqlite'))
  try {
    let syncs = 0
    routeWalSyncs(db, async (walPath) => {
      syncs++
      await syncPath(walPath, 'data')
    })
    db.$client.exec('CREATE TABLE notes (text TEXT)')
    db.$client.query('INSERT INTO notes (text) VALUES (?)').run('committed')
    await durable(db)
    expect(syncs).toBe(1)
    // Nothing new since: nothing to sync.
    await durable(db)
    expect(syncs).toBe(1)
  } finally {
    db.$client.close()
  }
})
