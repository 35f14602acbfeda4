import { SQL } from 'bun'
import { expect, test } from 'bun:test'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData } from '../helpers/data.ts'
import { describePostgres, freshDatabase } from '../helpers/postgres.ts'
import { undoneAfterEach } from '../helpers/processes.ts'
import { login, TEST_PASSWORD } from '../helpers/server.ts'
import { loadConfig } from '../../src/config.ts'
import { startServer } from '../../src/server.ts'

// DATABASE_URL, from the outside: `bun src/main.ts` as an operator starts it.

const { cleanups, tempDir, spawned } = undoneAfterEach('dropfold-pg-server-')
const database = async () => {
  const db = await freshDatabase()
  cleanups.push(() => db.drop())
  return db
}

/** A client of the instance at `url`, with the session cookie `cookie` (from whichever instance). */
function clientOf(url: string, cookie: string) {
  return { url, cookie, fetch: (path: string, init: RequestInit = {}) => fetch(url + path, { ...init, headers: { cookie, ...init.headers }, redirect: 'manual' }) }
}

/** A client of one instance, signed in there. */
const signedIn = async (url: string) => clientOf(url, await login(url, TEST_PASSWORD))

async function download(instance: { fetch(path: string): Promise<Response> }, path: string) {
  const response = await instance.fetch(path)
  expect(response.status).toBe(200)
  return new Uint8Array(await response.arrayBuffer())
}

test('a DATABASE_URL that is not a PostgreSQL URL stops start-up with a clear message and exit code 3', async () => {
  const child = spawned({ DATA_DIR: tempDir(), DATABASE_URL: 'mysql://admin:s3cret-pw@127.0.0.1/dropfold' })
  expect(await child.proc.exited).toBe(3)
  const printed = await child.stderr
  expect(printed).toContain('Dropfold cannot start: DATABASE_URL must be a postgres:// URL')
  expect(printed).not.toContain('s3cret-pw')
  expect(printed).not.toContain('    at ')
})

test('an unreachable PostgreSQL server stops start-up, naming where without the password', async () => {
  // A port nothing listens on: bound, then closed.
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  const dataDir = tempDir()
  const child = spawned({ DATA_DIR: dataDir, DATABASE_URL: `postgres://dropfold:s3cret-pw@127.0.0.1:${port}/dropfold` })
  expect(await child.proc.exited).toBe(3)
  const printed = await child.stderr
  expect(printed).toContain(`Dropfold cannot start: cannot connect to PostgreSQL at 127.0.0.1:${port}/dropfold`)
  expect(printed).not.toContain('s3cret-pw')
  expect(printed).not.toContain('    at ')
  // Nothing was made in SQLite instead.
  expect(existsSync(join(dataDir, 'dropfold.sqlite'))).toBe(false)
})

