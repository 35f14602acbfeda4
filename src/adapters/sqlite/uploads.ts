import { and, asc, desc, eq, inArray, isNull, like, lt, lte, or, sql } from 'drizzle-orm'
import type { Db } from './types.ts'
import { atomically, prepared } from './prepared.ts'
import { uploadChunks, uploads, type UploadState } from './schema.ts'
import { linkUsage } from './links.ts'
import { staleUpload, waitingPartial } from '../upload-filters.ts'
import { linkIdOf, type Admission, type AdmissionFigures } from '../../core/records.ts'

export type { Admission }

/** bun:sqlite reports changed rows, though drizzle types `run()` as void. */
/** Rows a statement changed (bun:sqlite reports it). */
export const changes = (result: unknown) => (result as { changes: number }).changes

export type UploadRow = typeof uploads.$inferSelect
export type NewUpload = typeof uploads.$inferInsert

export function findUpload(db: Db, id: string): UploadRow | undefined {
  return prepared(db, 'findUpload', (d) =>
    d
      .select()
      .from(uploads)
      .where(eq(uploads.id, sql.placeholder('id')))
      .prepare(),
  ).get({ id })
}

export function findUploadByClientKey(db: Db, owner: string, clientKey: string): UploadRow | undefined {
  return prepared(db, 'findUploadByClientKey', (d) =>
    d
      .select()
      .from(uploads)
      .where(and(eq(uploads.owner, sql.placeholder('owner')), eq(uploads.clientKey, sql.placeholder('clientKey'))))
      .prepare(),
  ).get({ owner, clientKey })
}

/** What an admission rule looks at for `owner`'s new upload, read on this connection (inside the creating transaction). */
export function admissionFigures(db: Db, owner: string): AdmissionFigures {
  const linkId = linkIdOf(owner)
  return { link: linkId === null ? undefined : linkUsage(db, linkId), outstanding: outstandingBytes(db, owner) }
}

const p = sql.placeholder

/** Every column of a new upload, so that one prepared statement serves every kind of upload. */
const insertUpload = (db: Db) =>
  prepared(db, 'insertUpload', (d) =>
    d
      .insert(uploads)
      .values({
        id: p('id'), protocol: p('protocol'), owner: p('owner'), clientKey: p('clientKey'), folderId: p('folderId'),
        fileName: p('fileName'), mimeType: p('mimeType'), totalBytes: p('totalBytes'), chunkBytes: p('chunkBytes'),
        chunkCount: p('chunkCount'), lengthDeferred: p('lengthDeferred'), concat: p('concat'), partIds: p('partIds'),
        metadata: p('metadata'), state: p('state'), clientAddress: p('clientAddress'), createdAt: p('createdAt'), updatedAt: p('updatedAt'),
        receivedBytes: p('receivedBytes'), receivedChunks: p('receivedChunks'), leaseOwner: p('leaseOwner'), leaseExpiresAt: p('leaseExpiresAt'),
      })
      .returning()
      .prepare(),
  )

/** Inserts the upload unless one with the same owner and client key exists; returns the row that won. */
export function insertUploadOnce(db: Db, row: NewUpload, admit?: Admission): { upload: UploadRow; created: boolean } {
  return atomically(db, () => {
    if (row.clientKey != null) {
      const existing = findUploadByClientKey(db, row.owner, row.clientKey)
      if (existing) return { upload: existing, created: false }
    }
    admit?.check(admissionFigures(db, admit.owner), { fileName: row.fileName, totalBytes: row.totalBytes, concat: row.concat ?? null })
    const upload = insertUpload(db).get({
      ...row,
      clientKey: row.clientKey ?? null,
      lengthDeferred: row.lengthDeferred ? 1 : 0,
      concat: row.concat ?? null,
      partIds: row.partIds ?? null,
      metadata: row.metadata ?? null,
      clientAddress: row.clientAddress ?? null,
      receivedBytes: row.receivedBytes ?? 0,
      receivedChunks: row.receivedChunks ?? 0,
      leaseOwner: row.leaseOwner ?? null,
      leaseExpiresAt: row.leaseExpiresAt ?? null,
    })!
    return { upload, created: true }
  })
}

