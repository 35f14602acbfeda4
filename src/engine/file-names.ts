import { DomainError } from '../core/errors.ts'

/**
 * The one rule for names people see: file and folder names, and drop-link labels. A name must
 * read as what it is: nothing in it may reorder the text around it (`invoice\u202Egpj.exe`
 * shows as "invoiceexe.jpg") or hide between visible letters. Names a person types (new folder,
 * rename, link label) are refused with a message naming the character; names an upload brings
 * lose such characters, and are refused only when malformed (see cleanFileName).
 */

export const MAX_NAME_BYTES = 255
export const MAX_LABEL_CHARS = 200

/** C0 and C1 controls (NUL, DEL, …) and the line and paragraph separators. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u
/** Embeddings, overrides, isolates and marks that change the direction text is shown in. */
const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/u
/**
 * What shows as nothing: zero-width spaces and joiners, word joiner and invisible operators,
 * byte-order mark, soft hyphen, combining grapheme joiner, Hangul fillers, the remaining
 * deprecated format characters, interlinear annotation marks, noncharacters, and halves of
 * characters (lone surrogates). Private-use characters are kept: they show as a box, not as
 * nothing.
 */
const INVISIBLE = /[\u200b-\u200d\u2060-\u2065\u206a-\u206f\ufeff\u00ad\u034f\u115f\u1160\u3164\uffa0\u180e\ufff9-\ufffb\ufdd0-\ufdef\ufffe\uffff]|\p{Cs}/u

const ANY = (pattern: RegExp) => new RegExp(pattern.source, 'gu')

const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`

/** Refuses text with a character that hides itself or reorders what is around it. */
function refuseHidden(text: string, what: string) {
  if (CONTROL.test(text)) throw new DomainError('invalid', `The ${what} contains control characters`)
  const bidi = BIDI.exec(text)
  if (bidi) throw new DomainError('invalid', `The ${what} contains a character that changes the direction of text (${codePoint(bidi[0])})`)
  const invisible = INVISIBLE.exec(text)
  if (invisible) throw new DomainError('invalid', `The ${what} contains an invisible character (${codePoint(invisible[0])})`)
}

/** Checks a name a person typed (new folder, rename): no paths, nothing hidden, not too long. */
export function validName(typed: string, what = 'name'): string {
  const name = typed.normalize('NFC').trim()
  if (name === '') throw new DomainError('invalid', `The ${what} cannot be empty`)
  if (name === '.' || name === '..') throw new DomainError('invalid', `"${name}" is not a usable ${what}`)
  for (const separator of ['/', '\\']) {
    if (name.includes(separator)) throw new DomainError('invalid', `The ${what} cannot contain "${separator}"`)
  }
  refuseHidden(name, what)
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new DomainError('invalid', `The ${what} is longer than ${MAX_NAME_BYTES} bytes`)
  return name
}

/** Checks a drop link's label as the admin typed it; unlike a name it may contain "/". */
export function validLabel(typed: string): string {
  const label = typed.normalize('NFC').trim()
  if (label === '' || label.length > MAX_LABEL_CHARS) throw new DomainError('invalid', `The label must be 1 to ${MAX_LABEL_CHARS} characters`)
  refuseHidden(label, 'label')
  return label
}

/**
 * Turns the name a client sent into the name we store. Names are only ever metadata (bytes live
 * under their hash), so this is about what a person can read and re-download, not about paths.
 * Characters that hide themselves or reorder the text are removed (a legitimate name may carry
 * them, pasted from elsewhere); a name no file system would hold (control characters such as
 * NUL, longer than 255 bytes, empty, "." or "..") is malformed input and refused.
 */
export function cleanFileName(sent: string): string {
  // Old browsers and some tools send a whole client-side path.
  const base = sent.split(/[\\/]/).pop() ?? ''
  if (CONTROL.test(base)) throw new DomainError('invalid', 'The file name contains control characters')
  let name = base
  for (const hidden of [ANY(BIDI), ANY(INVISIBLE)]) name = name.replace(hidden, '')
  name = name.normalize('NFC').trim()
  if (name === '' || name === '.' || name === '..') throw new DomainError('invalid', 'The file needs a name')
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new DomainError('invalid', `The file name is longer than ${MAX_NAME_BYTES} bytes`)
  return name
}

/** A media type from the name's extension; clients' own claims are not trusted. */
export function mimeTypeOf(name: string): string {
  const type = Bun.file(name).type
  return type === '' ? 'application/octet-stream' : type.split(';')[0]!
}

const PATH_HEAD = 2
const PATH_TAIL = 4

/**
 * A path to show, root first: in full when short, else its first and last few names with null
 * where the rest is left out, so that a path takes the same room at any depth.
 */
export function elidedPath<T>(names: T[]): (T | null)[] {
  if (names.length <= PATH_HEAD + PATH_TAIL + 1) return names
  return [...names.slice(0, PATH_HEAD), null, ...names.slice(-PATH_TAIL)]
}
