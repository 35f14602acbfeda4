// Reference: the obvious Bun handler for Dropzone chunks. Buffers the whole multipart body
// (req.formData()), writes the chunk at dzchunkbyteoffset, fdatasyncs, answers. No hashing,
// no database, no validation beyond what is needed to write.
import { open } from 'node:fs/promises'
import { constants } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
if (!dir) throw new Error('usage: bun bench/naive-server.ts <dir>')

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  maxRequestBodySize: 1024 ** 3,
  async fetch(req) {
    if (req.method !== 'POST' || new URL(req.url).pathname !== '/upload') return new Response('not found', { status: 404 })
    const form = await req.formData()
    const id = String(form.get('dzuuid') ?? '')
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(id)) return Response.json({ error: 'bad dzuuid' }, { status: 400 })
    const offset = Number(form.get('dzchunkbyteoffset') ?? 0)
    const file = form.get('file')
    if (!(file instanceof Blob)) return Response.json({ error: 'no file' }, { status: 400 })
    const bytes = new Uint8Array(await file.arrayBuffer())
    const fh = await open(join(dir, id), constants.O_WRONLY | constants.O_CREAT, 0o644)
    try {
      let done = 0
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, offset + done)
        done += bytesWritten
      }
      await fh.datasync()
    } finally {
      await fh.close()
    }
    return Response.json({ ok: true, bytes: bytes.byteLength })
  },
})
console.log(`LISTENING ${server.port}`)
