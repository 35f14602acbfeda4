import { expect, test } from 'bun:test'
import { join } from 'node:path'
import { chunkFields, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { login, serverPerTest, startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'

const start = serverPerTest(startTestServer)

/**
 * Another program (sqlite3, a backup tool) holding the database's write lock, as a process of its
 * own: it takes `BEGIN IMMEDIATE`, says so, and commits when told to on stdin.
 */
async function holdWriteLock(server: TestServer) {
  const script = `
    const { Database } = require('bun:sqlite')
    const db = new Database(process.argv[1])
    db.exec('BEGIN IMMEDIATE')
    console.log('locked')
    for await (const _ of console) break
    db.exec('COMMIT')
    db.close()
  `
  const holder = Bun.spawn([process.execPath, '-e', script, join(server.dataDir, 'dropfold.sqlite')], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' })
  const reader = holder.stdout.getReader()
  const said = new TextDecoder().decode((await reader.read()).value)
  expect(said).toContain('locked')
  return {
    async release() {
      holder.stdin.write('release\n')
      holder.stdin.end()
      expect(await holder.exited).toBe(0)
    },
  }
}

const timed = async <T>(work: () => Promise<T>) => {
  const began = performance.now()
  const result = await work()
  return { result, ms: performance.now() - began }
}

test('while another process holds the write lock, an upload is answered 503 with Retry-After at once, /healthz answers, and the upload succeeds after', async () => {
  const server = await start()
  const data = randomData(50_000)
  const upload = () => sendChunk(server, chunkFields('busy', data.length, data.length, 0), data, { fileName: 'busy.bin' })
  const lock = await holdWriteLock(server)
  try {
    const [refused, health] = await Promise.all([timed(upload), timed(() => fetch(server.url + '/healthz'))])
    expect(refused.result.status).toBe(503)
    expect(refused.result.headers.get('retry-after')).toBe('1')
    expect((await refused.result.json()).error).toMatch(/busy/)
    expect(health.result.status).toBe(200)
    // A statement used to wait 5 s for the lock, and the whole server with it. Generous bounds
    // for a slow machine, well under that.
    expect(refused.ms).toBeLessThan(2500)
    expect(health.ms).toBeLessThan(2500)
    // Nothing half-done is left: the status of the refused upload is unknown.
    expect((await server.fetch('/upload/busy')).status).toBe(404)
  } finally {
    await lock.release()
  }
  const stored = await upload()
  expect(stored.status).toBe(200)
  const body = await stored.json()
  expect(body.file.sha256).toBe(sha256(data))
  expect(server.logs.filter((line) => line.startsWith('unexpected error'))).toEqual([])
})

test('while another process holds the write lock, signing in and starting chunked and tus uploads are answered 503 with Retry-After, then work', async () => {
  const server = await start()
  const signIn = () => fetch(server.url + '/login', { method: 'POST', body: new URLSearchParams({ password: TEST_PASSWORD }), redirect: 'manual' })
  const data = randomData(3000)
  const firstChunk = () => sendChunk(server, chunkFields('chunked', data.length, 1000, 0), data.subarray(0, 1000), { fileName: 'chunked.bin' })
  const tusCreate = () => server.fetch('/tus/', {
    method: 'POST',
    headers: { 'tus-resumable': '1.0.0', 'upload-length': '10', 'upload-metadata': `filename ${btoa('t.bin')}` },
  })
  const lock = await holdWriteLock(server)
  try {
    for (const request of [signIn, firstChunk, tusCreate]) {
      // Signing in writes first: it used to hold the whole server for the 5 s busy timeout.
      const [refused, health] = await Promise.all([timed(request), timed(() => fetch(server.url + '/healthz'))])
      expect({ status: refused.result.status, retryAfter: refused.result.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: '1' })
      expect(health.result.status).toBe(200)
      expect(refused.ms).toBeLessThan(2500)
      expect(health.ms).toBeLessThan(2500)
    }
  } finally {
    await lock.release()
  }
  expect(await login(server.url, TEST_PASSWORD)).toStartWith('dropfold_session=')
  expect((await firstChunk()).status).toBe(200)
  expect((await tusCreate()).status).toBe(201)
  expect(server.logs.filter((line) => line.startsWith('unexpected error'))).toEqual([])
})
