import { randomInt } from 'node:crypto'

/**
 * Passwords of drop links and folders. Guessing is slowed down per client and per link, but
 * many clients together still get some guesses each, so the password itself must be strong.
 */
export const LINK_PASSWORD_MIN_LENGTH = 10

export const LINK_PASSWORD_RULE = `At least ${LINK_PASSWORD_MIN_LENGTH} characters, mixing at least two kinds: lower case, upper case, digits, others (a space counts). Or let Dropfold generate one.`

const KINDS = [/\p{Ll}/u, /\p{Lu}/u, /\p{Nd}/u, /[^\p{Ll}\p{Lu}\p{Nd}]/u]

/** Why a typed password is too weak, or null when it will do. */
export function weakLinkPassword(password: string): string | null {
  const kinds = KINDS.filter((kind) => kind.test(password)).length
  if ([...password].length < LINK_PASSWORD_MIN_LENGTH || kinds < 2) return `This password is too weak. ${LINK_PASSWORD_RULE}`
  return null
}

/** Crockford's base32 without the letters people confuse (I, L, O, U). */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** 16 random base32 characters (80 bits) in groups of four: XXXX-XXXX-XXXX-XXXX. */
export function generateLinkPassword(): string {
  const chars = Array.from({ length: 16 }, () => ALPHABET[randomInt(ALPHABET.length)]!)
  return [0, 4, 8, 12].map((i) => chars.slice(i, i + 4).join('')).join('-')
}
