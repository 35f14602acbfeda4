import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer, type ServerProcess } from './processes.ts'
import { login, TEST_PASSWORD } from './server.ts'
import { freshBucket, s3Env, type TestBucket } from './s3.ts'
import { describeNeeding, type Service } from './services.ts'

/**
 * A real nginx in front of Dropfold server processes, as deployed: nginx runs the repository's
 * own `deploy/nginx/dropfold.conf` with only the instance addresses, the listening port and the
 * access log's path changed, as a private instance (its own prefix, pid file and temp dirs in a
 * temporary directory, a random free port), stopped and removed afterwards.
 *
 * Which instance served a request is read from nginx's access log (`upstream` is
 * `$upstream_addr`), so the app carries no test-only route.
 */

export const DEPLOYED_CONF = fileURLToPath(new URL('../../deploy/nginx/dropfold.conf', import.meta.url))

export const NGINX_PATH = process.env.NGINX_PATH ?? ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path))

/** Why nginx cannot be used here, or null when it can. */
export function nginxMissing(): string | null {
  if (NGINX_PATH && existsSync(NGINX_PATH)) return null
  return `nginx was not found${process.env.NGINX_PATH ? ` at NGINX_PATH=${process.env.NGINX_PATH}` : ''}`
}

export const NGINX: Service = {
  name: 'nginx',
  missing: nginxMissing,
  howToRun: 'Run them after `apt-get install -y nginx` (or with NGINX_PATH set to an nginx binary): `npx bun test tests/cluster`.',
}

/** `describe` for a suite that needs nginx (and, if given, other services too; see describeNeeding). */
export function describeWithNginx(name: string, suite: () => void, also: Service[] = []) {
  return describeNeeding([NGINX, ...also], name, suite)
}

/** One line of nginx's access log (log_format dropfold). */
export interface AccessLogEntry {
  time: string
  client: string
  method: string
  /** The request target as the client sent it, query included. */
  uri: string
  /** Its path alone. */
  path: string
  status: number
  requestLength: number
  bytesSent: number
  /** Every instance nginx tried for this request, in order (more than one when it moved on). */
  upstreams: string[]
  /** The instance that answered (the last one tried), or undefined when none did. */
  upstream?: string
  upstreamStatus: string
}

export interface ClusterInstance {
  /** The instance's own URL, bypassing nginx. */
  url: string
  /** `127.0.0.1:<port>` as nginx's upstream and its log name it. */
  address: string
  dataDir: string
  pid: number
  /** `kill -9`: no chance to finish anything. Resolves once the process is gone. */
  kill(): Promise<void>
  /** Whether the process is still running. */
  alive(): boolean
  /** What it printed on stderr, once it has exited. */
  stderr: Promise<string>
  /** Authenticated fetch straight to this instance, bypassing nginx (to choose which instance gets a request). */
  fetch(path: string, init?: RequestInit): Promise<Response>
  /** How many requests nginx's log says this instance answered (those matching `which`, if given). */
  requests(which?: (entry: AccessLogEntry) => boolean): number
}

export interface Cluster {
  /** nginx's URL: what clients use. */
  url: string
  instances: ClusterInstance[]
  /** The DATA_DIR every instance was given (the first instance's, with `dataDirEach` or on S3). */
  dataDir: string
  /** With `storage: 's3'`, the cluster's own bucket (dropped when it stops). */
  bucket?: TestBucket
  /** Session cookie of the admin, signed in through nginx (with `dataDirEach`, valid on one instance only). */
  cookie: string
  /** Authenticated fetch through nginx. */
  fetch(path: string, init?: RequestInit): Promise<Response>
  /** nginx's access log so far. */
  accessLog(): AccessLogEntry[]
  /**
   * Waits until the log holds `count` entries matching `which`: nginx writes a request's line
   * once it has finished it, which may be just after the client has read the answer.
   */
  logged(which: (entry: AccessLogEntry) => boolean, count: number, timeoutMs?: number): Promise<AccessLogEntry[]>
  /** nginx's error log so far. */
  errorLog(): string
  /** nginx's master process (its worker is a child of it), for the benchmark's CPU figures. */
  nginxPid: number
  stop(): Promise<void>
}

