import { DomainError } from '../core/errors.ts'

/**
 * A streaming multipart/form-data reader. `request.formData()` buffers every part in memory
 * (and is slow on large parts); this yields parts one at a time and streams each body, so a
 * multi-gigabyte file part goes straight to disk.
 */
export interface MultipartPart {
  name: string
  /** Present for file parts, as sent (may contain a client-side path). */
  filename: string | null
  contentType: string | null
  /** Streams the part's bytes; must be consumed (or skipped by moving on) before the next part. */
  body(): AsyncIterable<Uint8Array>
  text(maxBytes: number): Promise<string>
}

const MAX_HEADER_BYTES = 16 * 1024
const MAX_PARTS = 1000
const CRLF = Buffer.from('\r\n')
const HEADER_END = Buffer.from('\r\n\r\n')

export function boundaryOf(contentType: string | null): string {
  const m = /^multipart\/form-data\s*;(?:.*;)?\s*boundary=(?:"([^"]+)"|([^\s;]+))/i.exec(contentType ?? '')
  const boundary = m?.[1] ?? m?.[2]
  if (!boundary || boundary.length > 70) {
    throw new DomainError('unsupported-type', 'Expected a multipart/form-data request body with a boundary')
  }
  return boundary
}

/** Where a multipart body comes from: a stream's reader, or a body read whole (see wholeBody). */
export type BodySource = Pick<ReadableStreamDefaultReader<Uint8Array>, 'read'>

/** A body read whole, as a source that hands it over in one piece (or fails as a stream would). */
export function wholeBody(bytes: Promise<Uint8Array>): BodySource {
  let given = false
  return {
    read: async () => {
      if (given) return { done: true, value: undefined }
      given = true
      return { done: false, value: await bytes }
    },
  }
}

export async function* readMultipart(source: BodySource, boundary: string): AsyncGenerator<MultipartPart> {
  const reader = new ByteReader(source)
  // The body starts with "--boundary"; pretending a CRLF came before it makes every delimiter alike.
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  reader.unshift(CRLF)
  await reader.skipUntil(delimiter)
  for (let parts = 0; ; parts++) {
    const after = await reader.take(2)
    if (after.equals(Buffer.from('--'))) return
    if (!after.equals(CRLF)) throw new DomainError('invalid', 'Malformed multipart body')
    if (parts >= MAX_PARTS) throw new DomainError('invalid', 'Too many parts in the multipart body')
    const headers = parseHeaders(await reader.readUntil(HEADER_END, MAX_HEADER_BYTES))
    const disposition = parseDisposition(headers.get('content-disposition'))
    let consumed = false
    const body = () => {
      if (consumed) throw new Error('multipart part body read twice')
      consumed = true
      return reader.streamUntil(delimiter)
    }
    yield {
      name: disposition.name,
      filename: disposition.filename,
      contentType: headers.get('content-type') ?? null,
      body,
      text: async (maxBytes) => {
        const chunks: Buffer[] = []
        let size = 0
        for await (const chunk of body()) {
          size += chunk.length
          if (size > maxBytes) throw new DomainError('invalid', `Form field "${disposition.name}" is too long`)
          chunks.push(Buffer.from(chunk))
        }
        return Buffer.concat(chunks).toString('utf8')
      },
    }
    if (!consumed) for await (const _ of body()) void _
  }
}

function parseHeaders(block: Buffer): Map<string, string> {
  const headers = new Map<string, string>()
  for (const line of block.toString('utf8').split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return headers
}

function parseDisposition(value: string | undefined): { name: string; filename: string | null } {
  if (!value || !/^form-data\b/i.test(value)) throw new DomainError('invalid', 'A multipart part lacks Content-Disposition: form-data')
  const params = new Map<string, string>()
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"([^"]*)"|([^;]*))/g
  for (let m; (m = re.exec(value)); ) {
    params.set(m[1]!.toLowerCase(), m[2] ?? m[3]!.trim())
  }
  const name = params.get('name')
  if (name === undefined) throw new DomainError('invalid', 'A multipart part has no name')
  // Browsers (per the HTML standard) escape these three characters in file names, nothing else.
  let filename = params.get('filename')?.replace(/%(22|0D|0A)/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) ?? null
  const extended = params.get('filename*')
  if (extended) {
    const m = /^utf-8''(.*)$/i.exec(extended)
    if (m) {
      try {
        filename = decodeURIComponent(m[1]!)
      } catch {
        throw new DomainError('invalid', 'A multipart part has a badly encoded filename*')
      }
    }
  }
  return { name, filename }
}

