import { describe, expect, test } from 'bun:test'

/** An adapter that breaks one promise of a contract, and the check (by its name) that must notice. */
export interface BrokenAdapter<Make> {
  make: Make
  fails: string
}

/**
 * Proof that a contract suite notices what it promises: every broken adapter must fail the check
 * named after the promise it breaks (a check renamed since must not let it pass unnoticed).
 */
export function contractRejects<Make>(title: string, checks: Record<string, (make: Make) => Promise<void>>, broken: Record<string, BrokenAdapter<Make>>) {
  describe(title, () => {
    for (const [name, { make, fails }] of Object.entries(broken)) {
      test(`${name} fails “${fails}”`, async () => {
        const check = checks[fails]
        expect(check).toBeDefined()
        const outcome = await check!(make).then(
          () => 'passed',
          () => 'failed',
        )
        expect(outcome).toBe('failed')
      })
    }
  })
}