describePostgres('Dropfold on PostgreSQL (DATABASE_URL)', () => {
  test('starts on an empty database, migrates it, serves, and keeps nothing in SQLite', async () => {
    const db = await database()
    const dataDir = tempDir()
    const child = spawned({ DATA_DIR: dataDir, DATABASE_URL: db.url })
    const instance = await signedIn(await child.started)

    const data = randomData(300 * 1024)
    const size = 128 * 1024
    let status: { file?: { url: string } } = {}
    for (let i = 0; i < 3; i++) {
      const response = await sendChunk(instance, chunkFields('pg-start', data.length, size, i), chunkOf(data, size, i))
      expect(response.status).toBe(200)
      status = (await response.json()) as typeof status
    }
    expect(await download(instance, status.file!.url)).toEqual(data)

    // The tables were made by the migrations, and hold what was just uploaded.
    const sql = new SQL(db.url, { max: 1 })
    cleanups.push(() => sql.close())
    const [row] = await sql`select count(*)::int as n from files`
    expect(row.n).toBe(1)
    expect(existsSync(join(dataDir, 'dropfold.sqlite'))).toBe(false)
    expect(existsSync(join(dataDir, 'dropfold.lock'))).toBe(false)
  })

  test('two instances on one database and one DATA_DIR both start and behave as one server', async () => {
    const db = await database()
    const dataDir = tempDir()
    // Started together: both migrate the same empty database at the same moment.
    const first = spawned({ DATA_DIR: dataDir, DATABASE_URL: db.url })
    const second = spawned({ DATA_DIR: dataDir, DATABASE_URL: db.url })
    const [a, b] = await Promise.all([first.started, second.started])
    const one = await signedIn(a!)
    // Signed in on the first, signed in on the second.
    const other = clientOf(b!, one.cookie)
    expect((await other.fetch('/uploads')).status).toBe(200)
    expect((await fetch(b + '/uploads', { redirect: 'manual' })).status).toBe(401)

    // One upload's chunks through both instances; the file is read back from either.
    const data = randomData(200 * 1024)
    const size = 64 * 1024
    let status: { file?: { url: string } } = {}
    for (let i = 0; i < 4; i++) {
      const response = await sendChunk(i % 2 ? other : one, chunkFields('pg-two', data.length, size, i), chunkOf(data, size, i))
      expect(response.status).toBe(200)
      status = (await response.json()) as typeof status
    }
    expect(await download(one, status.file!.url)).toEqual(data)
    expect(await download(other, status.file!.url)).toEqual(data)
  })

  test("an instance starting while another is mid-upload leaves that upload's staging alone, and removes only orphans", async () => {
    const db = await database()
    const dataDir = tempDir()
    const first = spawned({ DATA_DIR: dataDir, DATABASE_URL: db.url })
    const one = await signedIn(await first.started)
    const staging = join(dataDir, 'staging')

    // A staging file no upload row needs (what a crash between a commit and an unlink leaves):
    // a starting instance removes it, so its start-up cleanup does run on this DATA_DIR.
    const orphan = join(staging, 'a'.repeat(32))
    writeFileSync(orphan, 'left over')

    // The first chunk of a new upload, its body held open half-way: the upload's row is
    // committed and its staging file exists, its bytes are still arriving.
    const data = randomData(256 * 1024)
    const size = 128 * 1024
    const first0 = chunkOf(data, size, 0)
    const form = new FormData()
    for (const [name, value] of Object.entries(chunkFields('pg-mid', data.length, size, 0))) form.append(name, String(value))
    form.append('file', new Blob([first0 as Uint8Array<ArrayBuffer>]), 'data.bin')
    const request = new Request(one.url + '/upload', { method: 'POST', body: form })
    const contentType = request.headers.get('content-type')!
    const whole = new Uint8Array(await request.arrayBuffer())
    const half = whole.length - first0.length / 2
    let finish!: () => void
    const held = new Promise<void>((resolve) => (finish = resolve))
    let pulls = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (pulls++ === 0) return controller.enqueue(whole.subarray(0, half))
        await held
        controller.enqueue(whole.subarray(half))
        controller.close()
      },
    })
    const answer = fetch(one.url + '/upload', {
      method: 'POST',
      body,
      headers: { cookie: one.cookie, accept: 'application/json', 'content-type': contentType },
      // @ts-expect-error Bun's fetch streams a request body with duplex: 'half'
      duplex: 'half',
    })
    const uploadStaging = () => readdirSync(staging).filter((name) => join(staging, name) !== orphan)
    const deadline = Date.now() + 30_000
    while (uploadStaging().length === 0) {
      if (Date.now() > deadline) {
        finish()
        throw new Error(`the upload never began its staging file: ${(await answer).status} ${await (await answer).text()} ${readdirSync(staging)}`)
      }
      await Bun.sleep(10)
    }

    const second = spawned({ DATA_DIR: dataDir, DATABASE_URL: db.url })
    const other = clientOf(await second.started, one.cookie)
    expect(existsSync(orphan)).toBe(false)
    expect(uploadStaging()).toHaveLength(1)

    finish()
    expect((await answer).status).toBe(200)
    const last = await sendChunk(other, chunkFields('pg-mid', data.length, size, 1), chunkOf(data, size, 1))
    expect(last.status).toBe(200)
    const status = (await last.json()) as { file: { url: string } }
    expect(await download(one, status.file.url)).toEqual(data)
  })

  test('a stopped server leaves no connection open to the database (pool, locks and listener closed)', async () => {
    const db = await database()
    const name = new URL(db.url).pathname.slice(1)
    const sql = new SQL(process.env.TEST_DATABASE_URL!, { max: 1 })
    cleanups.push(() => sql.close())
    const sessions = async () => ((await sql`select count(*)::int as n from pg_stat_activity where datname = ${name}`) as { n: number }[])[0]!.n
    const server = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: tempDir(), ADMIN_PASSWORD: TEST_PASSWORD, DATABASE_URL: db.url }), { log: () => {} })
    // Running: the store's pool and the locker's session and listener are connected.
    expect(await sessions()).toBeGreaterThanOrEqual(2)
    await server.stop()
    // A backend leaves pg_stat_activity a moment after its client closed the connection: wait for it (bounded).
    for (const deadline = Date.now() + 10_000; (await sessions()) > 0 && Date.now() < deadline; ) await Bun.sleep(50)
    expect(await sessions()).toBe(0)
  })
})