export function receivedChunkIndexes(db: Db, uploadId: string): number[] {
  return db
    .select({ index: uploadChunks.chunkIndex })
    .from(uploadChunks)
    .where(eq(uploadChunks.uploadId, uploadId))
    .orderBy(asc(uploadChunks.chunkIndex))
    .all()
    .map((r) => r.index)
}

export function hasChunk(db: Db, uploadId: string, index: number): boolean {
  const statement = prepared(db, 'hasChunk', (d) =>
    d
      .select({ one: sql`1` })
      .from(uploadChunks)
      .where(and(eq(uploadChunks.uploadId, sql.placeholder('uploadId')), eq(uploadChunks.chunkIndex, sql.placeholder('index'))))
      .prepare(),
  )
  return statement.get({ uploadId, index }) !== undefined
}

/**
 * Records a durable chunk and counts it, once. Does nothing unless the upload is still receiving.
 * When this was the last chunk missing, the same commit claims the finalisation (`claimed`), so
 * exactly one caller finalises and no second commit is needed for it.
 */
export function recordChunk(db: Db, uploadId: string, index: number, sizeBytes: number, now: number, lease: Lease): { upload: UploadRow | undefined; claimed: boolean } {
  const insertChunk = prepared(db, 'insertChunk', (d) =>
    d
      .insert(uploadChunks)
      .values({ uploadId: p('uploadId'), chunkIndex: p('index'), sizeBytes: p('sizeBytes'), receivedAt: p('now') })
      .onConflictDoNothing()
      .prepare(),
  )
  const countChunk = prepared(db, 'countChunk', (d) =>
    d
      .update(uploads)
      .set({
        receivedChunks: sql`${uploads.receivedChunks} + 1`,
        receivedBytes: sql`${uploads.receivedBytes} + ${p('sizeBytes')}`,
        updatedAt: sql`${p('now')}`,
      })
      .where(eq(uploads.id, p('uploadId')))
      .returning()
      .prepare(),
  )
  return atomically(db, () => {
    const upload = findUpload(db, uploadId)
    if (!upload || upload.state !== 'receiving') return { upload, claimed: false }
    if (changes(insertChunk.run({ uploadId, index, sizeBytes, now })) === 0) return { upload, claimed: false }
    const counted = countChunk.get({ uploadId, sizeBytes, now })!
    if (!claimFinalization(db, uploadId, now, lease)) return { upload: counted, claimed: false }
    return { upload: { ...counted, state: 'finalizing' as const, leaseOwner: lease.owner, leaseExpiresAt: lease.expiresAt }, claimed: true }
  })
}

/** Moves an upload from one state to another; true only for the one caller that made the change. */
export function transition(db: Db, uploadId: string, from: UploadState[], to: UploadState, now: number, error?: string): boolean {
  const statement = prepared(db, `transition:${from.join(',')}`, (d) =>
    d
      .update(uploads)
      .set({ state: sql`${p('to')}`, updatedAt: sql`${p('now')}`, error: sql`${p('error')}` })
      .where(and(eq(uploads.id, p('uploadId')), inArray(uploads.state, from)))
      .prepare(),
  )
  return changes(statement.run({ uploadId, to, now, error: error ?? null })) === 1
}

/**
 * Who runs an upload's finalisation, and until when: an engine instance renews its lease while it
 * works; once it lapses (the instance stopped or hangs), another may take the finalisation over.
 */
export interface Lease {
  owner: string
  expiresAt: number
}

/** The single winner of "all bytes are here" gets to finalise, under its lease. */
export function claimFinalization(db: Db, uploadId: string, now: number, lease: Lease): boolean {
  const statement = prepared(db, 'claimFinalization', (d) =>
    d
      .update(uploads)
      .set({ state: 'finalizing', updatedAt: sql`${p('now')}`, leaseOwner: sql`${p('owner')}`, leaseExpiresAt: sql`${p('expiresAt')}` })
      .where(
        and(
          eq(uploads.id, p('uploadId')),
          eq(uploads.state, 'receiving'),
          eq(uploads.lengthDeferred, false),
          eq(uploads.receivedBytes, uploads.totalBytes),
          eq(uploads.receivedChunks, uploads.chunkCount),
        ),
      )
      .prepare(),
  )
  return changes(statement.run({ uploadId, now, ...lease })) === 1
}

