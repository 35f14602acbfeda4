import { afterEach, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.ts'
import { startServer } from '../../src/server.ts'
import { login, startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'
import { spawnServer, type ServerProcess } from '../helpers/processes.ts'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropfold-single-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
const started = async (env: Record<string, string> = {}): Promise<TestServer> => {
  const server = await startTestServer(env)
  cleanups.push(() => server.stop())
  return server
}
const spawned = (env: Record<string, string>): ServerProcess => {
  const child = spawnServer(env)
  cleanups.push(async () => {
    child.proc.kill('SIGKILL')
    await child.proc.exited
  })
  return child
}
const configFor = (dataDir: string, port: string | number) =>
  loadConfig({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_PASSWORD: TEST_PASSWORD })

test('a second server on a port already in use refuses to start, naming the port', async () => {
  const first = await started()
  const port = Number(new URL(first.url).port)
  const refusal = await startServer(configFor(tempDir(), port), { log: () => {} }).then(
    (second) => {
      cleanups.push(() => second.stop())
      return null
    },
    (error: Error) => error,
  )
  expect(refusal?.name).toBe('PortInUse')
  expect(refusal?.message).toContain(`port ${port} is already in use`)
  // The first server still answers alone.
  expect((await first.fetch('/healthz')).status).toBe(200)
})

test('a second server on another port with the same data directory refuses to start and names the first', async () => {
  const dataDir = tempDir()
  const first = spawned({ DATA_DIR: dataDir })
  await first.started
  const refusal = await startServer(configFor(dataDir, 0), { log: () => {} }).then(
    (second) => {
      cleanups.push(() => second.stop())
      return null
    },
    (error: Error) => error,
  )
  expect(refusal?.name).toBe('DataDirLocked')
  expect(refusal?.message).toContain(`pid ${first.proc.pid}`)
  expect(refusal?.message).toMatch(/started \d{4}-\d\d-\d\dT/)

  // Started the way an operator starts it: a clear message and exit code 3, no stack.
  const second = spawnServer({ DATA_DIR: dataDir })
  expect(await second.proc.exited).toBe(3)
  const printed = await second.stderr
  expect(printed).toContain(`Dropfold cannot start: ${dataDir} is in use by another Dropfold server (pid ${first.proc.pid}`)
  expect(printed).not.toContain('    at ')
})

test('a data directory whose server was killed with SIGKILL can be used by a new server at once', async () => {
  const dataDir = tempDir()
  const first = spawned({ DATA_DIR: dataDir })
  await first.started
  expect(readFileSync(join(dataDir, 'dropfold.lock'), 'utf8')).toContain(`pid ${first.proc.pid}`)
  first.proc.kill('SIGKILL')
  await first.proc.exited

  // The lock file is still there, naming a dead process; the lock itself died with it.
  const next = spawned({ DATA_DIR: dataDir })
  const url = await next.started
  expect(await login(url, TEST_PASSWORD)).toStartWith('dropfold_session=')
  expect(readFileSync(join(dataDir, 'dropfold.lock'), 'utf8')).toContain(`pid ${next.proc.pid}`)
})

test('a server that stopped releases the data directory for the next one in the same process', async () => {
  const server = await started()
  await server.restart()
  expect((await server.fetch('/healthz')).status).toBe(200)
})
