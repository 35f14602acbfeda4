// `npm run migrate-storage`: copies the finished files of a local store (DATA_DIR/blobs) into the
// S3 bucket the S3_* settings name, the way the S3 adapter stores them (through its BlobStore and
// Staging, never by knowing its key layout), checking each SHA-256 on the way. Run it with the
// server stopped; safe to interrupt and run again. It changes nothing in the database or in
// DATA_DIR: switching is setting STORAGE=s3 (it says so at the end).
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { checkS3 } from '../adapters/s3/check.ts'
import { openS3Storage } from '../adapters/s3/index.ts'
import { redactSecret, s3Location, type S3Settings } from '../adapters/s3/settings.ts'
import { ConfigError, loadConfig } from '../config.ts'
import type { BlobStore } from '../ports/blobs.ts'
import type { Staging } from '../ports/staging.ts'
import { StartupError } from '../startup-error.ts'

const SHA256 = /^[0-9a-f]{64}$/
/** Blobs up to this size are read whole and written with one PUT; larger ones stream through the staging (multipart). */
const WHOLE_BYTES = 8 * 1024 ** 2

interface LocalBlob {
  sha256: string
  path: string
  sizeBytes: number
}

/** Every blob file under `dir`, whichever layout (`ab/<sha>` or `ab/cd/<sha>`), in SHA-256 order. */
async function localBlobs(dir: string): Promise<LocalBlob[]> {
  const names = (await readdir(dir, { recursive: true })).map(String)
  const blobs: LocalBlob[] = []
  for (const name of names) {
    const sha256 = name.split('/').pop()!
    if (!SHA256.test(sha256)) continue
    const info = await stat(join(dir, name))
    if (info.isFile()) blobs.push({ sha256, path: join(dir, name), sizeBytes: info.size })
  }
  return blobs.sort((a, b) => a.sha256.localeCompare(b.sha256))
}

class Mismatch extends Error {}

/** The file's bytes, hashed as they pass; throws Mismatch at the end if they are not `blob.sha256`. */
async function* verified(blob: LocalBlob): AsyncGenerator<Uint8Array> {
  const hasher = new Bun.CryptoHasher('sha256')
  let bytes = 0
  for await (const piece of Bun.file(blob.path).stream()) {
    hasher.update(piece)
    bytes += piece.length
    yield piece
  }
  const actual = hasher.digest('hex')
  if (actual !== blob.sha256 || bytes !== blob.sizeBytes) throw new Mismatch(`its bytes hash to ${actual} (${bytes} bytes)`)
}

/** Copies one blob; resolves once the bucket holds it, durably, under its SHA-256. */
async function copy(blob: LocalBlob, staging: Staging, blobs: BlobStore, streaming: () => void) {
  if (blob.sizeBytes <= WHOLE_BYTES) {
    const pieces: Uint8Array[] = []
    for await (const piece of verified(blob)) pieces.push(piece)
    await blobs.write(blob.sha256, Buffer.concat(pieces), false)
    return
  }
  // Named after the blob, so that a run cut short here is cleared by the next one.
  const uploadId = `${blob.sha256.slice(0, 32)}`
  await staging.remove(uploadId)
  await staging.begin(uploadId, { totalBytes: blob.sizeBytes, maxBytes: blob.sizeBytes })
  streaming()
  try {
    const written = await staging.write(uploadId, 0, verified(blob), blob.sizeBytes)
    if (written !== blob.sizeBytes) throw new Mismatch(`only ${written} of its ${blob.sizeBytes} bytes were read`)
    await staging.seal(uploadId, blob.sizeBytes)
    await blobs.adopt(uploadId, blob.sha256, 'replace')
  } finally {
    await staging.remove(uploadId)
  }
}

export async function migrateStorage(dataDir: string, settings: S3Settings, say: (line: string) => void): Promise<{ copied: number; present: number; failed: number }> {
  const blobsDir = join(dataDir, 'blobs')
  const local = await localBlobs(blobsDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new StartupError(`there is no local store to migrate: ${blobsDir} does not exist (DATA_DIR)`)
    throw error
  })
  await checkS3(settings)
  const { staging, blobs, close } = await openS3Storage(settings, (message, context) => say(redactSecret(`${message} ${JSON.stringify(context ?? {})}`, settings)))
  const counts = { copied: 0, present: 0, failed: 0 }
  try {
    say(`${local.length} file(s) in ${blobsDir}, to ${s3Location(settings)}`)
    for (const [index, blob] of local.entries()) {
      const which = `[${index + 1}/${local.length}] ${blob.sha256} (${blob.sizeBytes} bytes)`
      // In the bucket only once copied and checked: a blob there was verified on its way in.
      if (await blobs.has(blob.sha256)) {
        counts.present++
        say(`${which}: already there`)
        continue
      }
      say(`${which}: copying`)
      try {
        await copy(blob, staging, blobs, () => say(`${which}: streaming it in parts`))
        counts.copied++
        say(`${which}: copied and verified`)
      } catch (error) {
        // The staging reports a body that failed part-way as an InterruptedWrite caused by it.
        const mismatch = [error, (error as { cause?: unknown }).cause].find((e) => e instanceof Mismatch)
        if (!mismatch) throw error
        counts.failed++
        say(`${which}: NOT copied: ${mismatch.message}; the local copy is damaged`)
      }
    }
  } finally {
    await close()
  }
  return counts
}

if (import.meta.main) {
  const say = (line: string) => console.log(line)
  try {
    const config = loadConfig()
    if (!config.s3) throw new ConfigError('set STORAGE=s3 and the S3_* settings of the bucket to copy the files to (DATA_DIR: the local store to copy from)')
    const { copied, present, failed } = await migrateStorage(config.dataDir, config.s3, say)
    say(`\nDone: ${copied} copied, ${present} already there, ${failed} damaged (not copied).`)
    if (failed > 0) {
      say('Some local files do not match their SHA-256: they are not in the bucket. Downloads of them fail on either storage.')
      process.exit(1)
    }
    say(
      [
        '',
        'Every file is in the bucket. To switch the server over:',
        '  1. keep these S3_* settings in its environment and add STORAGE=s3;',
        '  2. keep DATA_DIR (and DATABASE_URL, if set): the database stays where it is;',
        '  3. start it; once downloads work, DATA_DIR/blobs may be deleted.',
        'Uploads still in progress stay on the local disk and cannot be resumed after the switch: let them finish first.',
      ].join('\n'),
    )
  } catch (error) {
    const prefix = error instanceof ConfigError ? 'Configuration error' : error instanceof StartupError ? 'Cannot migrate' : null
    if (prefix === null) throw error
    console.error(`${prefix}: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(2)
  }
}
