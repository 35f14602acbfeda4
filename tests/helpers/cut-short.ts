import type { TestServer } from './server.ts'

/**
 * Sends, as the signed-in admin, the head of a request and the first `sent` bytes of its body
 * over a raw connection, then (once `dropWhen` resolves) closes the connection, as a dropped
 * network does.
 */
export async function sendCutShort(
  server: Pick<TestServer, 'url' | 'cookie'>,
  { body, contentType, path = '/upload' }: { body: Uint8Array; contentType: string; path?: string },
  sent: number,
  dropWhen: () => Promise<unknown> = () => Bun.sleep(200),
) {
  const { hostname, port, host } = new URL(server.url)
  let drained = () => {}
  const socket = await Bun.connect({ hostname, port: Number(port), socket: { data() {}, drain: () => drained() } })
  const write = async (bytes: Uint8Array) => {
    while (bytes.length > 0) {
      bytes = bytes.subarray(socket.write(bytes))
      if (bytes.length > 0) await new Promise<void>((resolve) => (drained = resolve))
    }
  }
  const head = [`POST ${path} HTTP/1.1`, `Host: ${host}`, `Cookie: ${server.cookie}`, `Content-Type: ${contentType}`, `Content-Length: ${body.length}`]
  await write(new TextEncoder().encode(head.join('\r\n') + '\r\n\r\n'))
  await write(body.subarray(0, sent))
  await dropWhen()
  socket.end()
}

/** Waits (a bounded while) until `check` passes: the server handles a dropped request in its own time. */
export async function eventually(check: () => void) {
  for (let tries = 0; ; tries++) {
    try {
      return check()
    } catch (error) {
      if (tries >= 50) throw error
      await Bun.sleep(100)
    }
  }
}
