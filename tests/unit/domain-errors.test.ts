import { describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteMetadataStore } from '../../src/adapters/sqlite/metadata.ts'
import { DomainError, ERROR_KINDS } from '../../src/core/errors.ts'
import { errorResponse, refusalOf, STATUS_OF_KIND } from '../../src/http/errors.ts'

const request = (headers: Record<string, string> = {}) => new Request('http://localhost/folders/1', { headers })

function logger() {
  const lines: { message: string; context?: Record<string, unknown> }[] = []
  return { lines, log: (message: string, context?: Record<string, unknown>) => void lines.push({ message, context }) }
}

describe('domain errors become HTTP answers in one place', () => {
  test('every kind maps to one client or server error status, and the map names no other kind', () => {
    expect(Object.keys(STATUS_OF_KIND).sort()).toEqual([...ERROR_KINDS].sort())
    for (const kind of ERROR_KINDS) {
      const status = STATUS_OF_KIND[kind]
      expect(Number.isInteger(status) && status >= 400 && status <= 599).toBe(true)
      expect(refusalOf(new DomainError(kind, 'why'))!.status).toBe(status)
    }
  })

  test('the statuses clients rely on stay as they were', () => {
    expect(STATUS_OF_KIND).toMatchObject({ invalid: 400, 'not-found': 404, conflict: 409, gone: 410, 'too-large': 413, busy: 423, 'checksum-mismatch': 460, unavailable: 503, 'no-space': 507 })
  })

  test('a refusal keeps its message word for word, and a retry delay becomes Retry-After', async () => {
    const { log, lines } = logger()
    const response = errorResponse(new DomainError('unavailable', 'Try again “soon”', { retryAfterSeconds: 5 }), request(), log)
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('5')
    expect(await response.text()).toBe('Try again “soon”\n')
    expect(lines).toEqual([])
  })

  test('a client asking for JSON gets the message as {error}', async () => {
    const response = errorResponse(new DomainError('not-found', 'Folder 9 does not exist'), request({ accept: 'application/json' }), logger().log)
    expect(response.status).toBe(404)
    expect(await response.json()).toEqual({ error: 'Folder 9 does not exist' })
  })

  test('an unknown error is a bare 500: logged with its context, nothing of it reaches the client', async () => {
    for (const accept of ['text/html', 'application/json']) {
      const { log, lines } = logger()
      const secret = new TypeError('cannot read /srv/dropfold/data/secret.db')
      const response = errorResponse(secret, request({ accept }), log)
      expect(response.status).toBe(500)
      const body = await response.text()
      expect(body).toContain('Internal server error')
      expect(body).not.toContain('secret')
      expect(body).not.toContain('/srv')
      expect(body).not.toContain('TypeError')
      expect([...response.headers.keys()].filter((name) => name !== 'content-type')).toEqual([])
      // The detail was there to leak: it went to the log instead.
      expect(JSON.stringify(lines)).toContain('/srv/dropfold/data/secret.db')
    }
  })

  test('a database held by another program is a passing 503 with Retry-After: the store says so in domain words', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropfold-busy-'))
    const store = SqliteMetadataStore.open(join(dir, 'dropfold.sqlite'))
    const other = new Database(join(dir, 'dropfold.sqlite'))
    try {
      other.run('BEGIN IMMEDIATE')
      const error = await store.settings.set('k', 'v').then(() => null, (e: unknown) => e)
      expect(error).toBeInstanceOf(DomainError)
      expect((error as DomainError).kind).toBe('unavailable')
      const response = errorResponse(error, request(), logger().log)
      expect(response.status).toBe(503)
      expect(response.headers.get('retry-after')).toBe('1')
      other.run('ROLLBACK')
      // Once the other program lets go, the same write goes through.
      await store.settings.set('k', 'v')
      expect(await store.settings.get('k')).toBe('v')
    } finally {
      other.close()
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the core knows nothing of HTTP', () => {
  const src = join(import.meta.dir, '../../src')
  const CORE = ['core', 'engine', 'adapters', 'ports', 'links', 'storage'].map((folder) => join(src, folder))
  const IMPORTS_HTTP_ERROR = /\bHttpError\b|from '(\.\.\/)+errors\.ts'|from '(\.\.\/)+http\//

  function sources(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
    )
  }

  test('the check recognises an import of HttpError', () => {
    expect(IMPORTS_HTTP_ERROR.test("import { HttpError } from '../errors.ts'")).toBe(true)
    expect(IMPORTS_HTTP_ERROR.test("import { refusalOf } from '../http/errors.ts'")).toBe(true)
    expect(IMPORTS_HTTP_ERROR.test("import { DomainError } from '../core/errors.ts'")).toBe(false)
  })

  test('no file of the engine, database, links, storage or core imports HttpError or the HTTP layer', () => {
    const files = CORE.flatMap(sources)
    expect(files).toContain(join(src, 'engine', 'engine.ts'))
    const offenders = files.filter((file) => IMPORTS_HTTP_ERROR.test(readFileSync(file, 'utf8')))
    expect(offenders).toEqual([])
  })
})
