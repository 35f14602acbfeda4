/**
 * Where things live in the bucket (under the configured prefix):
 *   staging/<upload id>/meta            the upload's part size and multipart upload id (JSON)
 *   staging/<upload id>/piece/<a>-<b>   bytes [a, b) not yet in a part (a tus tail, a small chunk)
 *   objects/<upload id>                 the multipart upload, and once sealed the object itself
 *   blobs/<sha256>                      a blob: an empty pointer whose metadata names its object
 *                                       (an adopted upload), or the bytes themselves (a small file)
 */
const ID = /^[a-z0-9]{16,64}$/
const SHA256 = /^[0-9a-f]{64}$/
/** Offsets are written with a fixed width so that names sort by offset. */
const WIDTH = 15

export const STAGING = 'staging/'
export const OBJECTS = 'objects/'
/** The user metadata of a pointer naming its object. */
export const TARGET = 'target'

function checkedId(uploadId: string) {
  if (!ID.test(uploadId)) throw new Error(`invalid upload id for staging: ${uploadId}`)
  return uploadId
}

export const objectName = (uploadId: string) => `${OBJECTS}${checkedId(uploadId)}`
export const metaName = (uploadId: string) => `${STAGING}${checkedId(uploadId)}/meta`
export const piecesUnder = (uploadId: string) => `${STAGING}${checkedId(uploadId)}/piece/`
export const pieceName = (uploadId: string, start: number, end: number) => `${piecesUnder(uploadId)}${String(start).padStart(WIDTH, '0')}-${String(end).padStart(WIDTH, '0')}`

export function blobName(sha256: string) {
  if (!SHA256.test(sha256)) throw new Error(`invalid sha256: ${sha256}`)
  return `blobs/${sha256}`
}

/** The byte range a piece's name says it holds, or null for a name that is no piece. */
export function pieceRange(name: string): { start: number; end: number } | null {
  const match = /\/piece\/(\d+)-(\d+)$/.exec(name)
  return match ? { start: Number(match[1]), end: Number(match[2]) } : null
}

export const isUploadId = (name: string) => ID.test(name)
