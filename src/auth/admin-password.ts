import { randomBytes } from 'node:crypto'
import { eq } from 'drizzle-orm'
import type { Config } from '../config.ts'
import type { Db } from '../db/open.ts'
import { settings } from '../db/schema.ts'

const KEY = 'admin_password_hash'

/**
 * argon2id at OWASP's recommended cost (19 MiB, 2 passes). Bun's default of 64 MiB per check
 * stays in the process after every sign-in and would be a third of the server's memory budget.
 */
export const PASSWORD_HASHING = { algorithm: 'argon2id', memoryCost: 19456, timeCost: 2 } as const

export const hashPassword = (password: string) => Bun.password.hash(password, PASSWORD_HASHING)

/**
 * The admin password's hash. From ADMIN_PASSWORD when set; otherwise the stored one, or a new
 * random password whose hash is stored and which is returned once so start-up can print it.
 */
export async function adminPasswordHash(db: Db, config: Config): Promise<{ hash: string; generated: string | null }> {
  if (config.adminPassword !== null) return { hash: await hashPassword(config.adminPassword), generated: null }
  const stored = db.select().from(settings).where(eq(settings.key, KEY)).get()
  if (stored) return { hash: stored.value, generated: null }
  const generated = randomBytes(15).toString('base64url')
  const hash = await hashPassword(generated)
  db.insert(settings).values({ key: KEY, value: hash }).run()
  return { hash, generated }
}
