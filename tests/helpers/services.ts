import { describe, test } from 'bun:test'

/**
 * Suites that need a service this machine may lack (PostgreSQL, nginx, Chromium). A newcomer's
 * `npm test` without them runs everything else, shows each such suite as one skipped test, and
 * ends with a line per service naming the suites skipped and how to run them
 * (tests/helpers/skipped-report.ts, preloaded by bunfig.toml). In CI (`CI` set, as `.ci/run`
 * does after installing every service) a missing service fails the suite instead: nothing is
 * skipped there by accident.
 */
export interface Service {
  name: string
  /** Why it cannot be used here, or null when it can. */
  missing(): string | null
  /** How to get the skipped suites to run. */
  howToRun: string
}

/** `describe` for a suite that needs every one of `services`. */
export function describeNeeding(services: Service[], name: string, body: () => void) {
  const lacking = services.map((service) => ({ service, why: service.missing() })).filter((s) => s.why !== null)
  if (lacking.length === 0) return describe(name, body)
  const why = lacking.map((s) => s.why).join('; ')
  if (process.env.CI) {
    return describe(name, () => {
      test(`${name}: needs ${lacking.map((s) => s.service.name).join(' and ')}`, () => {
        throw new Error(`${why} (CI runs every suite: install what is missing)`)
      })
    })
  }
  for (const { service } of lacking) skippedSuites(service).push(name)
  test.skip(`${name}: needs ${lacking.map((s) => s.service.name).join(' and ')} (${why})`, () => {})
}

interface Skipped {
  service: Service
  suites: string[]
}

/** The suites skipped in this run, per service, shared by every test file (bun runs them in one process). */
export function skippedReport(): Skipped[] {
  const shared = globalThis as { dropfoldSkipped?: Map<string, Skipped> }
  return [...(shared.dropfoldSkipped ??= new Map()).values()]
}

function skippedSuites(service: Service): string[] {
  const shared = globalThis as { dropfoldSkipped?: Map<string, Skipped> }
  const map = (shared.dropfoldSkipped ??= new Map())
  let entry = map.get(service.name)
  if (!entry) map.set(service.name, (entry = { service, suites: [] }))
  return entry.suites
}
