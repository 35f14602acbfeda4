import { describe, expect, test } from 'bun:test'
import type { PeriodicWork } from '../../src/ports/periodic.ts'

/** One instance of the adapter under test, ticked by the test instead of a timer. */
export interface PeriodicInstance extends PeriodicWork {
  /** Looks once at every task: starts the due ones it wins, renews the runs it holds. */
  tick(): Promise<void>
  /** Resolves once no run started by this instance is under way. */
  idle(): Promise<void>
}

export interface PeriodicSetup {
  clock: () => number
  log: (message: string, context?: Record<string, unknown>) => void
  /** How long a claim stands without renewal. */
  holdMs: number
}

/** Two instances sharing one adapter (standing in for two processes), fresh for each check. */
export interface PeriodicUnderTest {
  a: PeriodicInstance
  b: PeriodicInstance
  close?(): void | Promise<void>
}

export type MakePeriodic = (setup: PeriodicSetup) => PeriodicUnderTest | Promise<PeriodicUnderTest>

const INTERVAL = 1_000
const HOLD = 5_000

/** A run the test ends when it chooses, so "under way" lasts exactly as long as a check needs. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { open, opened }
}

interface World extends PeriodicUnderTest {
  advance(ms: number): void
  logs: { message: string; context?: Record<string, unknown> }[]
  /** A run the test ends when it chooses; every gate opens when the check ends, passed or failed. */
  gate(): ReturnType<typeof gate>
  /** Ticks both instances at once, so their claims race. */
  tickBoth(): Promise<void>
}

async function using(make: MakePeriodic, check: (world: World) => Promise<void>) {
  let now = 1_700_000_000_000
  const logs: World['logs'] = []
  const gates: ReturnType<typeof gate>[] = []
  const under = await make({ clock: () => now, log: (message, context) => logs.push({ message, context }), holdMs: HOLD })
  const world: World = {
    ...under,
    advance: (ms) => (now += ms),
    logs,
    gate: () => gates[gates.push(gate()) - 1]!,
    tickBoth: async () => {
      await Promise.all([under.a.tick(), under.b.tick()])
    },
  }
  try {
    await check(world)
  } finally {
    for (const each of gates) each.open()
    await Promise.all([under.a.idle(), under.b.idle()])
    await under.close?.()
  }
}

/** What every PeriodicWork adapter must do, as named checks (each throws on a violation). */
export const PERIODIC_CHECKS: Record<string, (make: MakePeriodic) => Promise<void>> = {
  'a task registered on both instances runs once per interval across them': (make) =>
    using(make, async (world) => {
      let runs = 0
      const task = async () => void runs++
      world.a.every('expiry', INTERVAL, task)
      world.b.every('expiry', INTERVAL, task)
      for (let step = 0; step < 12; step++) {
        await world.tickBoth()
        await Promise.all([world.a.idle(), world.b.idle()])
        world.advance(INTERVAL / 4)
      }
      // 12 ticks a quarter interval apart span three intervals: a tick each quarter could have run 24 times.
      expect(runs).toBe(3)
    }),

  'a run under way is never joined by another, on either instance, however many ticks pass': (make) =>
    using(make, async (world) => {
      let inside = 0
      let most = 0
      let started = 0
      const slow = world.gate()
      const task = async () => {
        started++
        inside++
        most = Math.max(most, inside)
        await slow.opened
        inside--
      }
      world.a.every('purge', INTERVAL, task)
      world.b.every('purge', INTERVAL, task)
      await world.a.tick()
      expect(started).toBe(1)
      for (let step = 0; step < 6; step++) {
        world.advance(INTERVAL)
        await world.tickBoth()
      }
      expect(started).toBe(1)
      slow.open()
      await Promise.all([world.a.idle(), world.b.idle()])
      expect(most).toBe(1)
    }),

  "the other instance takes over once the holder's run ends": (make) =>
    using(make, async (world) => {
      const ran: string[] = []
      const slow = world.gate()
      world.a.every('staging', INTERVAL, async () => {
        ran.push('a')
        await slow.opened
      })
      world.b.every('staging', INTERVAL, async () => void ran.push('b'))
      await world.a.tick()
      world.advance(INTERVAL)
      await world.b.tick()
      expect(ran).toEqual(['a'])
      slow.open()
      await world.a.idle()
      await world.b.tick()
      await world.b.idle()
      expect(ran).toEqual(['a', 'b'])
    }),

  'a failing run is logged, not thrown, and tried again next interval (not before)': (make) =>
    using(make, async (world) => {
      let runs = 0
      world.a.every('recovery', INTERVAL, async () => {
        runs++
        if (runs === 1) throw new Error('disk full')
      })
      await world.a.tick()
      await world.a.idle()
      expect(runs).toBe(1)
      expect(JSON.stringify(world.logs)).toContain('disk full')
      world.advance(INTERVAL / 2)
      await world.tickBoth()
      expect(runs).toBe(1)
      world.advance(INTERVAL / 2)
      await world.a.tick()
      await world.a.idle()
      expect(runs).toBe(2)
    }),

  'a holder that stops renewing (it died) is replaced once its claim lapses, not before': (make) =>
    using(make, async (world) => {
      const ran: string[] = []
      const never = world.gate()
      world.a.every('expiry', INTERVAL, async () => {
        ran.push('a')
        await never.opened
      })
      world.b.every('expiry', INTERVAL, async () => void ran.push('b'))
      await world.a.tick()
      // Due by the interval, but the claim of the silent holder still stands.
      world.advance(HOLD - 1)
      await world.b.tick()
      expect(ran).toEqual(['a'])
      world.advance(1)
      await world.b.tick()
      await world.b.idle()
      expect(ran).toEqual(['a', 'b'])
      never.open()
    }),

  'a holder that keeps ticking keeps its claim past the hold': (make) =>
    using(make, async (world) => {
      const ran: string[] = []
      const slow = world.gate()
      world.a.every('expiry', INTERVAL, async () => {
        ran.push('a')
        await slow.opened
      })
      world.b.every('expiry', INTERVAL, async () => void ran.push('b'))
      await world.a.tick()
      for (let step = 0; step < 4; step++) {
        world.advance(HOLD / 2)
        await world.a.tick()
        await world.b.tick()
      }
      expect(ran).toEqual(['a'])
      slow.open()
    }),

  'stop ends the ticking and waits for the run under way': (make) =>
    using(make, async (world) => {
      let runs = 0
      let ended = false
      const slow = world.gate()
      const stop = world.a.every('purge', INTERVAL, async () => {
        runs++
        await slow.opened
        ended = true
      })
      await world.a.tick()
      const stopped = stop().then(() => ended)
      slow.open()
      expect(await stopped).toBe(true)
      world.advance(INTERVAL)
      await world.a.tick()
      expect(runs).toBe(1)
    }),
}

/** Registers the contract for one adapter: every check, fresh instances each. */
export function periodicContract(name: string, make: MakePeriodic) {
  describe(`PeriodicWork contract: ${name}`, () => {
    for (const [title, check] of Object.entries(PERIODIC_CHECKS)) test(title, () => check(make))
  })
}
