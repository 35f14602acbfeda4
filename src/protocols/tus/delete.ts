import { HttpError } from '../../errors.ts'
import { respond, type TusOptions, type UploadContext } from './shared.ts'

/**
 * DELETE (termination extension): an upload still taking bytes, or a finished partial not yet
 * assembled, goes; a finished upload is a file, managed in Dropfold instead.
 */
export async function terminate({ upload }: UploadContext, { engine }: TusOptions): Promise<Response> {
  const waitingPartial = upload.concat === 'partial' && upload.state === 'complete'
  if (upload.state !== 'receiving' && !waitingPartial) throw new HttpError(403, 'This upload is finished; manage the file in Dropfold instead')
  if (!(await engine.cancel(upload.id))) throw new HttpError(423, 'This upload is in use (being finalised, or assembled into a final upload); try again shortly')
  return respond(204, {})
}