/**
 * Takes over the finalisation of an upload whose lease lapsed or was let go (nobody runs it):
 * true for the one caller that did. A live lease, even this owner's, is never taken.
 */
export function takeOverFinalization(db: Db, uploadId: string, now: number, lease: Lease): boolean {
  const statement = prepared(db, 'takeOverFinalization', (d) =>
    d
      .update(uploads)
      .set({ leaseOwner: sql`${p('owner')}`, leaseExpiresAt: sql`${p('expiresAt')}` })
      .where(and(eq(uploads.id, p('uploadId')), eq(uploads.state, 'finalizing'), unleased()))
      .prepare(),
  )
  return changes(statement.run({ uploadId, now, ...lease })) === 1
}

/** Finalising uploads nobody holds a live lease on (a stopped instance's, or ones a passing fault held up). */
export function unleasedFinalizations(db: Db, now: number): UploadRow[] {
  const statement = prepared(db, 'unleasedFinalizations', (d) =>
    d
      .select()
      .from(uploads)
      .where(and(eq(uploads.state, 'finalizing'), unleased()))
      .prepare(),
  )
  return statement.all({ now })
}

const unleased = () => or(isNull(uploads.leaseExpiresAt), lt(uploads.leaseExpiresAt, p('now')))

/** Extends a lease its owner still holds; false once it was lost (taken over, or the upload moved on). */
export function renewLease(db: Db, uploadId: string, lease: Lease): boolean {
  const statement = prepared(db, 'renewLease', (d) =>
    d
      .update(uploads)
      .set({ leaseExpiresAt: sql`${p('expiresAt')}` })
      .where(and(eq(uploads.id, p('uploadId')), eq(uploads.state, 'finalizing'), eq(uploads.leaseOwner, p('owner'))))
      .prepare(),
  )
  return changes(statement.run({ uploadId, ...lease })) === 1
}

/** Lets go of a lease (the finalisation stopped, to be tried again by whoever comes first). */
export function releaseLease(db: Db, uploadId: string, owner: string): boolean {
  const statement = prepared(db, 'releaseLease', (d) =>
    d
      .update(uploads)
      .set({ leaseOwner: null, leaseExpiresAt: null })
      .where(and(eq(uploads.id, p('uploadId')), eq(uploads.leaseOwner, p('owner'))))
      .prepare(),
  )
  return changes(statement.run({ uploadId, owner })) === 1
}

/** Ends a finalisation in failure, only for the owner of its lease. */
export function failFinalization(db: Db, uploadId: string, owner: string, now: number, error: string): boolean {
  const statement = prepared(db, 'failFinalization', (d) =>
    d
      .update(uploads)
      .set({ state: 'failed', error: sql`${p('error')}`, updatedAt: sql`${p('now')}`, leaseOwner: null, leaseExpiresAt: null })
      .where(and(eq(uploads.id, p('uploadId')), eq(uploads.state, 'finalizing'), eq(uploads.leaseOwner, p('owner'))))
      .prepare(),
  )
  return changes(statement.run({ uploadId, owner, now, error })) === 1
}

/**
 * Advances a streamed upload's offset by `bytes` that are durable after `fromOffset`. Only
 * succeeds if the offset is still `fromOffset` and the upload is receiving.
 */
export function recordBytes(db: Db, uploadId: string, fromOffset: number, bytes: number, now: number): boolean {
  const statement = prepared(db, 'recordBytes', (d) =>
    d
      .update(uploads)
      .set({ receivedBytes: sql`${p('to')}`, updatedAt: sql`${p('now')}` })
      .where(and(eq(uploads.id, p('uploadId')), eq(uploads.state, 'receiving'), eq(uploads.receivedBytes, p('from'))))
      .prepare(),
  )
  return changes(statement.run({ uploadId, from: fromOffset, to: fromOffset + bytes, now })) === 1
}

