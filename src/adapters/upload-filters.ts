import { and, eq, like, lt, or, type AnyColumn, type SQL } from 'drizzle-orm'

/**
 * Which uploads a rule selects, written once for both dialects' `uploads` tables (drizzle's
 * operators build the same SQL over either's columns).
 */
interface UploadColumns {
  state: AnyColumn
  concat: AnyColumn
  owner: AnyColumn
  updatedAt: AnyColumn
}

/** A finished tus partial upload whose bytes wait for a final upload to use them. */
export const waitingPartial = (u: UploadColumns): SQL => and(eq(u.concat, 'partial'), eq(u.state, 'complete'))!

/**
 * Uploads in progress, and finished partials no final upload has used, idle since before
 * `olderThan` (since `linksOlderThan` for drop links' uploads).
 */
export const staleUpload = (u: UploadColumns, olderThan: number, linksOlderThan: number): SQL =>
  and(
    or(eq(u.state, 'receiving'), waitingPartial(u)),
    or(lt(u.updatedAt, olderThan), and(like(u.owner, 'link:%'), lt(u.updatedAt, linksOlderThan))),
  )!
