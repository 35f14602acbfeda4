import type { AttemptPolicy, Claim } from '../ports/attempts.ts'
import type { CheckOutcome } from './password-checks.ts'

const MINUTE = 60_000

/** Five wrong admin passwords per client are free; then 1 s, 2 s, 4 s, … up to 15 minutes. */
export const LOGIN_POLICY: AttemptPolicy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE }
/** One client on one link: five free, then 1 s, 2 s, 4 s, … up to 15 minutes; reset by the right password. */
export const UNLOCK_POLICY: AttemptPolicy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE }
/** One client across all links: a ceiling against scanning many links, far above any visitor's typos. */
export const ADDRESS_POLICY: AttemptPolicy = { freeFailures: 50, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE }
/**
 * One link, counting only clients already past their own five free failures on it: twenty,
 * then 1 s, 2 s, … up to 15 minutes. A client with no recent failure on the link never waits for it.
 */
export const LINK_BUDGET_POLICY: AttemptPolicy = { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE }

export const loginClaims = (address: string): Claim[] => [{ key: `login:${address}`, policy: LOGIN_POLICY, onSuccess: 'reset' }]

/** The claims of one unlock attempt; `linkId` null for an unknown or unusable link (only the client's ceiling counts). */
export function unlockClaims(address: string, linkId: number | null): Claim[] {
  const ceiling: Claim = { key: `unlock-client:${address}`, policy: ADDRESS_POLICY, onSuccess: 'refund' }
  if (linkId === null) return [ceiling]
  const own = `unlock:${address}:link:${linkId}`
  return [
    { key: own, policy: UNLOCK_POLICY, onSuccess: 'reset' },
    ceiling,
    { key: `unlock-link:${linkId}`, policy: LINK_BUDGET_POLICY, onSuccess: 'refund', onlyPast: { key: own, freeFailures: UNLOCK_POLICY.freeFailures } },
  ]
}

/** What a refused attempt is told. */
export function refusalText(outcome: Extract<CheckOutcome, { kind: 'refused' }>): string {
  return outcome.status === 429
    ? `Too many wrong passwords. Try again in ${outcome.retryAfterSeconds} seconds.`
    : 'Too many password checks at once. Try again in a moment.'
}