export interface ClusterOptions {
  /** How many Dropfold processes (default 1). With SQLite only one may run per DATA_DIR. */
  instances?: number
  /** Environment for every instance (DATA_DIR defaults to a shared temporary directory, TRUST_PROXY to 1). */
  env?: Record<string, string>
  /**
   * A DATA_DIR of its own for each instance: N independent servers, for tests of nginx itself
   * (spreading, moving on from a dead instance) while instances cannot share a database yet.
   */
  dataDirEach?: boolean
  /**
   * Directives of the deployed file to set to another value for this run (`{ client_body_timeout: '2s' }`):
   * only for a test proving that a setting matters. Each must appear exactly once.
   */
  override?: Record<string, string>
  /**
   * Start every instance at the same moment rather than one after the other, so that their
   * start-up work (recovery of finalisations cut short) runs at once. Needs a shared database.
   */
  together?: boolean
  /**
   * Where uploads and files live: `local` (default), one DATA_DIR shared by every instance; `s3`,
   * a fresh bucket of the cluster's own (`Cluster.bucket`, needs the S3 service) and a DATA_DIR
   * of each instance's own, so that nothing is shared but the database and the bucket.
   */
  storage?: 'local' | 's3'
}

/** Starts the instances, then nginx in front of them, and signs in through nginx. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const missing = nginxMissing()
  if (missing) throw new Error(`${missing}: install it with apt-get install -y nginx, or set NGINX_PATH`)
  const cleanups: (() => unknown)[] = []
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  }
  try {
    const tempDataDir = () => {
      const dir = mkdtempSync(join(tmpdir(), 'dropfold-cluster-data-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      return dir
    }
    const onS3 = options.storage === 's3'
    const bucket = onS3 ? await freshBucket() : undefined
    if (bucket) cleanups.push(() => bucket.drop())
    const shared = options.env?.DATA_DIR ?? (options.dataDirEach || onS3 ? undefined : tempDataDir())
    const prefix = mkdtempSync(join(tmpdir(), 'dropfold-nginx-'))
    cleanups.push(() => rmSync(prefix, { recursive: true, force: true }))
    const accessLogPath = join(prefix, 'access.log')
    const accessLog = () => parseAccessLog(existsSync(accessLogPath) ? readFileSync(accessLogPath, 'utf8') : '')

    const processes: ServerProcess[] = []
    const dataDirs: string[] = []
    for (let i = 0; i < (options.instances ?? 1); i++) {
      const dataDir = shared ?? tempDataDir()
      const child = spawnServer({ TRUST_PROXY: '1', ...(bucket ? s3Env(bucket.settings) : {}), ...options.env, DATA_DIR: dataDir })
      processes.push(child)
      dataDirs.push(dataDir)
      cleanups.push(async () => {
        child.proc.kill('SIGKILL')
        await child.proc.exited
      })
      // One after the other: a second instance on a SQLite DATA_DIR refuses to start, and says why.
      if (!options.together) await child.started
    }
    await Promise.all(processes.map((child) => child.started))
    let cookie = ''
    const instances = await Promise.all(processes.map(async (child, i) => instanceOf(child, await child.started, dataDirs[i]!, accessLog, () => cookie)))

    const nginx = await startNginx(prefix, instances.map((i) => i.address), accessLogPath, options.override ?? {})
    cleanups.push(nginx.stop)

    cookie = await login(nginx.url, TEST_PASSWORD)
    return {
      url: nginx.url,
      instances,
      dataDir: dataDirs[0]!,
      bucket,
      cookie,
      fetch: signedIn(nginx.url, () => cookie),
      accessLog,
      async logged(which, count, timeoutMs = 10_000) {
        const deadline = Date.now() + timeoutMs
        for (;;) {
          const entries = accessLog().filter(which)
          if (entries.length >= count) return entries
          if (Date.now() > deadline) throw new Error(`nginx logged ${entries.length} matching requests within ${timeoutMs} ms, not ${count}`)
          await Bun.sleep(20)
        }
      },
      errorLog: () => readFileSync(join(prefix, 'error.log'), 'utf8'),
      nginxPid: nginx.pid,
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/** fetch relative to `url` with the admin's cookie, never following redirects. */
function signedIn(url: string, cookie: () => string) {
  return (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers)
    if (!headers.has('cookie')) headers.set('cookie', cookie())
    return fetch(url + path, { ...init, headers, redirect: 'manual' })
  }
}

function instanceOf(child: ServerProcess, url: string, dataDir: string, accessLog: () => AccessLogEntry[], cookie: () => string): ClusterInstance {
  const address = new URL(url).host
  let exited = false
  void child.proc.exited.then(() => (exited = true))
  return {
    url,
    address,
    dataDir,
    pid: child.proc.pid,
    async kill() {
      child.proc.kill('SIGKILL')
      await child.proc.exited
    },
    alive: () => !exited,
    stderr: child.stderr,
    fetch: signedIn(url, cookie),
    requests: (which = () => true) => accessLog().filter((entry) => entry.upstream === address && which(entry)).length,
  }
}

