import { expect, test } from 'bun:test'
import { closeSync, openSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.ts'
import { startServer } from '../../src/server.ts'
import { RESERVE_BYTES } from '../../src/storage/reserve.ts'
import { randomData } from '../helpers/data.ts'
import { login, TEST_PASSWORD } from '../helpers/server.ts'
import { isRoot, tmpfsForTests } from './tmpfs.ts'

/** A data volume filled to the last byte by something other than Dropfold. */
const volume = tmpfsForTests('size=24m')

/** Bytes of disk the reserve file really holds (not a sparse file). */
const reserveBlocks = (dataDir: string) => statSync(join(dataDir, 'dropfold.reserve')).blocks * 512

const freeBytes = () => {
  const s = statfsSync(volume.path())
  return s.bavail * s.bsize
}

/** Writes zeros into `path` until the volume refuses another byte. */
function fillVolume(path: string) {
  const fd = openSync(path, 'w')
  try {
    for (let piece = 1024 * 1024; piece >= 1; ) {
      try {
        writeSync(fd, new Uint8Array(piece))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
        piece = Math.floor(piece / 2)
      }
    }
  } finally {
    closeSync(fd)
  }
}

test.skipIf(!isRoot)('on a volume filled to 100% by someone else, the admin can still sign in, delete a file and empty the trash, which frees space', async () => {
  const mountPoint = volume.path()
  const dataDir = join(mountPoint, 'data')
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_PASSWORD: TEST_PASSWORD, MIN_FREE_SPACE: '1M' })
  let server = await startServer(config, { log: () => {} })
  try {
    expect(reserveBlocks(dataDir)).toBeGreaterThanOrEqual(RESERVE_BYTES)
    const cookie = await login(server.url, TEST_PASSWORD)
    const post = (path: string, headers: Record<string, string> = { cookie }) =>
      fetch(server.url + path, { method: 'POST', headers, redirect: 'manual' })
    const uploaded = []
    for (const name of ['a.bin', 'b.bin']) {
      const form = new FormData()
      form.append('file', new Blob([randomData(1_500_000)]), name)
      const response = await fetch(`${server.url}/upload`, { method: 'POST', body: form, headers: { cookie, accept: 'application/json' } })
      expect(response.status).toBe(200)
      uploaded.push((await response.json()).file.id as number)
    }
    // One file is in the trash already; its bytes are what emptying the trash gives back.
    expect((await post(`/files/${uploaded[0]}/delete`)).status).toBe(303)

    fillVolume(join(mountPoint, 'filler'))
    expect(freeBytes()).toBe(0)
    // An upload is refused while the volume is full.
    const form = new FormData()
    form.append('file', new Blob([randomData(1000)]), 'c.bin')
    expect((await fetch(`${server.url}/upload`, { method: 'POST', body: form, headers: { cookie, accept: 'application/json' } })).status).toBe(507)

    const signedIn = await fetch(`${server.url}/login`, { method: 'POST', body: new URLSearchParams({ password: TEST_PASSWORD }), redirect: 'manual' })
    expect(signedIn.status).toBe(303)
    const fresh = signedIn.headers.get('set-cookie')!.split(';')[0]!
    expect((await post(`/files/${uploaded[1]}/delete`, { cookie: fresh })).status).toBe(303)
    const before = freeBytes()
    expect((await post('/trash/empty', { cookie: fresh })).status).toBe(303)
    expect(freeBytes()).toBeGreaterThan(before + 2_500_000)
    expect((await fetch(`${server.url}/trash`, { headers: { cookie: fresh } })).status).toBe(200)

    // Once there is room again, the reserve is written again (at start-up, and every 15 minutes).
    rmSync(join(mountPoint, 'filler'))
    await server.stop()
    server = await startServer(config, { log: () => {} })
    expect(reserveBlocks(dataDir)).toBeGreaterThanOrEqual(RESERVE_BYTES)
  } finally {
    await server.stop()
  }
})
