import { afterEach, expect, test } from 'bun:test'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chunkFields, sendChunk } from '../helpers/dropzone-client.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { spawnServer } from '../helpers/processes.ts'
import { describeS3, freshBucket, s3Env } from '../helpers/s3.ts'
import { blobPath, login, startTestServer, TEST_PASSWORD } from '../helpers/server.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** `npm run migrate-storage` as an operator runs it; `until` may kill it when a line it printed matches. */
function migrate(env: Record<string, string>, until?: RegExp) {
  const proc = Bun.spawn([process.execPath, 'src/cli/migrate-storage.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'pipe' })
  cleanups.push(() => proc.kill('SIGKILL'))
  const stderr = new Response(proc.stderr).text()
  const output = (async () => {
    let seen = ''
    const decoder = new TextDecoder()
    for await (const piece of proc.stdout) {
      seen += decoder.decode(piece, { stream: true })
      if (until?.test(seen)) proc.kill('SIGKILL')
    }
    return seen
  })()
  return { proc, output, stderr }
}

describeS3('npm run migrate-storage', () => {
  test('copies a local store to the bucket, survives being killed mid-way, and the server on S3 then serves every file', async () => {
    // A local store with several files: small ones (one PUT each) and large ones (streamed, multipart).
    const local = await startTestServer({ STORAGE: 'local' })
    cleanups.push(() => rmSync(local.dataDir, { recursive: true, force: true }))
    const files = [randomData(1), randomData(70_000), randomData(3 * 1024 ** 2), randomData(12 * 1024 ** 2), randomData(9 * 1024 ** 2 + 7)]
    const urls: string[] = []
    for (const [index, data] of files.entries()) {
      const response = await sendChunk(local, chunkFields(`m${index}`, data.length, data.length, 0), data, { fileName: `file-${index}.bin` })
      expect(response.status).toBe(200)
      urls.push((await response.json()).file.url)
    }
    await local.server.stop()

    const bucket = await freshBucket()
    cleanups.push(() => bucket.drop())
    const env = { ...s3Env(bucket.settings), DATA_DIR: local.dataDir }

    // Killed while it streams the second large file (it goes in SHA-256 order): every file before
    // it is in the bucket, at least the other large one; this one is not, its multipart upload open.
    const large = sha256(files[3]!) > sha256(files[4]!) ? files[3]! : files[4]!
    const before = files.filter((data) => sha256(data) < sha256(large)).length
    const cut = migrate(env, new RegExp(`${sha256(large)} \\(\\d+ bytes\\): streaming it in parts`))
    await cut.proc.exited
    expect(await cut.output).not.toContain('Done:')
    expect(await cut.output).not.toContain(`${sha256(large)} (${large.length} bytes): copied`)
    const leftBehind = await bucket.multipartUploads()
    expect(leftBehind.length).toBeGreaterThan(0)

    const again = migrate(env)
    expect(await again.proc.exited).toBe(0)
    const output = await again.output
    const alreadyThere = Number(/, (\d+) already there/.exec(output)?.[1])
    const copied = Number(/Done: (\d+) copied/.exec(output)?.[1])
    expect(alreadyThere).toBe(before)
    expect(copied).toBe(files.length - before)
    expect(output).toContain('STORAGE=s3')
    expect(output + (await again.stderr) + (await cut.output)).not.toContain(bucket.settings.secretAccessKey)
    // Nothing half-done is left to cost money: the cut multipart upload was aborted.
    expect(await bucket.multipartUploads()).toEqual([])

    // The server on S3, with the local files gone: every file downloads whole, with its SHA-256.
    rmSync(`${local.dataDir}/blobs`, { recursive: true, force: true })
    rmSync(`${local.dataDir}/staging`, { recursive: true, force: true })
    const server = spawnServer(env)
    cleanups.push(async () => {
      server.proc.kill('SIGTERM')
      await server.proc.exited
    })
    const url = await server.started
    const cookie = await login(url, TEST_PASSWORD)
    for (const [index, data] of files.entries()) {
      const response = await fetch(url + urls[index], { headers: { cookie } })
      expect(response.status).toBe(200)
      expect(sha256(new Uint8Array(await response.arrayBuffer()))).toBe(sha256(data))
    }
  })

  test('a local file whose bytes do not match its SHA-256 is not copied, and the run says so and fails', async () => {
    const local = await startTestServer({ STORAGE: 'local' })
    cleanups.push(() => rmSync(local.dataDir, { recursive: true, force: true }))
    const sound = randomData(5000)
    const damaged = randomData(10 * 1024 ** 2)
    for (const [index, data] of [sound, damaged].entries()) {
      expect((await sendChunk(local, chunkFields(`d${index}`, data.length, data.length, 0), data, { fileName: `f${index}` })).status).toBe(200)
    }
    await local.server.stop()
    const bytes = readFileSync(blobPath(local, sha256(damaged)))
    bytes[12345] = bytes[12345]! ^ 0xff
    writeFileSync(blobPath(local, sha256(damaged)), bytes)
    const bucket = await freshBucket()
    cleanups.push(() => bucket.drop())

    const run = migrate({ ...s3Env(bucket.settings), DATA_DIR: local.dataDir })
    expect(await run.proc.exited).toBe(1)
    const output = await run.output
    expect(output).toContain(`${sha256(damaged)} (${damaged.length} bytes): NOT copied`)
    expect(output).toContain('Done: 1 copied, 0 already there, 1 damaged (not copied).')
    // Proof the sound one went where the damaged one would have: exactly one blob is in the bucket.
    expect((await bucket.keys()).filter((key) => key.includes(sha256(sound)))).not.toEqual([])
    expect((await bucket.keys()).filter((key) => key.includes(sha256(damaged)))).toEqual([])
    expect(await bucket.multipartUploads()).toEqual([])
  })
})
