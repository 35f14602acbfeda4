import { numberedName } from '../../core/library.ts'
import { and, eq, getTableColumns, sql } from 'drizzle-orm'
import type { Completion, FileRecord } from '../../core/records.ts'
import { isUniqueViolation, recordColumns, rows, type Q } from './queries.ts'
import { blobs, files, uploadChunks, uploads } from './schema.ts'

const FILE = recordColumns(files)
/** As many nulls as FILE has columns: the row that says "no file" in a union with FILE. */
const NO_FILE = sql.raw(Object.keys(getTableColumns(files)).map(() => 'null').join(', '))

/** How many names ("a.bin", "a (1).bin", …) the one-statement completion tries before the slow way. */
const NAMES_AT_ONCE = 16

/**
 * The finished upload becomes a file (see completeUpload), on the pool, in one statement, one
 * round trip: the upload complete and pointing at its file, the blob counted, the file under the
 * first of its candidate names free in the folder, the chunk list gone. A statement is atomic:
 * when another instance takes that name at the same moment, it fails whole and chooses again.
 * When all the candidates are taken (a folder full of namesakes), the slow way, a transaction.
 * Inside a transaction (not `alone`), each try runs under a savepoint: three statements.
 */
export async function completeUploadAtOnce(db: Q, c: Completion, alone: boolean): Promise<FileRecord | null> {
  const candidates = Array.from({ length: NAMES_AT_ONCE }, (_, n) => (n === 0 ? c.name : numberedName(c.name, n)))
  for (let attempt = 0; attempt < 8; attempt++) {
    let found: (FileRecord & { mine: boolean })[]
    // In a transaction, under a savepoint: a statement that fails would abort all of the transaction.
    const statement = (q: Q) =>
      rows<FileRecord & { mine: boolean }>(
        q,
        sql`with mine as (
              select id from uploads where id = ${c.uploadId} and state = 'finalizing' and lease_owner = ${c.leaseOwner}
            ), free as (
              select candidate.name from unnest(${sql.param(candidates)}::text[]) with ordinality as candidate(name, n)
              where not exists (select 1 from files where folder_id = ${c.folderId} and name = candidate.name and deleted_at is null)
              order by candidate.n limit 1
            ), next as (
              select nextval(pg_get_serial_sequence('files', 'id'))::int as id from free
            ), marked as (
              update uploads set state = 'complete', sha256 = ${c.sha256}, completed_at = ${c.now}, updated_at = ${c.now},
                lease_owner = null, lease_expires_at = null, file_id = next.id
              from next where uploads.id = (select id from mine) and uploads.state = 'finalizing' and uploads.lease_owner = ${c.leaseOwner}
              returning uploads.id
            ), blob as (
              insert into blobs (sha256, size_bytes, ref_count, created_at) select ${c.sha256}, ${c.sizeBytes}, 1, ${c.now} from marked
              on conflict (sha256) do update set ref_count = blobs.ref_count + 1
              returning sha256
            ), file as (
              insert into files (id, folder_id, name, size_bytes, sha256, mime_type, upload_id, created_at)
              select next.id, ${c.folderId}, free.name, ${c.sizeBytes}, blob.sha256, ${c.mimeType}, ${c.uploadId}, ${c.now} from next, free, blob
              returning *
            ), forgotten as (
              delete from upload_chunks where upload_id in (select id from marked)
            )
            select ${FILE}, true as mine from file
            union all
            select ${NO_FILE}, exists (select 1 from mine) where not exists (select 1 from file)`,
      )
    try {
      found = alone ? await statement(db) : await db.transaction(statement)
    } catch (error) {
      // Another completion took the name between this statement's look and its insert: nothing was written.
      if (isUniqueViolation(error)) continue
      throw error
    }
    const [row] = found
    if (!row?.mine) return null
    if (row.id !== null) {
      const { mine: _, ...file } = row
      return file
    }
    break
  }
  return db.transaction((tx) => completeUpload(tx, c))
}

/**
 * The finished upload becomes a file, in the transaction `q`: only for the owner of its lease
 * (null, nothing written, otherwise); one more reference to its blob; the file under the first
 * free name in its folder; the chunk list forgotten.
 */
export async function completeUpload(q: Q, c: Completion): Promise<FileRecord | null> {
  const marked = await q
    .update(uploads)
    .set({ state: 'complete', sha256: c.sha256, completedAt: c.now, updatedAt: c.now, leaseOwner: null, leaseExpiresAt: null })
    .where(and(eq(uploads.id, c.uploadId), eq(uploads.state, 'finalizing'), eq(uploads.leaseOwner, c.leaseOwner)))
    .returning({ id: uploads.id })
  if (!marked.length) return null
  // A purge deleting this blob's row at the same moment makes the upsert insert it anew, counted once.
  await q
    .insert(blobs)
    .values({ sha256: c.sha256, sizeBytes: c.sizeBytes, refCount: 1, createdAt: c.now })
    .onConflictDoUpdate({ target: blobs.sha256, set: { refCount: sql`${blobs.refCount} + 1` } })
  const file = await insertUnderFreeName(q, c.name, (name) => ({
    folderId: c.folderId, name, sizeBytes: c.sizeBytes, sha256: c.sha256, mimeType: c.mimeType, uploadId: c.uploadId, createdAt: c.now,
  }))
  await q.update(uploads).set({ fileId: file.id }).where(eq(uploads.id, c.uploadId))
  // The chunk list has served its purpose.
  await q.delete(uploadChunks).where(eq(uploadChunks.uploadId, c.uploadId))
  return file
}

/**
 * Inserts a file under `name`, or "name (1)", "name (2)"… when taken: the insert itself finds
 * out (the unique index of live names), so two instances naming files in one folder at once
 * never take the same name; the second waits for the first and moves on to the next number.
 */
export async function insertUnderFreeName(q: Q, name: string, row: (name: string) => typeof files.$inferInsert): Promise<FileRecord> {
  for (let n = 0; ; n++) {
    const [file] = await q
      .insert(files)
      .values(row(n === 0 ? name : numberedName(name, n)))
      .onConflictDoNothing({ target: [files.folderId, files.name], where: sql`deleted_at is null` })
      .returning()
    if (file) return file
  }
}
