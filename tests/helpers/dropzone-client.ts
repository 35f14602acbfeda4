import type { TestServer } from './server.ts'

export type ChunkFields = {
  dzuuid: string
  dzchunkindex: number | string
  dztotalfilesize: number | string
  dzchunksize: number | string
  dztotalchunkcount: number | string
  dzchunkbyteoffset: number | string
}

/** Sends one chunk the way Dropzone does: dz fields first, then the file part. */
export function sendChunk(
  server: Pick<TestServer, 'fetch'>,
  fields: Partial<ChunkFields> & Record<string, unknown>,
  bytes: Uint8Array,
  options: { fileName?: string; folder?: number; headers?: Record<string, string> } = {},
) {
  const form = new FormData()
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) form.append(name, String(value))
  form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), options.fileName ?? 'data.bin')
  const query = options.folder ? `?folder=${options.folder}` : ''
  return server.fetch(`/upload${query}`, { method: 'POST', body: form, headers: { accept: 'application/json', ...options.headers } })
}

/** The fields Dropzone would send for chunk `index` of a file of `total` bytes. */
export function chunkFields(uuid: string, total: number, chunkSize: number, index: number): ChunkFields {
  return {
    dzuuid: uuid,
    dzchunkindex: index,
    dztotalfilesize: total,
    dzchunksize: chunkSize,
    dztotalchunkcount: Math.max(1, Math.ceil(total / chunkSize)),
    dzchunkbyteoffset: index * chunkSize,
  }
}

export function chunkOf(data: Uint8Array, chunkSize: number, index: number) {
  return data.subarray(index * chunkSize, Math.min(data.length, (index + 1) * chunkSize))
}
