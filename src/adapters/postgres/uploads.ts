import { and, asc, desc, eq, inArray, isNull, like, lt, lte, or, sql } from 'drizzle-orm'
import { linkIdOf, linkOwner, type Admission, type AdmissionFigures, type Completion, type FileRecord, type LinkUsage, type NewUpload, type Upload } from '../../core/records.ts'
import type { UploadRecords } from '../../ports/metadata.ts'
import { staleUpload, waitingPartial } from '../upload-filters.ts'
import { completeUploadAtOnce } from './files.ts'
import { recordColumns, rows, xactLock, type Q } from './queries.ts'
import { uploadChunks, uploads } from './schema.ts'

const UPLOAD = recordColumns(uploads)

/** Admissions are decided one at a time across the cluster: N parallel creations against a limit of k admit exactly k. */
const ADMISSION_LOCK = 'dropfold:admission'

/**
 * The upload records on PostgreSQL, on the pool (`alone`) or in a transaction. The hot operations (find, hasChunk, recordChunk with the
 * claim of the finalisation, recordBytes) are one statement each, one round trip; the others are
 * one statement too, but for creation under an admission and completion (one transaction each).
 */
export function uploadRecords(q: Q, alone: boolean): UploadRecords {
  const find = async (id: string) => (await q.select().from(uploads).where(eq(uploads.id, id)))[0] as Upload | undefined
  const findByClientKey = async (owner: string, clientKey: string) =>
    (await q.select().from(uploads).where(and(eq(uploads.owner, owner), eq(uploads.clientKey, clientKey))))[0] as Upload | undefined
  const changed = (result: { id: string }[]) => result.length === 1
  const byId = (id: string) => eq(uploads.id, id)

  return {
    find,
    findByClientKey,
    create: (upload, admit) => createUpload(q, upload, admit),
    createComplete: (items, admit) =>
      q
        .transaction(async (tx) => {
          const made: FileRecord[] = []
          for (const item of items) {
            const file = await insertCompleteUpload(tx, item.upload, item.sha256, admit)
            // One of them exists already: none is recorded.
            if (!file) throw new Unrecorded()
            made.push(file)
          }
          return made
        })
        .catch((error) => {
          if (error instanceof Unrecorded) return null
          throw error
        }),
    admissionFigures: (owner) => admissionFigures(q, owner),

    async hasChunk(uploadId, index) {
      const found = await q
        .select({ one: sql`1` })
        .from(uploadChunks)
        .where(and(eq(uploadChunks.uploadId, uploadId), eq(uploadChunks.chunkIndex, index)))
      return found.length > 0
    },
    async receivedChunks(uploadId) {
      const found = await q.select({ index: uploadChunks.chunkIndex }).from(uploadChunks).where(eq(uploadChunks.uploadId, uploadId)).orderBy(asc(uploadChunks.chunkIndex))
      return found.map((r) => r.index)
    },
    async firstMissingChunk(uploadId, from, count) {
      const [row] = await rows<{ index: number }>(
        q,
        sql`select coalesce(min(i), ${count}::int) as index from generate_series(${from}::int, ${count}::int - 1) as i
            where not exists (select 1 from upload_chunks where upload_id = ${uploadId} and chunk_index = i)`,
      )
      return row!.index
    },
    async recordChunk(uploadId, index, sizeBytes, now, lease) {
      // One statement: lock the receiving upload, insert the chunk once, count it, and when it
      // was the last one missing, move the upload to finalizing under `lease`, all in one commit.
      const complete = sql`(not u.length_deferred and u.received_bytes + ${sizeBytes}::bigint = u.total_bytes and u.received_chunks + 1 = u.chunk_count)`
      const [row] = await rows<Upload & { counted: boolean }>(
        q,
        sql`with target as (
              select id from uploads where id = ${uploadId} and state = 'receiving' for update
            ), chunk as (
              insert into upload_chunks (upload_id, chunk_index, size_bytes, received_at)
              select id, ${index}::int, ${sizeBytes}::bigint, ${now}::bigint from target
              on conflict do nothing returning upload_id
            ), counted as (
              update uploads u set
                received_chunks = u.received_chunks + 1,
                received_bytes = u.received_bytes + ${sizeBytes}::bigint,
                updated_at = ${now}::bigint,
                state = case when ${complete} then 'finalizing' else u.state end,
                lease_owner = case when ${complete} then ${lease.owner} else u.lease_owner end,
                lease_expires_at = case when ${complete} then ${lease.expiresAt}::bigint else u.lease_expires_at end
              from chunk where u.id = chunk.upload_id
              returning u.*
            )
            select ${UPLOAD}, true as counted from counted
            union all
            select ${UPLOAD}, false as counted from uploads where id = ${uploadId} and not exists (select 1 from counted)`,
      )
      if (!row) return { upload: undefined, claimed: false }
      const { counted, ...upload } = row
      return { upload, claimed: counted && upload.state === 'finalizing' }
    },
    async recordBytes(uploadId, fromOffset, bytes, now) {
      return changed(
        await q
          .update(uploads)
          .set({ receivedBytes: fromOffset + bytes, updatedAt: now })
          .where(and(byId(uploadId), eq(uploads.state, 'receiving'), eq(uploads.receivedBytes, fromOffset)))
          .returning({ id: uploads.id }),
      )
    },
    async declareLength(uploadId, totalBytes, now) {
      return changed(
        await q
          .update(uploads)
          .set({ totalBytes, lengthDeferred: false, updatedAt: now })
          .where(and(byId(uploadId), eq(uploads.lengthDeferred, true), lte(uploads.receivedBytes, totalBytes)))
          .returning({ id: uploads.id }),
      )
    },
    async markPartialComplete(uploadId, now) {
      return changed(
        await q
          .update(uploads)
          .set({ state: 'complete', completedAt: now, updatedAt: now })
          .where(and(byId(uploadId), eq(uploads.state, 'receiving'), eq(uploads.concat, 'partial'), eq(uploads.receivedBytes, uploads.totalBytes)))
          .returning({ id: uploads.id }),
      )
    },
    async transition(uploadId, from, to, now, error) {
      return changed(
        await q
          .update(uploads)
          .set({ state: to, updatedAt: now, error: error ?? null })
          .where(and(byId(uploadId), inArray(uploads.state, from)))
          .returning({ id: uploads.id }),
      )
    },
    async remove(uploadId) {
      return changed(
        await q
          .delete(uploads)
          .where(and(byId(uploadId), inArray(uploads.state, ['failed', 'expired', 'cancelled'])))
          .returning({ id: uploads.id }),
      )
    },

    async claimFinalization(uploadId, now, lease) {
      return changed(
        await q
          .update(uploads)
          .set({ state: 'finalizing', updatedAt: now, leaseOwner: lease.owner, leaseExpiresAt: lease.expiresAt })
          .where(
            and(
              byId(uploadId),
              eq(uploads.state, 'receiving'),
              eq(uploads.lengthDeferred, false),
              eq(uploads.receivedBytes, uploads.totalBytes),
              eq(uploads.receivedChunks, uploads.chunkCount),
            ),
          )
          .returning({ id: uploads.id }),
      )
    },
    async takeOverFinalization(uploadId, now, lease) {
      return changed(
        await q
          .update(uploads)
          .set({ leaseOwner: lease.owner, leaseExpiresAt: lease.expiresAt })
          .where(and(byId(uploadId), eq(uploads.state, 'finalizing'), unleased(now)))
          .returning({ id: uploads.id }),
      )
    },
    unleasedFinalizations: async (now) => (await q.select().from(uploads).where(and(eq(uploads.state, 'finalizing'), unleased(now)))) as Upload[],
    async renewLease(uploadId, lease) {
      return changed(
        await q
          .update(uploads)
          .set({ leaseExpiresAt: lease.expiresAt })
          .where(and(byId(uploadId), eq(uploads.state, 'finalizing'), eq(uploads.leaseOwner, lease.owner)))
          .returning({ id: uploads.id }),
      )
    },
    async releaseLease(uploadId, owner) {
      return changed(
        await q
          .update(uploads)
          .set({ leaseOwner: null, leaseExpiresAt: null })
          .where(and(byId(uploadId), eq(uploads.leaseOwner, owner)))
          .returning({ id: uploads.id }),
      )
    },
    async failFinalization(uploadId, owner, now, error) {
      return changed(
        await q
          .update(uploads)
          .set({ state: 'failed', error, updatedAt: now, leaseOwner: null, leaseExpiresAt: null })
          .where(and(byId(uploadId), eq(uploads.state, 'finalizing'), eq(uploads.leaseOwner, owner)))
          .returning({ id: uploads.id }),
      )
    },
    completeUpload: (completion) => completeUploadAtOnce(q, completion, alone),

    inState: async (state) => (await q.select().from(uploads).where(eq(uploads.state, state))) as Upload[],
    stale: async (olderThan, linksOlderThan) =>
      (await q.select().from(uploads).where(staleUpload(uploads, olderThan, linksOlderThan))) as Upload[],
    unfinished: async (limit) =>
      (await q
        .select()
        .from(uploads)
        .where(or(inArray(uploads.state, ['receiving', 'finalizing', 'failed', 'expired', 'cancelled']), waitingPartial(uploads)))
        .orderBy(desc(uploads.updatedAt))
        .limit(limit)) as Upload[],
    ofLink: async (linkId, limit = 200) =>
      (await q.select().from(uploads).where(eq(uploads.owner, linkOwner(linkId))).orderBy(desc(uploads.updatedAt)).limit(limit)) as Upload[],
    async stagedBytes() {
      const [row] = await q
        .select({ bytes: sql<number>`coalesce(sum(${uploads.receivedBytes}), 0)::float8` })
        .from(uploads)
        .where(or(inArray(uploads.state, ['receiving', 'finalizing']), waitingPartial(uploads)))
      return row?.bytes ?? 0
    },
  }
}

