// Reference for the S3 rows: the official tus server, @tus/server + @tus/s3-store, on the
// bucket the bench gives it (run under node). Same part size as Dropfold (8 MiB) and the same
// checksum setting as Dropfold's client (only where S3 requires one).
import http from 'node:http'
import { Server } from '@tus/server'
import { S3Store } from '@tus/s3-store'

const [endpoint, bucket, region] = process.argv.slice(2)
if (!endpoint || !bucket) throw new Error('usage: node bench/tus-s3.mjs <endpoint> <bucket> [region] (keys in S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)')
const datastore = new S3Store({
  partSize: 8 * 1024 * 1024,
  s3ClientConfig: {
    bucket,
    endpoint,
    region: region || 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.S3_ACCESS_KEY_ID ?? '', secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? '' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  },
})
const tus = new Server({ path: '/files', datastore })
const server = http.createServer((req, res) => tus.handle(req, res))
server.listen(0, '127.0.0.1', () => console.log(`LISTENING ${server.address().port}`))
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
