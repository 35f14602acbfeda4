import { Database } from 'bun:sqlite'
import { afterEach, expect, test } from 'bun:test'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { randomData, sha256 } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

/**
 * Found by the crash test (2 of 120 iterations on a loaded machine): a tus PATCH records its
 * bytes in one commit and claims the finalisation in the next. A server killed between the two
 * leaves the upload `receiving` with every byte recorded; HEAD
 * then answers Upload-Offset = Upload-Length, so a tus client considers it done and sends
 * nothing more, and the file never appears.
 * Start-up finalises such an upload.
 */

let server: TestServer
afterEach(async () => {
  await server.stop()
})

const TUS = { 'tus-resumable': '1.0.0' }

test('a tus upload whose last bytes were recorded just before a crash is finalised at the next start', async () => {
  server = await startTestServer()
  const data = randomData(1000)
  const created = await server.fetch('/tus/', {
    method: 'POST',
    headers: { ...TUS, 'upload-length': '1000', 'upload-metadata': `filename ${Buffer.from('last-bytes.bin').toString('base64')}` },
  })
  expect(created.status).toBe(201)
  const path = new URL(created.headers.get('location')!, server.url).pathname
  const id = path.split('/').pop()!
  const patched = await server.fetch(path, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
    body: data.subarray(0, 999) as Uint8Array<ArrayBuffer>,
  })
  expect(patched.status).toBe(204)

  // The state the crash left: the last byte on disk and recorded, the finalisation not claimed.
  await server.restart(() => {
    const staged = openSync(join(server.dataDir, 'staging', id), 'r+')
    writeSync(staged, data, 999, 1, 999)
    closeSync(staged)
    const db = new Database(join(server.dataDir, 'dropfold.sqlite'))
    db.query('update uploads set received_bytes = 1000 where id = ?').run(id)
    db.close()
  })

  const head = await server.fetch(path, { method: 'HEAD', headers: TUS })
  expect([head.status, head.headers.get('upload-offset'), head.headers.get('upload-length')]).toEqual([200, '1000', '1000'])
  // A tus client stops here; the file must be there.
  const upload = server.server.sqlite.$client.query('select u.state, f.sha256 from uploads u left join files f on f.id = u.file_id where u.id = ?').get(id)
  expect(upload).toEqual({ state: 'complete', sha256: sha256(data) })
})
