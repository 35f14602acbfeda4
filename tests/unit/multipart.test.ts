import { describe, expect, test } from 'bun:test'
import { boundaryOf, readMultipart } from '../../src/protocols/multipart.ts'
import { randomData } from '../helpers/data.ts'

/** Feeds `bytes` to the parser in pieces of the given sizes, to cross every delimiter boundary. */
function streamOf(bytes: Uint8Array, pieceSize: number) {
  let at = 0
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close()
      controller.enqueue(bytes.slice(at, at + pieceSize))
      at += pieceSize
    },
  }).getReader()
}

async function parse(bytes: Uint8Array, boundary: string, pieceSize: number) {
  const parts: { name: string; filename: string | null; data: Uint8Array }[] = []
  for await (const part of readMultipart(streamOf(bytes, pieceSize), boundary)) {
    const chunks: Uint8Array[] = []
    for await (const chunk of part.body()) chunks.push(chunk.slice())
    parts.push({ name: part.name, filename: part.filename, data: new Uint8Array(Buffer.concat(chunks)) })
  }
  return parts
}

describe('streaming multipart reader', () => {
  test.each([1, 3, 17, 64, 4096, 1 << 20])('finds fields and file bytes when the body arrives in %i-byte pieces', async (pieceSize) => {
    const file = randomData(20_000)
    const form = new FormData()
    form.append('dzuuid', 'abc')
    form.append('file', new Blob([file]), 'Grüße.bin')
    const request = new Request('http://x/', { method: 'POST', body: form })
    const boundary = boundaryOf(request.headers.get('content-type'))
    const body = new Uint8Array(await request.arrayBuffer())
    const parts = await parse(body, boundary, pieceSize)
    expect(parts.map((p) => [p.name, p.filename])).toEqual([
      ['dzuuid', null],
      ['file', 'Grüße.bin'],
    ])
    expect(new TextDecoder().decode(parts[0]!.data)).toBe('abc')
    expect(parts[1]!.data).toEqual(file)
  })

  test('a delimiter split across two pieces at any point is found, whatever the piece size', async () => {
    const boundary = 'b0undary'
    const file = randomData(1000)
    const head = new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n\r\n`)
    const tail = new TextEncoder().encode(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="after"\r\n\r\nyes\r\n--${boundary}--\r\n`)
    const body = new Uint8Array(Buffer.concat([head, file, tail]))
    // Piece sizes from one below the delimiter's length to well above: the delimiter after the
    // file lands at every offset of a piece boundary at least once.
    for (let pieceSize = 11; pieceSize < 90; pieceSize++) {
      const parts = await parse(body, boundary, pieceSize)
      expect(parts.map((p) => p.name)).toEqual(['file', 'after'])
      expect(parts[0]!.data).toEqual(file)
      expect(new TextDecoder().decode(parts[1]!.data)).toBe('yes')
    }
  })

  test('file bytes that contain the boundary minus its leading CRLF are kept intact', async () => {
    const boundary = 'XyZ'
    const tricky = new TextEncoder().encode('a--XyZ\n--XyZ\r-XyZ\r\n-XyZ end')
    const head = new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n\r\n`)
    const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`)
    const parts = await parse(new Uint8Array(Buffer.concat([head, tricky, tail])), boundary, 5)
    expect(parts[0]!.data).toEqual(tricky)
  })

  test('a body cut off in the middle of a part is an error, not a short file', async () => {
    const head = new TextEncoder().encode('--b\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n\r\nsome bytes')
    expect(parse(head, 'b', 4)).rejects.toThrow(/ended unexpectedly/)
  })

  test('filename* (RFC 5987) wins over filename', async () => {
    const body = new TextEncoder().encode(
      `--b\r\nContent-Disposition: form-data; name="file"; filename="fallback.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\nx\r\n--b--\r\n`,
    )
    expect((await parse(body, 'b', 100))[0]!.filename).toBe('€ rates.txt')
  })

  test('content types without a boundary are refused', () => {
    expect(() => boundaryOf('application/json')).toThrow(/multipart\/form-data/)
    expect(() => boundaryOf('multipart/form-data')).toThrow(/boundary/)
    expect(boundaryOf('multipart/form-data; boundary="a b"')).toBe('a b')
  })
})
