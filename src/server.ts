import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createApp } from './app.ts'
import { settleAdminPassword } from './auth/admin-password.ts'
import { PasswordChecks } from './auth/password-checks.ts'
import { SqliteAttemptStore } from './auth/sqlite-attempts.ts'
import type { Config } from './config.ts'
import { openDatabase } from './db/open.ts'
import { UploadEngine } from './engine/engine.ts'
import { LocalBlobStore, LocalStaging } from './storage/local-disk.ts'

export type Log = (message: string, context?: Record<string, unknown>) => void

export const consoleLog: Log = (message, context) => {
  console.error(`[${new Date().toISOString()}] ${message}${context ? ' ' + JSON.stringify(context) : ''}`)
}

/** How often stale uploads expire and old trash is purged. */
const HOUSEKEEPING_MS = 15 * 60_000

/** Wires config → database → storage → engine → app and listens. Used by main.ts and by tests. */
export async function startServer(config: Config, options: { log?: Log; clock?: () => number } = {}) {
  const log = options.log ?? consoleLog
  const clock = options.clock ?? Date.now
  mkdirSync(config.dataDir, { recursive: true })
  const db = openDatabase(join(config.dataDir, 'dropfold.sqlite'), clock())
  const staging = new LocalStaging(join(config.dataDir, 'staging'))
  const blobs = new LocalBlobStore(join(config.dataDir, 'blobs'), log)
  await Promise.all([staging.init(), blobs.init()])
  const engine = new UploadEngine({ db, config, staging, blobs, clock, log })
  await engine.recover()
  const housekeeping = async () => {
    await engine.expireStale()
    await engine.purgeTrash(clock() - config.trashRetentionDays * 86_400_000)
  }
  await housekeeping()
  const password = await settleAdminPassword(db, config)
  const passwordChecks = new PasswordChecks(new SqliteAttemptStore(db))
  const app = createApp({ config, db, engine, blobs, staging, clock, log, passwordChecks })
  app.listen({ port: config.port, hostname: config.host })
  const sweep = setInterval(() => housekeeping().catch((error) => log('housekeeping failed', { error: String(error) })), HOUSEKEEPING_MS)
  const server = app.server!
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${server.port}`
  return {
    url,
    app,
    db,
    engine,
    generatedPassword: password.generated,
    /**
     * Stops at once: open connections are cut (clients resume; nothing acknowledged is lost),
     * then the writes and finalisations under way finish before the database closes.
     */
    async stop() {
      clearInterval(sweep)
      await app.stop(true)
      await engine.settle()
      db.$client.close()
    },
  }
}

export type RunningServer = Awaited<ReturnType<typeof startServer>>
