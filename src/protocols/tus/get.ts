import { HttpError } from '../../errors.ts'
import type { TusOptions, UploadContext } from './shared.ts'

/**
 * GET on a finished upload's URL (as tusd and @tus/server do): its file, answered exactly as the
 * file's download is (Range, ETag, Content-Disposition, and the same authorisation).
 */
export function download({ request, upload, params }: UploadContext, { serveFile }: TusOptions): Promise<Response> {
  if (upload.state !== 'complete' || upload.fileId === null || upload.concat === 'partial') {
    throw new HttpError(404, 'This upload is not a file yet; HEAD shows how far it is')
  }
  return serveFile(request, params, upload.fileId)
}
