import { and, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from './open.ts'
import { prepared } from './prepared.ts'
import { blobs, files, folders, uploadChunks, uploads } from './schema.ts'

export type FileRow = typeof files.$inferSelect
export type FolderRow = typeof folders.$inferSelect

export function findFolder(db: Db, id: number): FolderRow | undefined {
  return prepared(db, 'findFolder', (d) =>
    d
      .select()
      .from(folders)
      .where(eq(folders.id, sql.placeholder('id')))
      .prepare(),
  ).get({ id })
}

export function findFile(db: Db, id: number): FileRow | undefined {
  return prepared(db, 'findFile', (d) =>
    d
      .select()
      .from(files)
      .where(eq(files.id, sql.placeholder('id')))
      .prepare(),
  ).get({ id })
}

const MULTI_EXTENSIONS = /\.tar\.(gz|bz2|xz|zst|lz4)$/i

/** "report.pdf" → "report (1).pdf"; "a.tar.gz" → "a (1).tar.gz"; ".env" → ".env (1)". */
export function numberedName(name: string, n: number): string {
  const multi = MULTI_EXTENSIONS.exec(name)
  const dot = multi ? multi.index : name.lastIndexOf('.')
  if (dot <= 0) return `${name} (${n})`
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`
}

/**
 * Makes a finished upload visible: counts one more reference to its blob, adds the file under a
 * free name in its folder and marks the upload complete, all or nothing.
 */
export function completeUpload(
  db: Db,
  args: { uploadId: string; folderId: number; name: string; sizeBytes: number; sha256: string; mimeType: string; now: number },
): FileRow {
  return db.transaction((tx) => {
    tx.insert(blobs)
      .values({ sha256: args.sha256, sizeBytes: args.sizeBytes, refCount: 1, createdAt: args.now })
      .onConflictDoUpdate({ target: blobs.sha256, set: { refCount: sql`${blobs.refCount} + 1` } })
      .run()
    let name = args.name
    const taken = (candidate: string) =>
      tx.select({ id: files.id }).from(files).where(and(eq(files.folderId, args.folderId), eq(files.name, candidate), isNull(files.deletedAt))).get()
    for (let n = 1; taken(name); n++) {
      name = numberedName(args.name, n)
    }
    const file = tx
      .insert(files)
      .values({
        folderId: args.folderId,
        name,
        sizeBytes: args.sizeBytes,
        sha256: args.sha256,
        mimeType: args.mimeType,
        uploadId: args.uploadId,
        createdAt: args.now,
      })
      .returning()
      .get()
    tx.update(uploads)
      .set({ state: 'complete', fileId: file.id, completedAt: args.now, updatedAt: args.now })
      .where(eq(uploads.id, args.uploadId))
      .run()
    // The chunk list has served its purpose; one commit for all of it.
    tx.delete(uploadChunks).where(eq(uploadChunks.uploadId, args.uploadId)).run()
    return file
  })
}

export function blobIsReferenced(db: Db, sha256: string): boolean {
  return db.select({ one: sql`1` }).from(blobs).where(eq(blobs.sha256, sha256)).get() !== undefined
}