/** Buffers just enough of a stream to find delimiters, handing large runs of bytes through uncopied. */
class ByteReader {
  private buffer: Buffer = Buffer.alloc(0)
  private ended = false

  constructor(private readonly reader: BodySource) {}

  unshift(bytes: Buffer) {
    this.buffer = Buffer.concat([bytes, this.buffer])
  }

  private async fill(): Promise<void> {
    const incoming = await this.read()
    this.buffer = this.buffer.length === 0 ? incoming : Buffer.concat([this.buffer, incoming])
  }

  /** The next piece of the stream, as it came. */
  private async read(): Promise<Buffer> {
    if (this.ended) throw new DomainError('invalid', 'The multipart body ended unexpectedly')
    const { done, value } = await this.reader.read().catch(() => {
      // The connection broke (client gone, server stopping): the client's problem, not ours.
      throw new DomainError('invalid', 'The request body was interrupted')
    })
    if (done) {
      this.ended = true
      throw new DomainError('invalid', 'The multipart body ended unexpectedly')
    }
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  }

  async take(n: number): Promise<Buffer> {
    while (this.buffer.length < n) await this.fill()
    const out = this.buffer.subarray(0, n)
    this.buffer = this.buffer.subarray(n)
    return out
  }

  async skipUntil(delimiter: Buffer): Promise<void> {
    for await (const _ of this.streamUntil(delimiter)) void _
  }

  async readUntil(delimiter: Buffer, maxBytes: number): Promise<Buffer> {
    for (;;) {
      const at = this.buffer.indexOf(delimiter)
      if (at >= 0) {
        const out = this.buffer.subarray(0, at)
        this.buffer = this.buffer.subarray(at + delimiter.length)
        return out
      }
      if (this.buffer.length > maxBytes) throw new DomainError('invalid', 'Multipart part headers are too long')
      await this.fill()
    }
  }

  /** Yields the bytes before the next delimiter and consumes the delimiter. */
  async *streamUntil(delimiter: Buffer): AsyncGenerator<Uint8Array> {
    for (;;) {
      const at = this.buffer.indexOf(delimiter)
      if (at >= 0) {
        if (at > 0) yield this.buffer.subarray(0, at)
        this.buffer = this.buffer.subarray(at + delimiter.length)
        return
      }
      // Keep a tail that might be the start of a delimiter split across reads.
      const safe = this.buffer.length - (delimiter.length - 1)
      if (safe > 0) {
        const out = this.buffer.subarray(0, safe)
        this.buffer = this.buffer.subarray(safe)
        yield out
      }
      const incoming = await this.read()
      const tail = this.buffer
      if (tail.length === 0 || incoming.length < delimiter.length) {
        this.buffer = tail.length === 0 ? incoming : Buffer.concat([tail, incoming])
        continue
      }
      // Look for a delimiter that starts in the tail without copying the whole new piece: one
      // that does ends within the piece's first delimiter.length - 1 bytes.
      const joint = Buffer.concat([tail, incoming.subarray(0, delimiter.length - 1)])
      const straddling = joint.indexOf(delimiter)
      if (straddling >= 0) {
        if (straddling > 0) yield joint.subarray(0, straddling)
        this.buffer = incoming.subarray(straddling + delimiter.length - tail.length)
        return
      }
      yield tail
      this.buffer = incoming
    }
  }
}
