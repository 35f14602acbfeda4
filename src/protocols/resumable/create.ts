import { ROOT_FOLDER_ID } from '../../core/records.ts'
import { cleanFileName } from '../../engine/file-names.ts'
import { HttpError } from '../../errors.ts'
import { clientAddress } from '../../http/client-address.ts'
import type { CreateContext } from '../tus/post.ts'
import { endpointOf, fileLocation } from '../tus/shared.ts'
import { append } from './append.ts'
import { contentLength, fileNameOf, inconsistentLength, integerField, RESUMABLE_MARK, respond, uploadComplete, uploadLimit, type ResumableOptions } from './fields.ts'

/**
 * Upload creation (draft, "Upload Creation"): a request with `Upload-Complete` and the first
 * bytes (or all of them). The file is named by `Content-Disposition`; an admin chooses its folder
 * with `Dropfold-Folder` (a drop link's folder is its own). Answered `201 Created` with the upload
 * resource's `Location` and offset, and, once complete, where the stored file is. No `104`
 * interim response: Bun's server cannot send informational responses.
 */
export async function create({ request, server, params }: CreateContext, options: ResumableOptions): Promise<Response> {
  const { engine, config } = options
  const principal = await options.authorize(request, params)
  const complete = uploadComplete(request)
  const declared = contentLength(request)
  let length = integerField(request, 'upload-length')
  if (complete && declared !== null) {
    if (length !== null && length !== declared) throw inconsistentLength(`Upload-Length ${length} and Content-Length ${declared} of a complete upload disagree`)
    length = declared
  }
  const fileName = cleanFileName(fileNameOf(request))
  const folderId = principal.folderId ?? folderFrom(request.headers.get('dropfold-folder'))
  let upload = await engine.begin(
    { protocol: 'tus', owner: principal.owner, folderId, fileName, totalBytes: length, clientAddress: clientAddress(request, server, config.trustProxy), metadata: RESUMABLE_MARK },
    principal.admit,
  )
  if (upload.state === 'receiving') {
    const created = upload
    upload = await append({ request, principal, upload, offset: 0, complete }, options).catch(async (error) => {
      // Without a 104 the client never learned this upload's Location: an empty one goes.
      await engine.discardIfEmpty(created.id)
      throw error
    })
  }
  const done = upload.state !== 'receiving'
  return respond(201, {
    location: `${endpointOf(request, false)}/${upload.id}`,
    'upload-offset': String(upload.receivedBytes),
    'upload-complete': done ? '?1' : '?0',
    ...uploadLimit(options, upload),
    ...fileLocation(principal, upload),
  })
}

/** `Dropfold-Folder`: the folder id a file goes into when the principal does not fix it (root by default). */
function folderFrom(text: string | null): number {
  if (text === null || text === '') return ROOT_FOLDER_ID
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, 'Dropfold-Folder must be a folder id')
  return Number(text)
}
