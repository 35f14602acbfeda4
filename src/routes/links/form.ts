import { hashPassword } from '../../auth/admin-password.ts'
import { generateLinkPassword, weakLinkPassword } from '../../auth/link-passwords.ts'
import { ConfigError, parseBytes } from '../../config.ts'
import type { Link as LinkRow, NewLink } from '../../core/records.ts'
import { HttpError } from '../../errors.ts'
import { validLabel } from '../../engine/file-names.ts'
import { formId } from '../respond.ts'
import type { Links } from './shared.ts'

const DAY_MS = 86_400_000

/**
 * The password a create/edit form asks for: typed (and strong enough), generated, or none
 * given (`null`: keep or remove, as the form says).
 */
export async function chosenPassword(form: FormData, label: string): Promise<{ password: string; generated: boolean } | null> {
  if (form.get('generatePassword') !== null) return { password: generateLinkPassword(), generated: true }
  const password = String(form.get('password') ?? '')
  if (password === '') return null
  const weak = weakLinkPassword(password)
  if (weak) throw new HttpError(400, `${label}: ${weak}`)
  return { password, generated: false }
}

function optionalSize(form: FormData, name: string, label: string): number | null | undefined {
  const text = String(form.get(name) ?? '').trim()
  if (text === '') return null
  try {
    return parseBytes(text, label)
  } catch (error) {
    if (error instanceof ConfigError) throw new HttpError(400, error.message)
    throw error
  }
}

function optionalCount(form: FormData, name: string, label: string, max: number): number | null {
  const text = String(form.get(name) ?? '').trim()
  if (text === '') return null
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) throw new HttpError(400, `${label} must be a whole number from 1 to ${max}`)
  return Number(text)
}

function allowedTypes(form: FormData): string | null {
  const text = String(form.get('allowedTypes') ?? '').trim()
  if (text === '') return null
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean)
  for (const part of parts) {
    if (!/^(\.[A-Za-z0-9._-]{1,20}|[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+))$/i.test(part)) {
      throw new HttpError(400, `Allowed types must be extensions like .pdf or media types like image/*; "${part}" is neither`)
    }
  }
  return parts.join(', ')
}

/**
 * Reads the create/edit form; for an edit, blank password and expiry keep what was set.
 * `now` is the request's one reading of the clock, so a new link's expiry is exactly
 * the chosen number of days after its creation time, however long password hashing takes.
 */
export async function settings(
  { deps, paths }: Links,
  form: FormData,
  existing: LinkRow | null,
  now: number,
): Promise<{ change: Partial<NewLink>; generatedPassword: string | null }> {
  const { store } = deps
  const folderId = formId(form, 'folder')
  if ((await store.library.isInTrash(folderId)) || !(await paths()).some((f) => f.id === folderId)) throw new HttpError(404, `Folder ${folderId} does not exist`)
  const label = validLabel(String(form.get('label') ?? ''))
  const change: Partial<NewLink> = {
    folderId,
    label,
    maxFileBytes: optionalSize(form, 'maxFileSize', 'Largest file'),
    maxTotalBytes: optionalSize(form, 'maxTotalSize', 'Total size'),
    maxFiles: optionalCount(form, 'maxFiles', 'Number of files', 1_000_000),
    allowedTypes: allowedTypes(form),
    allowDownload: form.get('allowDownload') !== null,
  }
  const days = optionalCount(form, 'expiresInDays', 'Expires in days', 36_500)
  if (days !== null) change.expiresAt = now + days * DAY_MS
  else if (!existing || form.get('noExpiry') !== null) change.expiresAt = null
  const chosen = await chosenPassword(form, 'Link password')
  if (chosen) change.passwordHash = await hashPassword(chosen.password)
  else if (!existing || form.get('removePassword') !== null) change.passwordHash = null
  return { change, generatedPassword: chosen?.generated ? chosen.password : null }
}
