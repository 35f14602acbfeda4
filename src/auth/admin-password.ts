import { randomBytes } from 'node:crypto'
import type { Config } from '../config.ts'
import type { MetadataStore, Repositories } from '../ports/metadata.ts'
import { deleteSessions } from './sessions.ts'

/** The generated or changed password's hash (ADMIN_PASSWORD, when set, wins over it). */
const STORED_KEY = 'admin_password_hash'
/** The hash of the password in force, under which the current sessions were made. */
const IN_FORCE_KEY = 'admin_password_in_force'

/**
 * argon2id at OWASP's recommended cost (19 MiB, 2 passes). Bun's default of 64 MiB per check
 * stays in the process after every sign-in and would be a third of the server's memory budget.
 */
export const PASSWORD_HASHING = { algorithm: 'argon2id', memoryCost: 19456, timeCost: 2 } as const

export const hashPassword = (password: string) => Bun.password.hash(password, PASSWORD_HASHING)

export const MIN_ADMIN_PASSWORD_LENGTH = 8

/**
 * Settles the admin password at start-up: ADMIN_PASSWORD when set; otherwise the stored one,
 * or a new random one (returned once so start-up can print it). When the password in force is
 * not the one the existing sessions were made under, those sessions end.
 */
export async function settleAdminPassword(store: MetadataStore, config: Config): Promise<{ generated: string | null }> {
  const inForce = await store.settings.get(IN_FORCE_KEY)
  if (config.adminPassword !== null) {
    if (inForce !== null && (await Bun.password.verify(config.adminPassword, inForce))) return { generated: null }
    const hash = await hashPassword(config.adminPassword)
    await store.transaction((tx) => putInForce(tx, hash, undefined))
    return { generated: null }
  }
  const stored = await store.settings.get(STORED_KEY)
  if (stored !== null) {
    if (stored !== inForce) await store.transaction((tx) => putInForce(tx, stored, undefined))
    return { generated: null }
  }
  const generated = randomBytes(15).toString('base64url')
  const hash = await hashPassword(generated)
  await store.transaction(async (tx) => {
    await tx.settings.set(STORED_KEY, hash)
    await putInForce(tx, hash, undefined)
  })
  return { generated }
}

/** The hash a sign-in is checked against. */
export async function adminPasswordHash(store: MetadataStore): Promise<string> {
  const hash = await store.settings.get(IN_FORCE_KEY)
  if (hash === null) throw new Error('the admin password was not settled at start-up')
  return hash
}

/** Stores a new admin password and ends every session but `keepSessionToken`'s. */
export async function changeAdminPassword(store: MetadataStore, password: string, keepSessionToken: string | undefined) {
  const hash = await hashPassword(password)
  await store.transaction(async (tx) => {
    await tx.settings.set(STORED_KEY, hash)
    await putInForce(tx, hash, keepSessionToken)
  })
}

/** Callers hold a transaction: the new hash and the end of the old sessions commit together. */
async function putInForce(tx: Repositories, hash: string, keepSessionToken: string | undefined) {
  await tx.settings.set(IN_FORCE_KEY, hash)
  await deleteSessions(tx, { except: keepSessionToken })
}
