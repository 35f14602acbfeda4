import { numberedName } from '../../core/library.ts'
import { and, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from './types.ts'
import { atomically, prepared } from './prepared.ts'
import { blobs, files, folders, uploadChunks, uploads } from './schema.ts'
import { changes, insertUploadOnce, type Admission, type NewUpload } from './uploads.ts'

export type FileRow = typeof files.$inferSelect
/** A folder as the library reads it (its sort key is the database's business). */
export type FolderRow = Omit<typeof folders.$inferSelect, 'sortName'>

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

/**
 * Makes a finished upload visible: counts one more reference to its blob, adds the file under a
 * free name in its folder and marks the upload complete, all or nothing.
 */
export function completeUpload(
  db: Db,
  args: { uploadId: string; folderId: number; name: string; sizeBytes: number; sha256: string; mimeType: string; now: number; leaseOwner: string },
): FileRow | null {
  const p = sql.placeholder
  const countBlob = prepared(db, 'countBlob', (d) =>
    d
      .insert(blobs)
      .values({ sha256: p('sha256'), sizeBytes: p('sizeBytes'), refCount: 1, createdAt: p('now') })
      .onConflictDoUpdate({ target: blobs.sha256, set: { refCount: sql`${blobs.refCount} + 1` } })
      .prepare(),
  )
  const nameTaken = prepared(db, 'liveFileNamed', (d) =>
    d
      .select({ id: files.id })
      .from(files)
      .where(and(eq(files.folderId, p('folderId')), eq(files.name, p('name')), isNull(files.deletedAt)))
      .prepare(),
  )
  const insertFile = prepared(db, 'insertFile', (d) =>
    d
      .insert(files)
      .values({
        folderId: p('folderId'),
        name: p('name'),
        sizeBytes: p('sizeBytes'),
        sha256: p('sha256'),
        mimeType: p('mimeType'),
        uploadId: p('uploadId'),
        createdAt: p('now'),
      })
      .returning()
      .prepare(),
  )
  const markComplete = prepared(db, 'markUploadComplete', (d) =>
    d
      .update(uploads)
      .set({ state: 'complete', sha256: sql`${p('sha256')}`, completedAt: sql`${p('now')}`, updatedAt: sql`${p('now')}`, leaseOwner: null, leaseExpiresAt: null })
      .where(and(eq(uploads.id, p('uploadId')), eq(uploads.state, 'finalizing'), eq(uploads.leaseOwner, p('leaseOwner'))))
      .prepare(),
  )
  const linkFile = prepared(db, 'linkUploadFile', (d) =>
    d
      .update(uploads)
      .set({ fileId: sql`${p('fileId')}` })
      .where(eq(uploads.id, p('uploadId')))
      .prepare(),
  )
  const forgetChunks = prepared(db, 'forgetChunks', (d) =>
    d
      .delete(uploadChunks)
      .where(eq(uploadChunks.uploadId, p('uploadId')))
      .prepare(),
  )
  return atomically(db, () => {
    // Only the holder of the finalisation's lease records the file: whoever lost it records nothing.
    if (changes(markComplete.run({ uploadId: args.uploadId, sha256: args.sha256, now: args.now, leaseOwner: args.leaseOwner })) === 0) return null
    countBlob.run(args)
    let name = args.name
    const taken = (candidate: string) => nameTaken.get({ folderId: args.folderId, name: candidate }) !== undefined
    for (let n = 1; taken(name); n++) {
      name = numberedName(args.name, n)
    }
    const file = insertFile.get({ ...args, name })!
    linkFile.run({ uploadId: args.uploadId, fileId: file.id })
    // The chunk list has served its purpose; one commit for all of it.
    forgetChunks.run({ uploadId: args.uploadId })
    return file
  })
}

/**
 * A new upload whose bytes are in the blob store already, recorded together with its file in one
 * commit (it passes through 'finalizing' inside it). Null, and nothing recorded, when an upload
 * with the same client key exists.
 */
export function insertCompleteUpload(db: Db, row: Omit<NewUpload, 'state' | 'leaseOwner' | 'leaseExpiresAt'>, sha256: string, admit?: Admission): FileRow | null {
  return atomically(db, () => {
    // Its own finalisation, within this one commit: the lease only needs to name someone.
    const leaseOwner = 'insert'
    const { upload, created } = insertUploadOnce(db, { ...row, state: 'finalizing', leaseOwner, leaseExpiresAt: row.createdAt }, admit)
    if (!created) return null
    return completeUpload(db, {
      uploadId: upload.id, folderId: upload.folderId, name: upload.fileName, sizeBytes: upload.totalBytes, sha256, mimeType: upload.mimeType, now: upload.createdAt, leaseOwner,
    })
  })
}

export function blobIsReferenced(db: Db, sha256: string): boolean {
  const statement = prepared(db, 'blobIsReferenced', (d) =>
    d
      .select({ one: sql`1` })
      .from(blobs)
      .where(eq(blobs.sha256, sql.placeholder('sha256')))
      .prepare(),
  )
  return statement.get({ sha256 }) !== undefined
}
