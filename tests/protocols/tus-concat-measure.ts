/**
 * Measures a tus final POST over two partial uploads of `MB` MiB each (default 100, 200 MiB in
 * all): how long the POST takes to answer, and how long until the final upload is a file.
 * `bun tests/protocols/tus-concat-measure.ts [MB]`
 */
import { startTestServer } from '../helpers/server.ts'

const mib = Number(process.argv[2] ?? 100)
const TUS = { 'tus-resumable': '1.0.0' }
const server = await startTestServer({ MAX_CHUNK_SIZE: '512M' })
try {
  const partials: string[] = []
  const bytes = new Uint8Array(mib * 1024 * 1024).map((_, i) => i % 251)
  for (let i = 0; i < 2; i++) {
    const created = await server.fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-length': String(bytes.length), 'upload-concat': 'partial' } })
    const location = created.headers.get('location')!
    const patched = await server.fetch(location, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, body: bytes })
    if (patched.status !== 204) throw new Error(`PATCH ${patched.status}`)
    partials.push(location)
  }
  const started = performance.now()
  const final = await server.fetch('/tus/', { method: 'POST', headers: { ...TUS, 'upload-concat': `final;${partials.join(' ')}`, 'upload-metadata': `filename ${btoa('big.bin')}` } })
  const answered = performance.now() - started
  const location = final.headers.get('location')!
  let offset = ''
  for (;;) {
    const head = await server.fetch(location, { method: 'HEAD', headers: TUS })
    if (head.headers.get('dropfold-file-url')) break
    offset = head.headers.get('upload-offset') ?? ''
    await Bun.sleep(20)
  }
  const done = performance.now() - started
  console.log(`${2 * mib} MiB final POST: answered ${final.status} in ${answered.toFixed(0)} ms (offset ${final.headers.get('upload-offset')}), a file after ${done.toFixed(0)} ms (last offset seen ${offset})`)
} finally {
  await server.stop()
}
