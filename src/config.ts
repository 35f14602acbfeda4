import { resolve } from 'node:path'
import { BlockList, isIPv4, isIPv6 } from 'node:net'

/**
 * Which X-Forwarded-For entries to believe: none (`false`), the n-th from the right (n proxies
 * of ours in front), or the right-most one not inside the proxies' ranges.
 */
export type TrustProxy = false | { hops: number } | { proxies: BlockList }

/** Where and how Dropfold keeps its bytes in an S3-compatible bucket (STORAGE=s3). */
export interface S3Settings {
  /** The service's URL: Ceph RGW, MinIO, R2, … or Amazon S3's (https://s3.<region>.amazonaws.com). */
  endpoint: string
  bucket: string
  region: string
  accessKeyId: string
  /** Never log it, never put it in a message: `redactSecret` removes it from text that might. */
  secretAccessKey: string
  /** bucket in the path (`endpoint/bucket/key`) rather than in the host name (`bucket.endpoint/key`). */
  forcePathStyle: boolean
  /** What every key Dropfold writes starts with: "" or a path ending in "/". */
  prefix: string
}

/** Every setting Dropfold reads, parsed and validated once. */
export interface Config {
  port: number
  host: string
  dataDir: string
  /**
   * PostgreSQL for everything the server remembers (several instances may share it and one
   * DATA_DIR); null: SQLite in DATA_DIR. Holds a password: never log it (describe it without).
   */
  databaseUrl: string | null
  /** Plain admin password from the environment; when absent one is generated and only its hash kept. */
  adminPassword: string | null
  maxFileBytes: number
  /** Chunk size our upload page asks Dropzone to use. */
  chunkBytes: number
  /** Largest single chunk the server accepts. */
  maxChunkBytes: number
  /** Uploads must leave at least this much free space on the data volume. */
  minFreeBytes: number
  /** An unfinished upload with no activity for this long expires and its staged bytes are freed. */
  uploadTtlMs: number
  /** The same for uploads through a drop link (no byte received for this long); shorter. */
  linkUploadTtlMs: number
  /**
   * What one drop link's unfinished uploads may reserve together (bytes declared but not yet
   * received): a fixed number of bytes, or a share of the space free for uploads.
   */
  linkReserveMax: { bytes: number } | { share: number }
  /** Bytes of small upload requests held in memory at once, across all requests. */
  uploadMemoryBytes: number
  sessionTtlMs: number
  /** Take the client address from X-Forwarded-For (only behind a reverse proxy you control). */
  trustProxy: TrustProxy
  /** Set the Secure flag on cookies (serve over HTTPS). */
  secureCookies: boolean
  /** Trashed files and folders are deleted for good after this many days. */
  trashRetentionDays: number
  /** Origins whose pages may call the tus endpoint (CORS); empty: same origin only. */
  tusCorsOrigins: string[]
  /** Where uploads in progress and finished files live: DATA_DIR (`local`) or an S3-compatible bucket. */
  storage: 'local' | 's3'
  /** The bucket's settings when `storage` is `s3`, else null. Holds the secret key: never log it. */
  s3: S3Settings | null
}

export class ConfigError extends Error {}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Parses "512", "8M", "8MiB", "20G", "1.5T" into bytes (binary units). */
export function parseBytes(text: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (!m) throw new ConfigError(`${name} must be a size such as 512M or 20G, got "${text}"`)
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!)
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(`${name} is too large`)
  return bytes
}

function parseInteger(text: string, name: string, min: number, max: number): number {
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${text}"`)
  }
  return n
}

/** "50%" (a share of the space free for uploads) or a size such as "20G". */
function parseReserve(text: string, name: string): Config['linkReserveMax'] {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text)
  if (!m) return { bytes: parseBytes(text, name) }
  const share = Number(m[1]) / 100
  if (!(share > 0 && share <= 1)) throw new ConfigError(`${name} must be a share from 1% to 100% or a size such as 20G, got "${text}"`)
  return { share }
}

function parseBoolean(text: string, name: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true
  if (/^(0|false|no|off)$/i.test(text)) return false
  throw new ConfigError(`${name} must be true or false, got "${text}"`)
}

function parseTrustProxy(text: string): TrustProxy {
  if (/^(0|false|no|off)$/i.test(text)) return false
  if (/^(true|yes|on)$/i.test(text)) return { hops: 1 }
  if (/^[1-9]\d?$/.test(text)) return { hops: Number(text) }
  const proxies = text.includes('.') || text.includes(':') ? parseProxyRanges(text) : null
  if (proxies) return { proxies }
  throw new ConfigError(
    `TRUST_PROXY must be true or false, a number of proxies (1, 2, …) or the proxies' addresses (10.0.0.0/8, ::1), got "${text}"`,
  )
}

/** "10.0.0.0/8, 192.168.1.7, ::1/128" as a set of ranges; null when an entry is not an address or range. */
function parseProxyRanges(text: string): BlockList | null {
  const ranges = new BlockList()
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const [address = '', prefix, extra] = entry.split('/')
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null
    if (family === null || extra !== undefined) return null
    const bits = family === 'ipv4' ? 32 : 128
    if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits)) return null
    ranges.addSubnet(address, prefix === undefined ? bits : Number(prefix), family)
  }
  return ranges
}

