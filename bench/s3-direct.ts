// The S3 rows' same-run ceiling: the same bytes sent to the same bucket by the S3 client alone
// (@aws-sdk/client-s3 configured as Dropfold configures it), a process of its own like
// bench/client.ts. Large files: one multipart upload, parts of `part` bytes, `inflight` at once.
// Small files: one PutObject each, `inflight` at once. Prints one JSON line:
// { ms, bytes, files, keys, cpuMs, peakRss }.
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3'
import { makeS3Client, type S3Settings } from '../src/adapters/s3/settings.ts'
import { pool } from './client-pool.ts'

interface Args {
  settings: S3Settings
  mode: 'multipart' | 'small'
  file: string
  size: number
  key: string
  part?: number
  inflight: number
  first?: number
  count?: number
  each?: number
}

const args = JSON.parse(process.argv[2]!) as Args
const client = makeS3Client(args.settings)
const Bucket = args.settings.bucket
const slice = async (from: number, to: number) => new Uint8Array(await Bun.file(args.file).slice(from, to).arrayBuffer())

async function main() {
  const keys: string[] = []
  let bytes = args.size
  let files = 1
  const started = performance.now()
  if (args.mode === 'multipart') {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: args.key }))
    const part = args.part!
    const count = Math.ceil(args.size / part)
    const parts: { PartNumber: number; ETag: string }[] = []
    await pool(count, args.inflight, async (i) => {
      const Body = await slice(i * part, Math.min(args.size, (i + 1) * part))
      const { ETag } = await client.send(new UploadPartCommand({ Bucket, Key: args.key, UploadId, PartNumber: i + 1, Body, ContentLength: Body.byteLength }))
      parts[i] = { PartNumber: i + 1, ETag: ETag! }
    })
    await client.send(new CompleteMultipartUploadCommand({ Bucket, Key: args.key, UploadId, MultipartUpload: { Parts: parts } }))
    keys.push(args.key)
  } else {
    files = args.count!
    bytes = files * args.each!
    await pool(files, args.inflight, async (i) => {
      const from = args.first! + i * args.each!
      const Body = await slice(from, from + args.each!)
      const Key = `${args.key}-${i}`
      await client.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength: Body.byteLength }))
      keys[i] = Key
    })
  }
  const ms = performance.now() - started
  const cpu = process.cpuUsage()
  console.log(JSON.stringify({ ms, bytes, files, keys, cpuMs: (cpu.user + cpu.system) / 1000, peakRss: process.resourceUsage().maxRSS * 1024 }))
}

main().catch((error) => {
  console.log(JSON.stringify({ error: String(error?.stack ?? error) }))
  process.exit(1)
})
