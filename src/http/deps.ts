import type { PasswordChecks } from '../auth/password-checks.ts'
import type { Config } from '../config.ts'
import type { UploadEngine } from '../engine/engine.ts'
import type { MetadataStore } from '../ports/metadata.ts'
import type { BlobStore } from '../ports/blobs.ts'
import type { SpaceGauge } from '../ports/staging.ts'

/** What the app and each of its route groups are given: every dependency is passed in. */
export interface AppDeps {
  config: Config
  store: MetadataStore
  engine: UploadEngine
  blobs: BlobStore
  space?: SpaceGauge
  clock: () => number
  log: (message: string, context?: Record<string, unknown>) => void
  /** Every password check (sign-in, drop-link unlock): rate-limited and bounded. */
  passwordChecks: PasswordChecks
  /** True once the server has begun to stop: a request failing then is cut short, not broken. */
  stopping?: () => boolean
}
