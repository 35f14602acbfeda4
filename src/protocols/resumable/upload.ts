import type { Upload } from '../../core/records.ts'
import { HttpError } from '../../errors.ts'
import type { UploadPrincipal } from '../principal.ts'
import { fileLocation } from '../tus/shared.ts'
import { append } from './append.ts'
import { completedUpload, contentLength, inconsistentLength, integerField, isPartialUpload, PARTIAL_UPLOAD, RESUMABLE_MARK, respond, uploadComplete, uploadLimit, type ResumableOptions } from './fields.ts'

/** What the handlers of an upload resource (HEAD, PATCH, DELETE) are given. */
export interface UploadContext {
  request: Request
  upload: Upload
  principal: UploadPrincipal
}

const UPLOAD_ID = /^[a-z0-9]{32}$/

/** The caller's own upload made through this protocol: 404 for anyone else's, 410 once it is gone. */
export async function ownUpload({ engine }: ResumableOptions, principal: UploadPrincipal, id: string): Promise<Upload> {
  const upload = UPLOAD_ID.test(id) ? await engine.find(id) : undefined
  if (!upload || upload.owner !== principal.owner || upload.metadata !== RESUMABLE_MARK) throw new HttpError(404, 'No such upload')
  if (['expired', 'cancelled', 'failed'].includes(upload.state)) throw new HttpError(410, `This upload is ${upload.state}`)
  return upload
}

const isComplete = (upload: Upload) => upload.state !== 'receiving'

/** Where the upload stands, for every answer about it. */
function state(options: ResumableOptions, { upload, principal }: UploadContext): Record<string, string> {
  const headers: Record<string, string> = {
    'upload-offset': String(upload.receivedBytes),
    'upload-complete': isComplete(upload) ? '?1' : '?0',
    ...uploadLimit(options, upload),
    ...fileLocation(principal, upload),
  }
  if (!upload.lengthDeferred) headers['upload-length'] = String(upload.totalBytes)
  return headers
}

/** Offset retrieval (draft, "Offset Retrieval"): never cached. */
export function head(context: UploadContext, options: ResumableOptions): Response {
  return respond(204, { ...state(options, context), 'cache-control': 'no-store' })
}

/**
 * Upload append (draft, "Upload Append"): `application/partial-upload` content at the upload's
 * offset (409 with the right one otherwise). A completed upload is never modified.
 */
export async function patch(context: UploadContext, options: ResumableOptions): Promise<Response> {
  const { request, upload, principal } = context
  if (!isPartialUpload(request)) throw new HttpError(415, `Content-Type must be ${PARTIAL_UPLOAD}`, { 'accept-patch': PARTIAL_UPLOAD })
  const offset = integerField(request, 'upload-offset')
  if (offset === null) throw new HttpError(400, 'Upload-Offset is required')
  const complete = uploadComplete(request)
  if (isComplete(upload)) {
    if ((contentLength(request) ?? 1) > 0) throw inconsistentLength('The upload is already completed; nothing can be appended')
    throw completedUpload()
  }
  const current = await append({ request, principal, upload, offset, complete }, options)
  const answer = state(options, { ...context, upload: current })
  return respond(isComplete(current) ? 200 : 204, answer)
}

/** Upload cancellation (draft, "Upload Cancellation"): an upload still taking bytes goes; a finished one is a file, managed in Dropfold. */
export async function cancel({ upload }: UploadContext, { engine }: ResumableOptions): Promise<Response> {
  if (isComplete(upload)) throw new HttpError(403, 'This upload is complete; manage the file in Dropfold instead')
  if (!(await engine.cancel(upload.id))) throw new HttpError(423, 'This upload is in use; try again shortly')
  return respond(204, {})
}
