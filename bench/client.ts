// The one upload client used for every row: a separate Bun process that streams from the test
// file (Bun.file().slice() per chunk, Bun.file() for a single streamed PATCH) with N requests in
// flight, and prints one JSON line: { ms, bytes, files, uploads: [{ key, expected?, reported? }] }.
// Timing covers the first request to the last response (for Dropfold that includes finalisation).

import { pool } from './client-pool.ts'

interface Args {
  mode: 'ingest' | 'dz' | 'tus-single' | 'tus-chunks' | 'tus-concat' | 'dz-small' | 'tus-small'
  kind: 'dropfold' | 'naive' | 'flask' | 'tus-official' | 'ingest'
  base: string
  path: string
  file: string
  size: number
  cookie?: string
  chunk?: number
  inflight?: number
  parts?: number
  count?: number
  each?: number
  /** Byte offset of the first small file in the test file (each run of a small-file row gets its own bytes). */
  first?: number
  tag: string
}

interface Upload {
  key: string
  expected?: string
  reported?: string
}

const args = JSON.parse(process.argv[2]!) as Args
const cookieHeaders: Record<string, string> = args.cookie ? { cookie: args.cookie } : {}
const TUS = { 'tus-resumable': '1.0.0' }
const b64 = (s: string) => Buffer.from(s).toString('base64')
/** Where small file `i` starts in the test file. */
const smallAt = (i: number) => (args.first ?? 0) + i * args.each!

async function ok(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`)
  return res
}

function sha256Of(bytes: ArrayBuffer): string {
  return new Bun.CryptoHasher('sha256').update(bytes).digest('hex')
}

async function dzChunks(key: string, name: string, start: number, total: number, chunk: number, inflight: number, uploads: Upload[]) {
  const count = Math.max(1, Math.ceil(total / chunk))
  let reported: string | undefined
  await pool(count, inflight, async (i) => {
    const from = start + i * chunk
    const to = Math.min(start + total, from + chunk)
    const form = new FormData()
    form.append('dzuuid', key)
    form.append('dzchunkindex', String(i))
    form.append('dztotalfilesize', String(total))
    form.append('dzchunksize', String(chunk))
    form.append('dztotalchunkcount', String(count))
    form.append('dzchunkbyteoffset', String(i * chunk))
    form.append('file', Bun.file(args.file).slice(from, to), name)
    const res = await ok(await fetch(`${args.base}${args.path}`, { method: 'POST', body: form, headers: cookieHeaders }), `chunk ${i}`)
    const json = (await res.json()) as { upload?: { state: string }; file?: { sha256: string } | null }
    if (json.upload?.state === 'complete' && json.file) reported = json.file.sha256
  })
  if (args.kind === 'dropfold' && !reported) {
    const res = await ok(await fetch(`${args.base}${args.path}/${key}`, { headers: cookieHeaders }), 'status')
    const json = (await res.json()) as { upload: { state: string }; file: { sha256: string } | null }
    if (json.upload.state !== 'complete') throw new Error(`upload ${key} ended in state ${json.upload.state}`)
    reported = json.file?.sha256
  }
  uploads.push({ key, reported })
}

async function tusCreate(headers: Record<string, string>): Promise<string> {
  const res = await ok(
    await fetch(`${args.base}${args.path}`, { method: 'POST', headers: { ...TUS, ...cookieHeaders, ...headers } }),
    'tus create',
  )
  const location = res.headers.get('location')
  if (!location) throw new Error('tus create: no Location')
  return new URL(location, args.base).href
}

async function tusPatch(url: string, offset: number, body: Blob) {
  const res = await ok(
    await fetch(url, {
      method: 'PATCH',
      body,
      headers: { ...TUS, ...cookieHeaders, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
    }),
    `tus PATCH at ${offset}`,
  )
  const reached = Number(res.headers.get('upload-offset'))
  if (reached !== offset + body.size) throw new Error(`tus PATCH at ${offset}: server is at ${reached}, expected ${offset + body.size}`)
}

async function main() {
  const { file, size } = args
  const uploads: Upload[] = []
  let files = 1
  let bytes = size
  const smallExpected: string[] = []
  if (args.mode === 'dz-small' || args.mode === 'tus-small') {
    files = args.count!
    bytes = files * args.each!
    for (let i = 0; i < files; i++) {
      smallExpected.push(sha256Of(await Bun.file(file).slice(smallAt(i), smallAt(i) + args.each!).arrayBuffer()))
    }
  }
  const started = performance.now()
  switch (args.mode) {
    case 'ingest': {
      const res = await ok(await fetch(`${args.base}/`, { method: 'POST', body: Bun.file(file) }), 'ingest')
      const json = (await res.json()) as { bytes: number }
      if (json.bytes !== size) throw new Error(`ingest server counted ${json.bytes} bytes, sent ${size}`)
      break
    }
    case 'dz':
      await dzChunks(`${args.tag}`, `${args.tag}.bin`, 0, size, args.chunk!, args.inflight!, uploads)
      break
    case 'tus-single':
    case 'tus-chunks': {
      const url = await tusCreate({ 'upload-length': String(size), 'upload-metadata': `filename ${b64(`${args.tag}.bin`)}` })
      if (args.mode === 'tus-single') await tusPatch(url, 0, Bun.file(file))
      else for (let offset = 0; offset < size; offset += args.chunk!) await tusPatch(url, offset, Bun.file(file).slice(offset, Math.min(size, offset + args.chunk!)))
      uploads.push({ key: url })
      break
    }
    case 'tus-concat': {
      const n = args.parts!
      const per = Math.ceil(size / n)
      const urls: string[] = []
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const from = i * per
          const to = Math.min(size, from + per)
          urls[i] = await tusCreate({ 'upload-length': String(to - from), 'upload-concat': 'partial' })
          await tusPatch(urls[i]!, 0, Bun.file(file).slice(from, to))
        }),
      )
      const url = await tusCreate({ 'upload-concat': `final;${urls.join(' ')}`, 'upload-metadata': `filename ${b64(`${args.tag}.bin`)}` })
      uploads.push({ key: url })
      break
    }
    case 'dz-small': {
      const each = args.each!
      const perFile: Upload[][] = Array.from({ length: files }, () => [])
      await pool(files, args.inflight!, async (i) => {
        await dzChunks(`${args.tag}-${i}`, `${args.tag}-${i}.bin`, smallAt(i), each, each, 1, perFile[i]!)
      })
      perFile.forEach((u, i) => uploads.push({ ...u[0]!, expected: smallExpected[i] }))
      break
    }
    case 'tus-small': {
      const each = args.each!
      const urls: string[] = []
      await pool(files, args.inflight!, async (i) => {
        urls[i] = await tusCreate({ 'upload-length': String(each), 'upload-metadata': `filename ${b64(`${args.tag}-${i}.bin`)}` })
        await tusPatch(urls[i]!, 0, Bun.file(file).slice(smallAt(i), smallAt(i) + each))
      })
      urls.forEach((key, i) => uploads.push({ key, expected: smallExpected[i] }))
      break
    }
  }
  const ms = performance.now() - started
  console.log(JSON.stringify({ ms, bytes, files, uploads }))
}

main().catch((error) => {
  console.log(JSON.stringify({ error: String(error?.stack ?? error) }))
  process.exit(1)
})
