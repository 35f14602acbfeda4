import { Database } from 'bun:sqlite'
import { afterEach, expect } from 'bun:test'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sqliteTest } from '../helpers/backend.ts'
import { sendCutShort } from '../helpers/cut-short.ts'
import { randomData } from '../helpers/data.ts'
import { spawnServer, type ServerProcess } from '../helpers/processes.ts'
import { login, TEST_PASSWORD } from '../helpers/server.ts'

const test = sqliteTest('reads the rows a killed server left in its SQLite file')

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const spawned = (dataDir: string): ServerProcess => {
  const child = spawnServer({ DATA_DIR: dataDir })
  cleanups.push(async () => {
    child.proc.kill('SIGKILL')
    await child.proc.exited
  })
  return child
}

const uploadRows = (dataDir: string) => {
  const db = new Database(join(dataDir, 'dropfold.sqlite'), { readonly: true })
  try {
    return db.query('select state, error from uploads').all()
  } finally {
    db.close()
  }
}

test('a whole file streamed in one request when the server was killed is failed at the next start, and its staged bytes freed', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropfold-whole-crash-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const first = spawned(dataDir)
  const url = await first.started
  const form = new FormData()
  form.append('file', new Blob([randomData(5 * 1024 * 1024)]), 'big.bin')
  const request = new Response(form)
  const contentType = request.headers.get('content-type')!
  const body = new Uint8Array(await request.arrayBuffer())
  const staging = join(dataDir, 'staging')
  // Killed while the file streams to its staging, its request never answered.
  await sendCutShort({ url, cookie: await login(url, TEST_PASSWORD) }, { body, contentType }, 3 * 1024 * 1024, async () => {
    for (let tries = 0; tries < 600 && readdirSync(staging).length === 0; tries++) await Bun.sleep(50)
    first.proc.kill('SIGKILL')
    await first.proc.exited
  })
  expect(readdirSync(staging)).toHaveLength(1)
  expect(uploadRows(dataDir)).toEqual([{ state: 'receiving', error: null }])

  await spawned(dataDir).started
  expect(uploadRows(dataDir)).toEqual([{ state: 'failed', error: 'The upload was interrupted' }])
  expect(readdirSync(staging)).toEqual([])
})
