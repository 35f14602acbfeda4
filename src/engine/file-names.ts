import { HttpError } from '../errors.ts'

const MAX_NAME_BYTES = 255

/** Checks a name a person typed (new folder, rename): no paths, nothing invisible, not too long. */
export function validName(typed: string, what = 'name'): string {
  const name = typed.normalize('NFC').trim()
  if (name === '') throw new HttpError(400, `The ${what} cannot be empty`)
  if (name === '.' || name === '..') throw new HttpError(400, `"${name}" is not a usable ${what}`)
  if (name.includes('/')) throw new HttpError(400, `The ${what} cannot contain "/"`)
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new HttpError(400, `The ${what} contains control characters`)
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new HttpError(400, `The ${what} is longer than ${MAX_NAME_BYTES} bytes`)
  return name
}

/**
 * Turns the name a client sent into the name we store. Names are only ever metadata (bytes live
 * under their hash), so this is about what a person can read and re-download, not about paths.
 */
export function cleanFileName(sent: string): string {
  // Old browsers and some tools send a whole client-side path.
  const base = sent.split(/[\\/]/).pop() ?? ''
  const name = base.normalize('NFC').trim()
  if (name === '' || name === '.' || name === '..') throw new HttpError(400, 'The file needs a name')
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new HttpError(400, 'The file name contains control characters')
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new HttpError(400, `The file name is longer than ${MAX_NAME_BYTES} bytes`)
  return name
}

/** A media type from the name's extension; clients' own claims are not trusted. */
export function mimeTypeOf(name: string): string {
  const type = Bun.file(name).type
  return type === '' ? 'application/octet-stream' : type.split(';')[0]!
}
