import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { mimeTypeOf } from '../engine/file-names.ts'
import { DomainError } from '../core/errors.ts'
import { linkIdOf, linkOwner, type Admission, type Link } from '../core/records.ts'
import type { MetadataStore } from '../ports/metadata.ts'

type LinkRow = Link

/** 192 random bits, URL-safe: unguessable, and short enough to paste. */
export const newLinkToken = () => randomBytes(24).toString('base64url')

/** Links are looked up by the token's hash: lookups take the same time whatever the token. */
export const hashLinkToken = (token: string) => createHash('sha256').update(token).digest('hex')

export type LinkState = 'active' | 'disabled' | 'expired'

export function linkState(link: LinkRow, now: number): LinkState {
  if (link.disabled) return 'disabled'
  if (link.expiresAt !== null && link.expiresAt <= now) return 'expired'
  return 'active'
}

/** The link a token opens, if it is usable right now. Checked on every request, so disabling works at once. */
export async function openLink(store: MetadataStore, token: string, now: number): Promise<LinkRow> {
  const link = /^[A-Za-z0-9_-]{20,64}$/.test(token) ? await store.links.findByTokenHash(hashLinkToken(token)) : undefined
  return usable(link, now)
}

function usable(link: LinkRow | undefined, now: number): LinkRow {
  if (!link) throw new DomainError('not-found', 'There is no drop link at this address')
  const state = linkState(link, now)
  if (state === 'expired') throw new DomainError('gone', 'This drop link has expired')
  if (state === 'disabled') throw new DomainError('gone', 'This drop link has been switched off')
  return link
}

/**
 * Refuses to go on with an upload through a link that has since been switched off, has expired,
 * was deleted or whose folder went to the trash; does nothing for the admin's uploads. Run while
 * a link's upload streams in, so that switching a link off stops uploads already under way.
 */
export async function requireLinkStillOpen(store: MetadataStore, owner: string, now: number) {
  const id = linkIdOf(owner)
  if (id === null) return
  const link = usable(await store.links.find(id), now)
  if (await store.library.isInTrash(link.folderId)) throw new DomainError('gone', 'The folder of this drop link has been deleted')
}

/** The password a visitor must give: the link's own, else the nearest protected folder's. */
export async function requiredPasswordHash(store: MetadataStore, link: LinkRow): Promise<string | null> {
  return link.passwordHash ?? (await store.library.folderPasswordHash(link.folderId))
}

/** Server-side secret for signing unlock cookies, made once and kept in the database. */
export async function cookieSecret(store: MetadataStore): Promise<Buffer> {
  const stored = await store.settings.get('cookie_secret')
  if (stored) return Buffer.from(stored, 'base64')
  return Buffer.from(await store.settings.setIfAbsent('cookie_secret', randomBytes(32).toString('base64')), 'base64')
}

export const UNLOCK_TTL_MS = 12 * 3_600_000

/**
 * "This browser gave the right password for this link": signed, expiring, and tied to the link
 * and to the password in force (changing the password locks everyone out again).
 */
export class UnlockCookies {
  constructor(private readonly secret: Buffer) {}

  name(link: LinkRow) {
    return `dropfold_unlock_${link.id}`
  }

  private mac(link: LinkRow, expires: number, passwordHash: string) {
    return createHmac('sha256', this.secret).update(`${link.id}.${expires}.${passwordHash}`).digest('base64url')
  }

  value(link: LinkRow, passwordHash: string, now: number) {
    const expires = now + UNLOCK_TTL_MS
    return `${expires}.${this.mac(link, expires, passwordHash)}`
  }

  valid(link: LinkRow, passwordHash: string, value: string | undefined, now: number): boolean {
    const m = /^(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(value ?? '')
    if (!m) return false
    const expires = Number(m[1])
    if (expires <= now) return false
    const expected = Buffer.from(this.mac(link, expires, passwordHash))
    const given = Buffer.from(m[2]!)
    return expected.length === given.length && timingSafeEqual(expected, given)
  }
}

/** Parses "image/*, .pdf, video/mp4" into a test on file names. */
export function typeFilter(allowed: string | null): ((fileName: string) => boolean) | null {
  const patterns = (allowed ?? '')
    .split(',')
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean)
  if (patterns.length === 0) return null
  return (fileName) => {
    const name = fileName.toLowerCase()
    const type = mimeTypeOf(fileName).toLowerCase()
    return patterns.some((p) =>
      p.startsWith('.') ? name.endsWith(p) : p.endsWith('/*') ? type.startsWith(p.slice(0, -1)) : type === p,
    )
  }
}

/** A drop link's limits, checked in the same transaction that creates each upload. */
export function linkAdmission(link: LinkRow): Admission {
  const typeAllowed = typeFilter(link.allowedTypes)
  const check: Admission['check'] = (figures, upload) => {
    const isPartial = upload.concat === 'partial'
    // A partial's name is optional: the final upload's is checked.
    if (typeAllowed && !isPartial && !typeAllowed(upload.fileName)) {
      throw new DomainError('unsupported-type', `This link accepts only these kinds of files: ${link.allowedTypes}`)
    }
    if (link.maxFileBytes !== null && upload.totalBytes > link.maxFileBytes) {
      throw new DomainError('too-large', `The file is ${upload.totalBytes} bytes; this link accepts files up to ${link.maxFileBytes} bytes`)
    }
    const usage = figures.link ?? { files: 0, fileBytes: 0, inProgress: 0, inProgressBytes: 0 }
    if (link.maxFiles !== null && !isPartial && !upload.counted && usage.files + usage.inProgress >= link.maxFiles) {
      throw new DomainError('limit-reached', `This link accepts at most ${link.maxFiles} files, and has them`)
    }
    const used = usage.fileBytes + usage.inProgressBytes
    if (link.maxTotalBytes !== null && upload.concat !== 'final' && used + upload.totalBytes > link.maxTotalBytes) {
      const left = Math.max(0, link.maxTotalBytes - used)
      throw new DomainError('too-large', `This link accepts ${link.maxTotalBytes} bytes in total and has ${left} bytes left; the file is ${upload.totalBytes} bytes`)
    }
  }
  return { owner: linkOwner(link.id), check }
}
