import type { Upload } from '../../core/records.ts'
import type { UploadEngine } from '../../engine/engine.ts'
import type { UploadPrincipal } from '../principal.ts'

/**
 * A drop link's limits for what tus learns after an upload was created: a deferred length once
 * it is declared (or, until then, the bytes sent so far), checked before the bytes are taken.
 */
export async function admitDeclaredLength(engine: UploadEngine, principal: UploadPrincipal, upload: Upload, totalBytes: number) {
  await engine.admits(principal.admit, { fileName: upload.fileName, totalBytes, concat: upload.concat, counted: true })
}

/** A final upload's limits (type by its name, its size, the link's file count), checked before its partials are read. */
export async function admitFinal(engine: UploadEngine, principal: UploadPrincipal, fileName: string, parts: Upload[]) {
  const totalBytes = parts.reduce((sum, part) => sum + part.totalBytes, 0)
  await engine.admits(principal.admit, { fileName, totalBytes, concat: 'final' })
}
