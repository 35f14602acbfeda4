import { and, eq, sql } from 'drizzle-orm'
import type { Completion, FileRecord } from '../../core/records.ts'
import { numberedName } from '../../db/files.ts'
import type { Q } from './queries.ts'
import { blobs, files, uploadChunks, uploads } from './schema.ts'

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
