import { DomainError } from '../../core/errors.ts'
import type { StagingLayout } from '../../ports/staging.ts'

const MiB = 1024 * 1024
/** S3's rules: every part but the last at least 5 MiB, at most 5 GiB; at most 10,000 parts. */
export const MIN_PART_BYTES = 5 * MiB
export const MAX_PART_BYTES = 5 * 1024 * MiB
export const MAX_PARTS = 10_000
/** Parts of an upload without chunks are at least this large (fewer requests, still little memory). */
const STREAM_PART_BYTES = 8 * MiB

/**
 * The part size of an upload's multipart upload: a multiple of its chunk size (so every chunk
 * lies within one part and a chunk of at least 5 MiB is a part by itself), at least 5 MiB, and
 * large enough that the file needs at most 10,000 parts.
 */
export function partBytesFor(layout: StagingLayout): number {
  const unit = layout.chunkBytes && layout.chunkBytes > 0 ? layout.chunkBytes : MiB
  const least = layout.chunkBytes ? MIN_PART_BYTES : STREAM_PART_BYTES
  const bound = layout.totalBytes ?? layout.maxBytes
  const multiple = Math.max(Math.ceil(least / unit), Math.ceil(bound / MAX_PARTS / unit), 1)
  const partBytes = unit * multiple
  if (partBytes > MAX_PART_BYTES) throw new DomainError('too-large', `A file of ${bound} bytes in chunks of ${unit} bytes does not fit the object store's 10,000 parts`)
  return partBytes
}