export function parseAccessLog(text: string): AccessLogEntry[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const raw = JSON.parse(line) as Record<string, string>
      const upstreams = raw.upstream ? raw.upstream.split(/\s*,\s*|\s+:\s+/).filter(Boolean) : []
      return {
        time: raw.time!,
        client: raw.client!,
        method: raw.method!,
        uri: raw.uri!,
        path: raw.uri!.split('?')[0]!,
        status: Number(raw.status),
        requestLength: Number(raw.request_length),
        bytesSent: Number(raw.bytes_sent),
        upstreams,
        upstream: upstreams.at(-1),
        upstreamStatus: raw.upstream_status ?? '',
      }
    })
}

/**
 * The deployed file with this run's instances, port and access log. Every change must find
 * exactly what it changes, so a change to the deployed file that the tests would silently not
 * follow fails here instead.
 */
export function renderDeployedConf(upstreams: string[], listen: string, accessLogPath: string, override: Record<string, string> = {}): string {
  let conf = readFileSync(DEPLOYED_CONF, 'utf8')
  const replaceOnce = (pattern: RegExp, replacement: string, what: string) => {
    const matches = conf.match(new RegExp(pattern.source, 'gm'))?.length ?? 0
    if (matches !== 1) throw new Error(`${DEPLOYED_CONF}: expected exactly one ${what}, found ${matches}`)
    conf = conf.replace(new RegExp(pattern.source, 'm'), replacement)
  }
  replaceOnce(/^(upstream dropfold \{\n(?:[^\n]*\n)*?)((?: {4}server [^\s;]+;\n)+)/, `$1${upstreams.map((u) => `    server ${u};\n`).join('')}`, 'run of upstream server lines')
  replaceOnce(/^( {4}listen )80;$/, `$1${listen};`, '"listen 80;"')
  replaceOnce(/^( {4}access_log )\S+( dropfold;)$/, `$1${accessLogPath}$2`, 'access_log line')
  for (const [directive, value] of Object.entries(override)) {
    replaceOnce(new RegExp(`^(\\s*${directive} )[^;\\n]+;`), `$1${value};`, `"${directive}" directive`)
  }
  return conf
}

async function startNginx(prefix: string, upstreams: string[], accessLogPath: string, override: Record<string, string>) {
  for (const path of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, path))
  const errorLogPath = join(prefix, 'error.log')
  let lastError = ''
  // A free port can be taken by someone else between finding it and nginx binding it: try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort()
    writeFileSync(join(prefix, 'dropfold.conf'), renderDeployedConf(upstreams, `127.0.0.1:${port}`, accessLogPath, override))
    writeFileSync(
      join(prefix, 'nginx.conf'),
      [
        // Run as root (as in CI), the workers would otherwise become "nobody" and not reach the temp dirs.
        process.getuid?.() === 0 ? 'user root;' : '',
        'daemon off;',
        'worker_processes 1;',
        `pid ${join(prefix, 'nginx.pid')};`,
        `error_log ${errorLogPath} info;`,
        'events { worker_connections 2048; }',
        'http {',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((path) => `    ${path}_temp_path ${join(prefix, path)};`),
        `    include ${join(prefix, 'dropfold.conf')};`,
        '}',
        '',
      ].join('\n'),
    )
    const proc = Bun.spawn([NGINX_PATH!, '-p', `${prefix}/`, '-c', join(prefix, 'nginx.conf'), '-e', errorLogPath], {
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
    })
    const stderr = new Response(proc.stderr).text()
    const stopOnExit = () => proc.kill('SIGTERM')
    process.once('exit', stopOnExit)
    const url = `http://127.0.0.1:${port}`
    const ready = await untilAnswering(url, proc)
    if (ready) {
      return {
        url,
        pid: proc.pid,
        async stop() {
          process.off('exit', stopOnExit)
          // SIGTERM, not SIGKILL: the master then stops its workers too.
          proc.kill('SIGTERM')
          const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
          await proc.exited
          clearTimeout(timer)
        },
      }
    }
    process.off('exit', stopOnExit)
    proc.kill('SIGTERM')
    await proc.exited
    lastError = `${await stderr}\n${existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : ''}`
    if (!/Address already in use/.test(lastError)) break
  }
  throw new Error(`nginx did not start: ${lastError.trim()}`)
}

/** Whether nginx answers (any status) before its process exits or 10 s pass. */
async function untilAnswering(url: string, proc: Bun.Subprocess): Promise<boolean> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
    const answered = await fetch(`${url}/healthz`).then(
      async (response) => (await response.arrayBuffer(), true),
      () => false,
    )
    if (answered) return true
    await Bun.sleep(25)
  }
  return false
}

function freePort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = listener.port
  listener.stop(true)
  return port
}
