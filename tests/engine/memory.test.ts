import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { spawn, type Subprocess } from 'bun'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Database } from 'bun:sqlite'
import { connect } from 'node:net'
import { randomData, sha256 } from '../helpers/data.ts'
import { login, serverPerTest, startTestServer, TEST_PASSWORD } from '../helpers/server.ts'
import { createLink as createLinkAsAdmin, visit } from '../links/helpers.ts'
import { sqliteTest } from '../helpers/backend.ts'


/**
 * Memory under concurrency, measured on a server in a process of its own (spawned like
 * `npm start`), whose peak resident memory (VmHWM) the test reads from /proc.
 */

interface Child {
  url: string
  dataDir: string
  process: Subprocess
  peakMiB(): number
  stop(): Promise<void>
}

async function spawnServer(env: Record<string, string> = {}): Promise<Child> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropfold-memory-'))
  const child = spawn(['bun', 'src/main.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_PASSWORD: TEST_PASSWORD, UV_THREADPOOL_SIZE: '16', ...env },
    stdout: 'pipe',
    stderr: 'ignore',
  })
  const reader = child.stdout.getReader()
  let text = ''
  let url: string | undefined
  while (!url) {
    const { done, value } = await reader.read()
    if (done) throw new Error(`server exited before listening: ${text}`)
    text += new TextDecoder().decode(value)
    url = /running at (http:\/\/\S+)/.exec(text)?.[1]
  }
  void (async () => {
    while (!(await reader.read()).done);
  })()
  return {
    url,
    dataDir,
    process: child,
    peakMiB() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024
    },
    async stop() {
      child.kill('SIGKILL')
      await child.exited
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

async function createLink(url: string, cookie: string): Promise<string> {
  const response = await fetch(`${url}/links`, { method: 'POST', body: new URLSearchParams({ folder: '1', label: 'Load' }), headers: { cookie }, redirect: 'manual' })
  expect(response.status).toBe(303)
  // The full address is shown once, on the page the creation leads to.
  const secrets = response.headers.getSetCookie().find((c) => c.startsWith('dropfold_link_secrets='))!.split(';')[0]
  const page = await (await fetch(url + response.headers.get('location'), { headers: { cookie: `${cookie}; ${secrets}` } })).text()
  return /\/d\/([A-Za-z0-9_-]{20,64})/.exec(page)![1]!
}

/** One whole file as Dropzone sends a file of one chunk: dz fields, then the file part. */
function dropzoneForm(uuid: string, bytes: Uint8Array) {
  const form = new FormData()
  const fields = { dzuuid: uuid, dzchunkindex: 0, dztotalfilesize: bytes.length, dzchunksize: 8 * 1024 * 1024, dztotalchunkcount: 1, dzchunkbyteoffset: 0 }
  for (const [name, value] of Object.entries(fields)) form.append(name, String(value))
  form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), `${uuid}.bin`)
  return form
}

describe('memory under concurrency', () => {
  let server: Child
  let token: string
  beforeAll(async () => {
    server = await spawnServer()
    token = await createLink(server.url, await login(server.url, TEST_PASSWORD))
  })
  afterAll(() => server?.stop())

  // The server is a child process on SQLite whichever the run's backend: run it once, on the SQLite pass.
  sqliteTest('a child server in its own data directory, counting files in its SQLite file')('500 concurrent 2 MB uploads through a link: all stored once, peak memory under 300 MB', async () => {
    const base = new Uint8Array(2_000_000)
    crypto.getRandomValues(base.subarray(0, 65536))
    const files = Array.from({ length: 500 }, (_, i) => {
      const bytes = new Uint8Array(base)
      new DataView(bytes.buffer).setUint32(0, i)
      return { uuid: `load-${i}`, bytes }
    })
    const deadline = Date.now() + 150_000
    let refusedForMemory = 0
    const send = async ({ uuid, bytes }: { uuid: string; bytes: Uint8Array }) => {
      for (;;) {
        const response = await fetch(`${server.url}/d/${token}/upload`, { method: 'POST', body: dropzoneForm(uuid, bytes), headers: { accept: 'application/json' } })
        const body = (await response.json()) as { upload?: { state: string }; file?: { sha256: string } }
        if (response.status === 503 && Date.now() < deadline) {
          refusedForMemory++
          const wait = Number(response.headers.get('retry-after'))
          expect(wait).toBeGreaterThan(0)
          await Bun.sleep(wait * 1000 * (0.5 + Math.random()))
          continue
        }
        expect({ status: response.status, state: body.upload?.state }).toEqual({ status: 200, state: 'complete' })
        return body.file!.sha256
      }
    }
    const hashes = await Promise.all(files.map(send))
    expect(hashes).toEqual(files.map((f) => sha256(f.bytes)))
    const db = new Database(join(server.dataDir, 'dropfold.sqlite'), { readonly: true })
    try {
      expect(db.query("select count(*) as n from files where name like 'load-%'").get()).toEqual({ n: 500 })
    } finally {
      db.close()
    }
    const peak = server.peakMiB()
    console.log(`500 × 2 MB through a link: peak RSS ${peak.toFixed(0)} MiB, ${refusedForMemory} answers 503 (retried)`)
    expect(peak).toBeLessThan(300)
  }, 200_000)
})

describe('the memory budget for small request bodies', () => {
  const setUp = serverPerTest(startTestServer)

  test('past UPLOAD_MEMORY_BUDGET a small upload is answered 503 with Retry-After; once the memory is given back it is taken', async () => {
    const s = await setUp({ UPLOAD_MEMORY_BUDGET: '1M' })
    const link = await createLinkAsAdmin(s)
    const held = randomData(700 * 1024)
    const other = randomData(700 * 1024)

    // A client that sends its headers, the dz fields and half of its file, then waits.
    const encoded = new Response(dropzoneForm('held', held))
    const contentType = encoded.headers.get('content-type')!
    const body = new Uint8Array(await encoded.arrayBuffer())
    const socket = connect(Number(new URL(s.url).port), '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    let answer = ''
    socket.on('data', (data) => (answer += data.toString('latin1')))
    const answered = new Promise((resolve) => socket.once('end', resolve))
    const half = body.length - held.length / 2
    socket.write(`POST ${link.path}/upload HTTP/1.1\r\nHost: x\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
    socket.write(body.subarray(0, half))

    // Another upload meanwhile does not fit beside it (the server may not have read the held request's headers yet: ask until it has).
    const deadline = Date.now() + 20_000
    let refused: Response | undefined
    for (let attempt = 0; !refused && Date.now() < deadline; attempt++) {
      const response = await visit(s, `${link.path}/upload`, { method: 'POST', body: dropzoneForm(`other-${attempt}`, other), headers: { accept: 'application/json' } })
      if (response.status === 503) refused = response
      else await response.arrayBuffer()
    }
    expect(refused?.status).toBe(503)
    expect(refused!.headers.get('retry-after')).toBe('1')
    expect((await refused!.json()).error).toContain('busy')

    // The held request completes, and gives its memory back.
    socket.write(body.subarray(half))
    await answered
    expect(answer).toStartWith('HTTP/1.1 200')
    const again = await visit(s, `${link.path}/upload`, { method: 'POST', body: dropzoneForm('other-again', other), headers: { accept: 'application/json' } })
    expect(again.status).toBe(200)
    expect(((await again.json()) as { file: { sha256: string } }).file.sha256).toBe(sha256(other))
  }, 60_000)
})
