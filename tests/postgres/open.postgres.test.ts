import { SQL } from 'bun'
import { expect, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPostgres } from '../../src/adapters/postgres/open.ts'
import { blobs, folders } from '../../src/adapters/postgres/schema.ts'
import { openDatabase } from '../../src/adapters/sqlite/open.ts'
import { StartupError } from '../../src/startup-error.ts'
import { TEST_DATABASE_URL, describePostgres, freshDatabase, type TestDatabase } from '../helpers/postgres.ts'

async function withDatabase(check: (database: TestDatabase) => Promise<void>) {
  const database = await freshDatabase()
  try {
    await check(database)
  } finally {
    await database.drop()
  }
}

/** Every table's columns, by name, as SQLite has them (its schema is the reference). */
function sqliteColumns(): Record<string, string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'dropfold-schema-'))
  const db = openDatabase(join(dir, 'dropfold.db'))
  try {
    const tables = db.$client
      .query<{ name: string }, []>("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '__drizzle%'")
      .all()
    return Object.fromEntries(
      tables.map(({ name }) => [
        name,
        db.$client
          .query<{ name: string }, []>(`select name from pragma_table_info('${name}')`)
          .all()
          .map((c) => c.name)
          .sort(),
      ]),
    )
  } finally {
    db.$client.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function startupErrorOf(opening: Promise<unknown>): Promise<StartupError> {
  const error = await opening.then(
    () => null,
    (error) => error,
  )
  expect(error).toBeInstanceOf(StartupError)
  return error as StartupError
}

describePostgres('openPostgres', () => {
  test('applies the migrations: the same tables and columns as SQLite, and the root folder', () =>
    withDatabase(async ({ url }) => {
      const db = await openPostgres(url, { now: 1234 })
      try {
        const rows = await db.$client<{ table_name: string; column_name: string }[]>`
          select table_name, column_name from information_schema.columns where table_schema = 'public'`
        const columns: Record<string, string[]> = {}
        for (const row of rows) (columns[row.table_name] ??= []).push(row.column_name)
        for (const names of Object.values(columns)) names.sort()
        expect(columns).toEqual(sqliteColumns())
        expect(await db.select().from(folders)).toEqual([{ id: 1, parentId: null, name: '', createdAt: 1234, deletedAt: null, passwordHash: null, sortName: null }])
      } finally {
        await db.$client.close()
      }
    }))

  test('two instances starting at once on an empty database both start: one migrates, one root folder, ids go on from 2', () =>
    withDatabase(async ({ url }) => {
      const [a, b] = await Promise.all([openPostgres(url), openPostgres(url)])
      try {
        expect((await a.select().from(folders)).length).toBe(1)
        const [made] = await b.insert(folders).values({ parentId: 1, name: 'Photos', createdAt: 1 }).returning({ id: folders.id })
        expect(made!.id).toBe(2)
        // Opening again later finds everything done and changes nothing.
        const c = await openPostgres(url)
        expect((await c.select().from(folders)).map((f) => f.name).sort()).toEqual(['', 'Photos'])
        await c.$client.close()
      } finally {
        await Promise.all([a.$client.close(), b.$client.close()])
      }
    }))

  test('byte counts and timestamps past 2^31 and 2^32 come back as exact numbers', () =>
    withDatabase(async ({ url }) => {
      const db = await openPostgres(url)
      try {
        const blob = { sha256: 'a'.repeat(64), sizeBytes: 5 * 2 ** 40 + 7, refCount: 1, createdAt: 1_796_000_000_123 }
        await db.insert(blobs).values(blob)
        expect(await db.select().from(blobs).where(eq(blobs.sha256, blob.sha256))).toEqual([blob])
      } finally {
        await db.$client.close()
      }
    }))

  test('every connection commits synchronously, even where the server default says otherwise, and notices a dead peer in seconds', () =>
    withDatabase(async ({ url }) => {
      const name = new URL(url).pathname.slice(1)
      const admin = new SQL(url, { max: 1 })
      await admin.unsafe(`alter database ${name} set synchronous_commit = off`)
      // Proof the setting could have applied: a plain connection to that database has it off.
      const [plain] = await new SQL(url, { max: 1 })`show synchronous_commit`.then((rows: { synchronous_commit: string }[]) => rows)
      await admin.close()
      expect(plain!.synchronous_commit).toBe('off')
      const db = await openPostgres(url, { max: 3 })
      try {
        const shown = await Promise.all([1, 2, 3].map(() => db.$client.begin((tx) => tx`show synchronous_commit`)))
        expect(shown.map((rows) => rows[0].synchronous_commit)).toEqual(['on', 'on', 'on'])
        // And a dead peer is noticed in seconds, not hours (these apply on TCP connections, as here).
        const [keepalive] = await db.$client`select current_setting('tcp_keepalives_idle') as idle, current_setting('tcp_keepalives_count') as count`
        expect(keepalive).toEqual({ idle: '10', count: '3' })
      } finally {
        await db.$client.close()
      }
    }))

  test('a database that does not exist on a reachable server stops start-up with the server\'s reason', async () => {
    const url = new URL(TEST_DATABASE_URL!)
    url.pathname = `/dropfold_absent_${crypto.randomUUID().replaceAll('-', '')}`
    const error = await startupErrorOf(openPostgres(url.toString()))
    expect(error.message).toStartWith(`cannot connect to PostgreSQL at ${url.hostname}:${url.port}${url.pathname}: `)
    expect(error.message).toContain('does not exist')
  })
})

// These need no server: they must fail before reaching one.
test('a DATABASE_URL that is not a URL stops start-up with a clear message', async () => {
  expect((await startupErrorOf(openPostgres('dropfold on port 5432'))).message).toBe(
    'DATABASE_URL is not a URL: expected postgres://user:password@host:5432/database',
  )
})

test('a DATABASE_URL for another database kind stops start-up with a clear message', async () => {
  expect((await startupErrorOf(openPostgres('mysql://u:p@localhost/db'))).message).toBe(
    'DATABASE_URL must be a postgres:// URL (it starts with "mysql:"): expected postgres://user:password@host:5432/database',
  )
})

test('an unreachable server stops start-up with a message that names it, without the password', async () => {
  // A port nothing listens on: a listener bound and closed again.
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  const error = await startupErrorOf(openPostgres(`postgres://dropfold:s3cret-pw@127.0.0.1:${port}/dropfold`, { connectionTimeoutSeconds: 5 }))
  expect(error.message).toStartWith(`cannot connect to PostgreSQL at 127.0.0.1:${port}/dropfold: `)
  expect(error.message).not.toContain('s3cret-pw')
})