export function declareLength(db: Db, uploadId: string, totalBytes: number, now: number): boolean {
  const result = db
    .update(uploads)
    .set({ totalBytes, lengthDeferred: false, updatedAt: now })
    .where(and(eq(uploads.id, uploadId), eq(uploads.lengthDeferred, true), lte(uploads.receivedBytes, totalBytes)))
    .run()
  return changes(result) === 1
}

export function markPartialComplete(db: Db, uploadId: string, now: number): boolean {
  const statement = prepared(db, 'markPartialComplete', (d) =>
    d
      .update(uploads)
      .set({ state: 'complete', completedAt: sql`${p('now')}`, updatedAt: sql`${p('now')}` })
      .where(and(eq(uploads.id, p('uploadId')), eq(uploads.state, 'receiving'), eq(uploads.concat, 'partial'), eq(uploads.receivedBytes, uploads.totalBytes)))
      .prepare(),
  )
  return changes(statement.run({ uploadId, now })) === 1
}

export function uploadsInState(db: Db, state: UploadState): UploadRow[] {
  return db.select().from(uploads).where(eq(uploads.state, state)).all()
}

/** See staleUpload. */
export function staleUploads(db: Db, olderThan: number, linksOlderThan = olderThan): UploadRow[] {
  return db.select().from(uploads).where(staleUpload(uploads, olderThan, linksOlderThan)).all()
}

export interface Outstanding {
  /** Of uploads through drop links. */
  links: number
  /** Of every other upload (the admin's). */
  others: number
  /** Of the given owner's uploads. */
  own: number
}

/**
 * Bytes that uploads in progress have been promised but not yet written (staging files are
 * sparse), split by who promised them.
 */
export function outstandingBytes(db: Db, owner = ''): Outstanding {
  const missing = sql`${uploads.totalBytes} - ${uploads.receivedBytes}`
  const row = prepared(db, 'outstandingBytes', (d) =>
    d
      .select({
        links: sql<number>`coalesce(sum(case when ${uploads.owner} like 'link:%' then ${missing} end), 0)`,
        others: sql<number>`coalesce(sum(case when ${uploads.owner} not like 'link:%' then ${missing} end), 0)`,
        own: sql<number>`coalesce(sum(case when ${uploads.owner} = ${p('owner')} then ${missing} end), 0)`,
      })
      .from(uploads)
      .where(and(eq(uploads.state, 'receiving'), eq(uploads.lengthDeferred, false)))
      .prepare(),
  ).get({ owner })
  return { links: row?.links ?? 0, others: row?.others ?? 0, own: row?.own ?? 0 }
}

/** Uploads a person may want to watch or clean up: everything not yet (or never to be) a file. */
export function unfinishedUploads(db: Db, limit: number): UploadRow[] {
  return db
    .select()
    .from(uploads)
    .where(or(inArray(uploads.state, ['receiving', 'finalizing', 'failed', 'expired', 'cancelled']), waitingPartial(uploads)))
    .orderBy(desc(uploads.updatedAt))
    .limit(limit)
    .all()
}

/** Bytes held in staging by uploads in progress (and finished tus partials awaiting their final). */
export function stagedBytes(db: Db): number {
  const row = db
    .select({ bytes: sql<number>`coalesce(sum(${uploads.receivedBytes}), 0)` })
    .from(uploads)
    .where(or(inArray(uploads.state, ['receiving', 'finalizing']), and(eq(uploads.concat, 'partial'), eq(uploads.state, 'complete'))))
    .get()
  return row?.bytes ?? 0
}

/** Forgets an upload that ended without a file (its staged bytes are already gone). */
export function deleteUploadRecord(db: Db, uploadId: string): boolean {
  return (
    changes(
      db
        .delete(uploads)
        .where(and(eq(uploads.id, uploadId), inArray(uploads.state, ['failed', 'expired', 'cancelled'])))
        .run(),
    ) === 1
  )
}
