import { afterEach } from 'bun:test'
import http from 'node:http'
import { startCluster, type Cluster, type ClusterOptions } from '../helpers/cluster.ts'

/** For a test file whose tests each start their own cluster: stopped after the test whatever happened. */
export function clusterPerTest() {
  let cluster: Cluster | undefined
  afterEach(async () => {
    await cluster?.stop()
    cluster = undefined
  })
  return async (options: ClusterOptions = {}) => {
    cluster = await startCluster(options)
    return cluster
  }
}

export interface PlainResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/**
 * One HTTP request from a chosen loopback address (127.0.0.0/8 is all ours), so that the address
 * the server records can be told apart from nginx's own (127.0.0.1). `body` pieces are written
 * one after the other, each after `gapMs` (a slow client; `onLastPiece` is called just before the
 * last is written); a closed connection is answered as status 0 with the error in `body`.
 */
export function requestFrom(
  localAddress: string,
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: Uint8Array[]; gapMs?: number; onLastPiece?: () => void },
): Promise<PlainResponse> {
  const target = new URL(url)
  const pieces = init.body ?? []
  const length = pieces.reduce((sum, piece) => sum + piece.length, 0)
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: target.hostname,
        port: Number(target.port),
        path: target.pathname + target.search,
        method: init.method,
        localAddress,
        headers: { ...init.headers, ...(pieces.length > 0 ? { 'content-length': String(length) } : {}) },
      },
      (response) => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (text: string) => (body += text))
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
        response.on('error', (error) => resolve({ status: 0, headers: {}, body: String(error) }))
      },
    )
    request.on('error', (error) => resolve({ status: 0, headers: {}, body: String(error) }))
    void (async () => {
      for (const [i, piece] of pieces.entries()) {
        if (i > 0 && init.gapMs) await Bun.sleep(init.gapMs)
        if (request.destroyed) return
        if (i === pieces.length - 1) init.onLastPiece?.()
        request.write(piece)
      }
      request.end()
    })()
  })
}

/** A multipart body as a browser or `curl -F` sends it, as bytes and its content type. */
export async function multipartBody(form: FormData) {
  const response = new Response(form)
  // Read before the body: Bun forgets it once the body has been consumed.
  const contentType = response.headers.get('content-type')!
  return { bytes: new Uint8Array(await response.arrayBuffer()), contentType }
}
