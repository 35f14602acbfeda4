import { connect } from 'node:net'

export interface RawResponse {
  status: number
  headers: Map<string, string>
  body: string
}

/**
 * Sends bytes exactly as given over a new TCP connection and reads the answer until the server
 * closes it: for requests fetch() cannot make (a short, empty, invalid or missing Host, an
 * absolute-form request target, HTTP/1.0). Gives up after `timeoutMs`.
 */
export function rawRequest(url: string, text: string, timeoutMs = 20_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = []
    // Not end(): Bun drops a request whose client half-closes before the answer is ready.
    const socket = connect(Number(port), hostname, () => socket.write(text))
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete answer within ${timeoutMs} ms to ${JSON.stringify(text.slice(0, 80))}`))
    }, timeoutMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(parse(Buffer.concat(chunks).toString('latin1')))
    })
  })
}

function parse(answer: string): RawResponse {
  const end = answer.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = answer.slice(0, end === -1 ? answer.length : end).split('\r\n')
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: end === -1 ? '' : answer.slice(end + 4) }
}

/** One HTTP/1.1 request with the given Host (null: no Host header), request target and body. */
export function requestText(method: string, target: string, host: string | null, headers: Record<string, string> = {}, body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`]
  if (host !== null) lines.push(`Host: ${host}`)
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  lines.push('Connection: close')
  if (body !== '' || !['GET', 'HEAD', 'OPTIONS'].includes(method)) lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  return lines.join('\r\n') + '\r\n\r\n' + body
}
