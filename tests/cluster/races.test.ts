import { SQL } from 'bun'
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NGINX, type ClusterInstance } from '../helpers/cluster.ts'
import { inParallel, randomData, sha256 } from '../helpers/data.ts'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'
import { POSTGRES } from '../helpers/postgres.ts'
import { describeNeeding } from '../helpers/services.ts'
import { CLUSTER_STORAGES, clusterPerTest, download, fileIdNamed, multipartBody, requestFrom, sharedDatabase } from './helpers.ts'

/**
 * Issue 14's races between two server processes on one PostgreSQL database and one DATA_DIR, and
 * again on one S3 bucket with a DATA_DIR each (nginx in front; requests are sent straight to the
 * instance each one is meant for). What keeps
 * each of them right lives outside either process: PostgreSQL advisory locks (the Locker: blob
 * hashes, chunk ranges) and finalisation leases in the uploads table. With the in-process locker
 * in each server instead (the one-process arrangement), the first two tests fail; see the
 * comment on each for how that was seen.
 */

const KiB = 1024
const MiB = 1024 * KiB

const start = clusterPerTest()

for (const { storage, name: where, needs } of CLUSTER_STORAGES) {
  describeNeeding([NGINX, POSTGRES, ...needs], `two processes on one database and ${where} (the races of issue 14)`, () => {
    const database = sharedDatabase()
    let sql: SQL | undefined
    let dataDir = ''
    beforeAll(() => {
      sql = new SQL(database.url, { max: 2 })
      dataDir = mkdtempSync(join(tmpdir(), 'dropfold-races-'))
    })
    afterAll(async () => {
      await sql?.close()
      rmSync(dataDir, { recursive: true, force: true })
    })
    const two = (options: { together?: boolean } = {}) =>
      start({ instances: 2, together: options.together, storage, env: { ...database.env(), ...(storage === 'local' ? { DATA_DIR: dataDir } : {}) } })
    // These look into (or write) the staged file of an upload in the shared DATA_DIR.
    const sharedDirTest = storage === 'local' ? test : (name: string, ...rest: Parameters<typeof test.skip> extends [unknown, ...infer R] ? R : never) => test.skip(`${name} [staging files in a shared DATA_DIR]`, ...rest)

    // With each process's own in-memory locker (src/adapters/memory/locker.ts in src/server.ts in
    // place of the PostgreSQL one), the purge checks "no file refers to this blob" and removes it
    // while the other process, which found no blob, writes and records it: a new file without bytes.
    test('one process empties the trash of files while the other stores the same bytes again: every new file keeps its bytes', async () => {
      const cluster = await two()
      const [a, b] = cluster.instances as [ClusterInstance, ClusterInstance]
      for (let round = 0; round < 10; round++) {
        const contents = Array.from({ length: 8 }, (_, i) => randomData(256 * KiB + round * 8 + i))
        const old = await inParallel(contents.map((data, i) => () => storeWhole(a, `purge-${round}-${i}-old.bin`, data)), 8)
        for (const id of old) expect((await a.fetch(`/files/${id}/delete`, { method: 'POST' })).status).toBe(303)
        // Both at once: the purge of the old files (whose blobs nothing else refers to) and the new ones.
        const [emptied, renewed] = await Promise.all([
          a.fetch('/trash/empty', { method: 'POST' }),
          inParallel(contents.map((data, i) => () => storeWhole(b, `purge-${round}-${i}-new.bin`, data)), 8),
        ])
        expect(emptied.status).toBe(303)
        for (const [i, id] of renewed.entries()) {
          expect(sha256(await download(a, id))).toBe(sha256(contents[i]!))
          expect(sha256(await download(b, id))).toBe(sha256(contents[i]!))
        }
      }
      const [row] = await sql!`select count(*)::int as n from files where name like 'purge-%'`
      expect(row.n).toBe(80)
    }, 180_000)

    // Seen failing with the in-memory locker in each process: B's request then takes the chunk's
    // lock in its own process and answers 200 while A is still writing the same chunk.
    sharedDirTest('two instances writing the same chunk at once: the second is answered 423, and the bytes recorded are the bytes hashed', async () => {
      const cluster = await two()
      const [a, b] = cluster.instances as [ClusterInstance, ClusterInstance]
      const chunkSize = 4 * MiB
      for (let round = 0; round < 4; round++) {
        const data = randomData(3 * chunkSize + 1000 + round)
        const other = randomData(chunkSize) // what B sends as chunk 1: not the bytes A sends
        const uuid = `same-chunk-${round}`
        const name = `${uuid}.bin`
        expect((await sendChunk(a, chunkFields(uuid, data.length, chunkSize, 0), chunkOf(data, chunkSize, 0), { fileName: name })).status).toBe(200)
        const [{ id }] = await sql!`select id from uploads where client_key = ${uuid}`
        const staged = join(dataDir, 'staging', id as string)

        // A sends chunk 1 slowly: all but its last 1 MiB, then waits until its bytes are on disk
        // (so it is writing the chunk for sure), and B sends the same chunk whole meanwhile.
        const form = new FormData()
        for (const [field, value] of Object.entries(chunkFields(uuid, data.length, chunkSize, 1))) form.append(field, String(value))
        form.append('file', new Blob([chunkOf(data, chunkSize, 1) as Uint8Array<ArrayBuffer>]), name)
        const { bytes, contentType } = await multipartBody(form)
        const cut = bytes.length - MiB
        let fromB: Response | undefined
        const fromA = requestFrom('127.0.0.1', `${a.url}/upload`, {
          method: 'POST',
          headers: { cookie: cluster.cookie, 'content-type': contentType, accept: 'application/json' },
          body: [bytes.subarray(0, cut), bytes.subarray(cut)],
          untilLastPiece: async () => {
            await until(() => holds(staged, chunkSize, data.subarray(chunkSize, chunkSize + 2 * MiB)), `A's first bytes of chunk 1 in ${staged}`)
            fromB = await sendChunk(b, chunkFields(uuid, data.length, chunkSize, 1), other, { fileName: name })
          },
        })
        expect((await fromA).status).toBe(200)
        expect(fromB!.status).toBe(423)
        for (const i of [2, 3]) expect((await sendChunk(b, chunkFields(uuid, data.length, chunkSize, i), chunkOf(data, chunkSize, i), { fileName: name })).status).toBe(200)

        const fileId = (await fileIdNamed(cluster, name))!
        const detail = await (await cluster.fetch(`/files/${fileId}`)).text()
        const recorded = /<dt>SHA-256<\/dt><dd><code>([0-9a-f]{64})<\/code>/.exec(detail)?.[1]
        expect(recorded).toBe(sha256(data))
        expect(sha256(await download(b, fileId))).toBe(sha256(data))
      }
    }, 180_000)

    // Each finalisation left by a process killed while it ran (state 'finalizing', its lease lapsed,
    // every byte staged) is taken over by exactly one of two processes starting at once: the
    // take-over is one conditional update of the lease, and only the lease's owner records the file.
    // Seen failing by hand (82 files for 80 uploads, the extra ones "… (1).bin") with the lease
    // taken out of the PostgreSQL store: take-over, the list of unleased finalisations and the
    // completion without their lease and state conditions, i.e. issue 14's unclaimed re-run at
    // start-up and completion without a state check.
    sharedDirTest('two processes starting at once recover the same finalisations: one file each, its SHA-256 right', async () => {
      // Enough of them that the two start-ups' recoveries overlap (each takes a while over 40).
      for (let round = 0; round < 2; round++) {
        const now = Date.now()
        mkdirSync(join(dataDir, 'staging'), { recursive: true })
        const left = Array.from({ length: 40 }, (_, i) => ({ id: `recover${round}x${String(i).padStart(3, "0")}`.padEnd(32, "0"), name: `recovered-${round}-${i}.bin`, data: randomData(MiB + i) }))
        // The first round's schema is made by the instances' migrations: start them once first.
        if (round === 0) await (await two()).stop()
        for (const { id, name, data } of left) {
          writeFileSync(join(dataDir, 'staging', id), data)
          await sql!`insert into uploads (id, protocol, owner, folder_id, file_name, mime_type, total_bytes, chunk_bytes, chunk_count, received_bytes, state, created_at, updated_at, lease_owner, lease_expires_at)
            values (${id}, 'tus', 'admin', 1, ${name}, 'application/octet-stream', ${data.length}, 0, 0, ${data.length}, 'finalizing', ${now}, ${now}, 'instance:killed', ${now - 1})`
        }
        const cluster = await two({ together: true })
        // Start-up recovery runs before an instance listens: both have finished it now.
        for (const { id, name, data } of left) {
          const listing = await (await cluster.fetch(`/folders/1/view?q=${encodeURIComponent(name)}`)).text()
          expect(listing.match(/href="\/files\/\d+"/g)).toHaveLength(1)
          expect(sha256(await download(cluster, (await fileIdNamed(cluster, name))!))).toBe(sha256(data))
          const [upload] = await sql!`select state, (select count(*)::int from files where upload_id = ${id}) as files from uploads where id = ${id}`
          expect(upload).toEqual({ state: 'complete', files: 1 })
        }
        await cluster.stop()
      }
      const [row] = await sql!`select count(*)::int as n from files where name like 'recovered-%'`
      expect(row.n).toBe(80)
    }, 180_000)

    // The bound for a finalisation lease a killed instance held: FINALIZATION_LEASE_MS (60 s) after
    // its last renewal; here the lease had 1.5 s left when the instance died. Before the fix in
    // UploadEngine.retriedInBackground a HEAD only retried what a passing fault held up in its own
    // process, so the upload stayed 'finalizing' (no file, while HEAD already showed every byte and
    // tus-js-client called it done) until the next housekeeping, up to 15 minutes later.
    sharedDirTest("a tus upload whose finalising instance was killed: a HEAD at the other instance, once the lease has lapsed, finishes it", async () => {
      const cluster = await two()
      const id = 'c'.repeat(32)
      const data = randomData(200 * KiB)
      writeFileSync(join(dataDir, 'staging', id), data)
      const leaseEnds = Date.now() + 1500
      await sql!`insert into uploads (id, protocol, owner, folder_id, file_name, mime_type, total_bytes, chunk_bytes, chunk_count, received_bytes, state, created_at, updated_at, lease_owner, lease_expires_at)
        values (${id}, 'tus', 'admin', 1, 'orphaned.bin', 'application/octet-stream', ${data.length}, 0, 0, ${data.length}, 'finalizing', ${leaseEnds - 60_000}, ${leaseEnds - 60_000}, 'instance:killed', ${leaseEnds})`
      const state = async () => ((await sql!`select state from uploads where id = ${id}`)[0] as { state: string }).state
      const head = async (instance: ClusterInstance) => {
        const response = await instance.fetch(`/tus/${id}`, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })
        expect(response.status).toBe(200)
        expect(response.headers.get('upload-offset')).toBe(String(data.length))
      }
      // While the lease runs, a HEAD leaves the finalisation to its owner.
      await head(cluster.instances[1]!)
      expect(await state()).toBe('finalizing')
      while ((await state()) !== 'complete') {
        if (Date.now() > leaseEnds + 30_000) throw new Error('the upload was not finished within 30 s of its lease lapsing')
        await head(cluster.instances[1]!)
        await Bun.sleep(100)
      }
      expect(Date.now()).toBeGreaterThanOrEqual(leaseEnds)
      expect(sha256(await download(cluster, (await fileIdNamed(cluster, 'orphaned.bin'))!))).toBe(sha256(data))
    }, 60_000)
  })
}

/** Stores `data` as a whole file in one multipart POST to `instance`; its file id. */
async function storeWhole(instance: ClusterInstance, name: string, data: Uint8Array): Promise<number> {
  const form = new FormData()
  form.append('file', new Blob([data as Uint8Array<ArrayBuffer>]), name)
  const response = await instance.fetch('/upload', { method: 'POST', body: form, headers: { accept: 'application/json' } })
  expect(response.status).toBe(200)
  return ((await response.json()) as { file: { id: number } }).file.id
}

/** Whether the file at `path` holds `expected` from `offset` on. */
function holds(path: string, offset: number, expected: Uint8Array): boolean {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return false
  }
  try {
    const bytes = Buffer.alloc(expected.length)
    return readSync(fd, bytes, 0, bytes.length, offset) === expected.length && Buffer.compare(bytes, expected) === 0
  } finally {
    closeSync(fd)
  }
}

/** Waits (bounded) until `condition` holds. */
async function until(condition: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms: ${what}`)
    await Bun.sleep(10)
  }
}