const unleased = (now: number) => or(isNull(uploads.leaseExpiresAt), lt(uploads.leaseExpiresAt, now))

class Unrecorded extends Error {}

/**
 * Inserts the upload unless one with the same owner and client key exists (then returns that
 * one). Without an admission: one statement (two when it existed). With one: a transaction that
 * takes the admission lock, reads the figures and inserts, so no other creation runs between the
 * figures and the insert.
 */
async function createUpload(q: Q, upload: NewUpload, admit?: Admission): Promise<{ upload: Upload; created: boolean }> {
  const insertOnce = async (tx: Q) => {
    const [made] = await tx
      .insert(uploads)
      .values(upload)
      .onConflictDoNothing({ target: [uploads.owner, uploads.clientKey] })
      .returning()
    if (made) return { upload: made as Upload, created: true }
    return { upload: (await findExisting(tx, upload))!, created: false }
  }
  if (!admit) return insertOnce(q)
  return q.transaction(async (tx) => {
    if (upload.clientKey != null) {
      const existing = await findExisting(tx, upload)
      if (existing) return { upload: existing, created: false }
    }
    await xactLock(tx, ADMISSION_LOCK)
    admit.check(await admissionFigures(tx, admit.owner), { fileName: upload.fileName, totalBytes: upload.totalBytes, concat: upload.concat ?? null })
    return insertOnce(tx)
  })
}

