import { afterEach } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TEST_PASSWORD } from './server.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface ServerProcess {
  proc: Bun.Subprocess<'ignore', 'pipe', 'pipe'>
  /** Resolves to the URL once the server says it is running, or rejects with what it printed when it exits instead. */
  started: Promise<string>
  /** Everything it printed on stderr, once it has exited. */
  stderr: Promise<string>
}

/** `bun src/main.ts` as a process of its own, as an operator starts it. */
export function spawnServer(env: Record<string, string>): ServerProcess {
  const proc = Bun.spawn([process.execPath, 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ADMIN_PASSWORD: TEST_PASSWORD, UV_THREADPOOL_SIZE: '4', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const stderr = new Response(proc.stderr).text()
  const started = (async () => {
    let seen = ''
    const decoder = new TextDecoder()
    for await (const piece of proc.stdout) {
      seen += decoder.decode(piece, { stream: true })
      const url = /running at (http:\/\/\S+)/.exec(seen)?.[1]
      if (url) return url
    }
    throw new Error(`the server exited (${await proc.exited}) without starting: ${await stderr}`)
  })()
  started.catch(() => {})
  return { proc, started, stderr }
}

/**
 * What a test file's tests make and must undo after each test, in reverse order: temporary
 * directories, servers started as processes (stopped with SIGTERM), and anything pushed on `cleanups`.
 */
export function undoneAfterEach(prefix: string) {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  return {
    cleanups,
    tempDir() {
      const dir = mkdtempSync(join(tmpdir(), prefix))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      return dir
    },
    spawned(env: Record<string, string>): ServerProcess {
      const child = spawnServer(env)
      cleanups.push(async () => {
        child.proc.kill('SIGTERM')
        await child.proc.exited
      })
      return child
    },
  }
}