function parseOrigins(text: string): string[] {
  const origins = text.split(',').map((o) => o.trim()).filter(Boolean)
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`TUS_CORS_ORIGINS must be * or origins such as https://example.com, got "${origin}"`)
    }
  }
  return origins
}

/** The S3_* settings, checked for what can be checked without asking the store (check.ts does the rest at start-up). */
function parseS3(get: (name: string) => string | undefined): S3Settings {
  const required = (name: string) => {
    const value = get(name)
    if (value === undefined) throw new ConfigError(`STORAGE=s3 needs ${name}`)
    return value
  }
  const endpoint = required('S3_ENDPOINT')
  let url: URL | null = null
  try {
    url = new URL(endpoint)
  } catch {}
  if (!url || !/^https?:$/.test(url.protocol) || url.username || url.password || url.search || url.hash) {
    throw new ConfigError(`S3_ENDPOINT must be a URL such as https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:7480, got "${endpoint}"`)
  }
  const bucket = required('S3_BUCKET')
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    throw new ConfigError(`S3_BUCKET must be a bucket name (3 to 63 lower-case letters, digits, dots and hyphens), got "${bucket}"`)
  }
  const prefix = (get('S3_PREFIX') ?? '').replace(/^\/+|\/+$/g, '')
  const badPart = (part: string) => part === '' || part === '.' || part === '..' || /[\x00-\x1f\x7f\\]/.test(part)
  if (prefix !== '' && prefix.split('/').some(badPart)) {
    throw new ConfigError(`S3_PREFIX must be a path such as dropfold or teams/dropfold, got "${get('S3_PREFIX')}"`)
  }
  return {
    endpoint,
    bucket,
    region: get('S3_REGION') ?? 'us-east-1',
    accessKeyId: required('S3_ACCESS_KEY_ID'),
    secretAccessKey: required('S3_SECRET_ACCESS_KEY'),
    // Path style is what self-hosted stores answer without DNS set up for every bucket (Amazon S3 takes both).
    forcePathStyle: parseBoolean(get('S3_FORCE_PATH_STYLE') ?? 'true', 'S3_FORCE_PATH_STYLE'),
    prefix: prefix === '' ? '' : `${prefix}/`,
  }
}

function parseStorage(text: string): Config['storage'] {
  if (text === 'local' || text === 's3') return text
  throw new ConfigError(`STORAGE must be local or s3, got "${text}"`)
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const get = (name: string) => {
    const value = env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  const bytes = (name: string, fallback: string) => parseBytes(get(name) ?? fallback, name)
  const config: Config = {
    port: parseInteger(get('PORT') ?? '3000', 'PORT', 0, 65535),
    host: get('HOST') ?? '127.0.0.1',
    dataDir: resolve(get('DATA_DIR') ?? './data'),
    databaseUrl: get('DATABASE_URL') ?? null,
    adminPassword: get('ADMIN_PASSWORD') ?? null,
    maxFileBytes: bytes('MAX_FILE_SIZE', '100G'),
    chunkBytes: bytes('CHUNK_SIZE', '8M'),
    maxChunkBytes: bytes('MAX_CHUNK_SIZE', '64M'),
    minFreeBytes: bytes('MIN_FREE_SPACE', '256M'),
    uploadTtlMs: parseInteger(get('UPLOAD_TTL_HOURS') ?? '168', 'UPLOAD_TTL_HOURS', 1, 100_000) * 3_600_000,
    linkUploadTtlMs: parseInteger(get('LINK_UPLOAD_TTL_HOURS') ?? '24', 'LINK_UPLOAD_TTL_HOURS', 1, 100_000) * 3_600_000,
    linkReserveMax: parseReserve(get('LINK_RESERVE_MAX') ?? '50%', 'LINK_RESERVE_MAX'),
    uploadMemoryBytes: bytes('UPLOAD_MEMORY_BUDGET', '64M'),
    sessionTtlMs: parseInteger(get('SESSION_TTL_HOURS') ?? '168', 'SESSION_TTL_HOURS', 1, 100_000) * 3_600_000,
    trustProxy: parseTrustProxy(get('TRUST_PROXY') ?? 'false'),
    secureCookies: parseBoolean(get('SECURE_COOKIES') ?? 'false', 'SECURE_COOKIES'),
    tusCorsOrigins: parseOrigins(get('TUS_CORS_ORIGINS') ?? ''),
    trashRetentionDays: parseInteger(get('TRASH_RETENTION_DAYS') ?? '30', 'TRASH_RETENTION_DAYS', 0, 36_500),
    storage: parseStorage(get('STORAGE') ?? 'local'),
    s3: null,
  }
  if (config.storage === 's3') config.s3 = parseS3(get)
  if (config.adminPassword !== null && config.adminPassword.length < 8) {
    throw new ConfigError('ADMIN_PASSWORD must be at least 8 characters')
  }
  if (config.chunkBytes < 64 * 1024) throw new ConfigError('CHUNK_SIZE must be at least 64K')
  if (config.chunkBytes > config.maxChunkBytes) throw new ConfigError('CHUNK_SIZE must not exceed MAX_CHUNK_SIZE')
  return config
}