const findExisting = async (q: Q, upload: NewUpload) =>
  (await q.select().from(uploads).where(and(eq(uploads.owner, upload.owner), eq(uploads.clientKey, upload.clientKey!))))[0] as Upload | undefined

/** A whole file's upload and the file, in the transaction `q`; null (nothing recorded) when its client key is known. */
async function insertCompleteUpload(q: Q, row: Omit<NewUpload, 'state' | 'leaseOwner' | 'leaseExpiresAt'>, sha256: string, admit?: Admission): Promise<FileRecord | null> {
  // Its own finalisation, within this one commit: the lease only needs to name someone.
  const leaseOwner = 'insert'
  const { upload, created } = await createUpload(q, { ...row, state: 'finalizing', leaseOwner, leaseExpiresAt: row.createdAt }, admit)
  if (!created) return null
  return completeUploadAtOnce(q, {
    uploadId: upload.id, folderId: upload.folderId, name: upload.fileName, sizeBytes: upload.totalBytes, sha256, mimeType: upload.mimeType, now: upload.createdAt, leaseOwner,
  }, false)
}

/** A link's usage and the bytes promised by uploads in progress, in one statement. */
async function usageAndOutstanding(q: Q, owner: string) {
  const mine = sql`owner = ${owner}`
  const receiving = sql`state = 'receiving' and not length_deferred`
  const missing = sql`total_bytes - received_bytes`
  const [row] = await rows<LinkUsage & { links: number; others: number; own: number }>(
    q,
    sql`select
          count(*) filter (where ${mine} and concat is distinct from 'partial' and state = 'complete')::int as "files",
          coalesce(sum(total_bytes) filter (where ${mine} and state = 'complete'), 0)::float8 as "fileBytes",
          count(*) filter (where ${mine} and concat is distinct from 'partial' and state in ('receiving', 'finalizing'))::int as "inProgress",
          coalesce(sum(total_bytes) filter (where ${mine} and state in ('receiving', 'finalizing')), 0)::float8 as "inProgressBytes",
          coalesce(sum(${missing}) filter (where ${receiving} and owner like 'link:%'), 0)::float8 as "links",
          coalesce(sum(${missing}) filter (where ${receiving} and owner not like 'link:%'), 0)::float8 as "others",
          coalesce(sum(${missing}) filter (where ${receiving} and ${mine}), 0)::float8 as "own"
        from uploads where ${mine} or (${receiving})`,
  )
  const { files, fileBytes, inProgress, inProgressBytes, links, others, own } = row!
  return { usage: { files, fileBytes, inProgress, inProgressBytes }, outstanding: { links, others, own } }
}

/** What a link has taken in so far; uploads in progress count with their full size. */
export async function linkUsage(q: Q, linkId: number): Promise<LinkUsage> {
  return (await usageAndOutstanding(q, linkOwner(linkId))).usage
}

async function admissionFigures(q: Q, owner: string): Promise<AdmissionFigures> {
  const { usage, outstanding } = await usageAndOutstanding(q, owner)
  return { link: linkIdOf(owner) === null ? undefined : usage, outstanding }
}

export type { Completion }
