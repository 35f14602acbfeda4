import { Upload, type HttpRequest, type PreviousUpload, type UploadOptions, type UrlStorage } from 'tus-js-client'
import type { TestServer } from './server.ts'

/** What one request of tus-js-client looked like on the wire, and what came back. */
export interface TusExchange {
  method: string
  url: string
  /** Request headers tus-js-client set (the Cookie header is left out). */
  headers: Record<string, string>
  /** Bytes of the request body tus-js-client handed to its HTTP stack (0 without a body). */
  bodyBytes: number
  status?: number
  responseHeaders?: Record<string, string | undefined>
  responseBody?: string
}

const RESPONSE_HEADERS = ['location', 'upload-offset', 'upload-length', 'upload-defer-length', 'upload-concat', 'upload-expires', 'tus-resumable']

/**
 * onBeforeRequest/onAfterResponse hooks that record every request tus-js-client makes. Body
 * sizes are read by wrapping `send` of the request object handed to onBeforeRequest (that object
 * is sent right after the hook returns), so the real Node HTTP stack stays in use.
 */
export function recordExchanges(): { exchanges: TusExchange[]; hooks: Pick<UploadOptions, 'onBeforeRequest' | 'onAfterResponse'> } {
  const exchanges: TusExchange[] = []
  const byRequest = new Map<HttpRequest, TusExchange>()
  return {
    exchanges,
    hooks: {
      onBeforeRequest(req) {
        const headers: Record<string, string> = {}
        for (const name of ['Upload-Offset', 'Upload-Length', 'Upload-Defer-Length', 'Upload-Concat', 'Upload-Metadata', 'Content-Type', 'Tus-Resumable', 'X-HTTP-Method-Override']) {
          const value = req.getHeader(name)
          if (value !== undefined) headers[name] = value
        }
        const exchange: TusExchange = { method: req.getMethod(), url: req.getURL(), headers, bodyBytes: 0 }
        exchanges.push(exchange)
        byRequest.set(req, exchange)
        const send = req.send.bind(req)
        req.send = (body?: unknown) => {
          exchange.bodyBytes = body instanceof Uint8Array ? body.length : 0
          return send(body as never)
        }
      },
      onAfterResponse(req, res) {
        const exchange = byRequest.get(req)
        if (!exchange) return
        exchange.status = res.getStatus()
        exchange.responseHeaders = Object.fromEntries(RESPONSE_HEADERS.map((name) => [name, res.getHeader(name)]))
        exchange.responseBody = res.getBody()
      },
    },
  }
}

/** A UrlStorage kept in memory, shared between Upload instances of one test. */
export function memoryUrlStorage(): UrlStorage & { entries: Map<string, PreviousUpload> } {
  const entries = new Map<string, PreviousUpload>()
  let next = 0
  const matching = (prefix: string) => [...entries.entries()].filter(([key]) => key.startsWith(prefix)).map(([key, upload]) => ({ ...upload, urlStorageKey: key }))
  return {
    entries,
    async findAllUploads() {
      return matching('tus::')
    },
    async findUploadsByFingerprint(fingerprint: string) {
      return matching(`tus::${fingerprint}::`)
    },
    async removeUpload(urlStorageKey: string) {
      entries.delete(urlStorageKey)
    },
    async addUpload(fingerprint: string, upload: PreviousUpload) {
      const key = `tus::${fingerprint}::${next++}`
      entries.set(key, upload)
      return key
    },
  }
}

/** Options every test upload needs: the endpoint and the admin cookie. Retries are off unless asked for. */
export function baseOptions(server: Pick<TestServer, 'url' | 'cookie'>, extra: UploadOptions = {}): UploadOptions {
  return {
    endpoint: `${server.url}/tus/`,
    headers: { Cookie: server.cookie },
    retryDelays: [],
    ...extra,
  }
}

/** Starts `upload` (or resumes it, if `previous` is given) and settles when it succeeds or fails. */
export function run(upload: Upload, previous?: PreviousUpload): Promise<void> {
  const { promise, resolve, reject } = Promise.withResolvers<void>()
  const { onSuccess, onError } = upload.options
  upload.options.onSuccess = (payload) => {
    onSuccess?.(payload)
    resolve()
  }
  upload.options.onError = (error) => {
    onError?.(error)
    reject(error)
  }
  if (previous) upload.resumeFromPreviousUpload(previous)
  upload.start()
  return promise
}

/** The upload id: the last path segment of its URL. */
export const uploadIdOf = (url: string) => new URL(url).pathname.split('/').pop()!

/** A tus HEAD request, as a client would send it. */
export async function tusHead(server: Pick<TestServer, 'fetch'>, uploadUrl: string) {
  const response = await server.fetch(new URL(uploadUrl).pathname, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
  return {
    status: response.status,
    offset: Number(response.headers.get('upload-offset')),
    length: response.headers.get('upload-length'),
    headers: response.headers,
  }
}

/**
 * Waits until the server's offset for an upload stops moving: after an abort the server may still
 * be writing the tail of the interrupted request.
 */
export async function settledOffset(server: Pick<TestServer, 'fetch'>, uploadUrl: string, quietMs = 300, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let last = (await tusHead(server, uploadUrl)).offset
  let since = Date.now()
  while (Date.now() < deadline) {
    await Bun.sleep(50)
    const now = (await tusHead(server, uploadUrl)).offset
    if (now !== last) {
      last = now
      since = Date.now()
    } else if (Date.now() - since >= quietMs) {
      return now
    }
  }
  throw new Error(`the offset of ${uploadUrl} did not settle within ${timeoutMs} ms (last ${last})`)
}

/**
 * A TCP proxy in front of the server that cuts the connection carrying byte number `cutAfterBytes`
 * of everything the client sent (over all its connections): a network failure in the middle of a
 * request body.
 * Everything forwarded before the cut reaches the server; then both sides are closed.
 */
export async function cuttingProxy(targetUrl: string, cutAfterBytes: number, { stallMs = 0 } = {}) {
  const target = new URL(targetUrl)
  type Side = { write(data: Uint8Array): number; end(): void; flush?(): void }
  interface Pipe {
    upstream: Bun.Socket<Pipe> | null
    /** Client bytes waiting for the upstream connection (or for it to drain). */
    toServer: Uint8Array[]
    toClient: Uint8Array[]
    /** Past the cut: client bytes are dropped. */
    stalled: boolean
    /** Closing: once the queued bytes are out, the upstream side is ended too. */
    cutting: boolean
  }
  const { promise: cut, resolve: resolveCut } = Promise.withResolvers<void>()
  let didCut = false
  let sent = 0
  const sockets = new Set<Bun.Socket<Pipe>>()

  /** Writes what it can; keeps the rest queued for the drain event. */
  const pump = (socket: Side, queue: Uint8Array[]) => {
    while (queue.length > 0) {
      const head = queue[0]!
      const written = socket.write(head)
      if (written < head.length) {
        queue[0] = head.subarray(written)
        return false
      }
      queue.shift()
    }
    return true
  }

  const listener = Bun.listen<Pipe>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      async open(client) {
        sockets.add(client)
        client.data = { upstream: null, toServer: [], toClient: [], stalled: false, cutting: false }
        const pipe = client.data
        const upstream = await Bun.connect<Pipe>({
          hostname: target.hostname,
          port: Number(target.port),
          data: pipe,
          socket: {
            data(_s, chunk) {
              pipe.toClient.push(new Uint8Array(chunk))
              pump(client, pipe.toClient)
            },
            drain(s) {
              if (pump(s, pipe.toServer) && pipe.cutting) s.end()
            },
            close() {
              client.end()
            },
            error() {
              client.end()
            },
          },
        })
        sockets.add(upstream)
        pipe.upstream = upstream
        if (pump(upstream, pipe.toServer) && pipe.cutting) upstream.end()
      },
      data(client, chunk) {
        const pipe = client.data
        if (pipe.cutting || pipe.stalled) return
        let bytes = new Uint8Array(chunk)
        if (!didCut && sent + bytes.length >= cutAfterBytes) {
          didCut = true
          bytes = bytes.subarray(0, cutAfterBytes - sent)
          setTimeout(() => {
            pipe.cutting = true
            client.end()
            if (pipe.upstream && pump(pipe.upstream, pipe.toServer)) pipe.upstream.end()
            resolveCut()
          }, stallMs)
          pipe.stalled = true
        }
        sent += bytes.length
        pipe.toServer.push(bytes)
        if (pipe.upstream && pump(pipe.upstream, pipe.toServer) && pipe.cutting) pipe.upstream.end()
      },
      drain(client) {
        pump(client, client.data.toClient)
      },
      close(client) {
        if (!client.data.cutting) client.data.upstream?.end()
      },
      error(client) {
        client.data.upstream?.end()
      },
    },
  })
  return {
    url: `http://127.0.0.1:${listener.port}`,
    /** Resolves when the connection has been cut. */
    cut,
    stop() {
      for (const socket of sockets) socket.end()
      listener.stop(true)
    },
  }
}
