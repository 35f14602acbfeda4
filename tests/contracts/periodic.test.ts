import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ElectedPeriodicWork, type Ballots } from '../../src/adapters/elected-periodic.ts'
import { MemoryBallots, MemoryPeriodicWork } from '../../src/adapters/memory/periodic.ts'
import { SqlitePeriodicWork } from '../../src/adapters/sqlite/periodic.ts'
import { SqliteMetadataStore } from '../../src/adapters/sqlite/metadata.ts'
import { contractRejects, type BrokenAdapter } from './broken.ts'
import { PERIODIC_CHECKS, periodicContract, type MakePeriodic } from './periodic.ts'

periodicContract('memory (two instances sharing one ballot box)', (setup) => {
  const ballots = new MemoryBallots()
  return { a: new MemoryPeriodicWork({ ...setup, timer: false }, ballots), b: new MemoryPeriodicWork({ ...setup, timer: false }, ballots) }
})

periodicContract('SQLite (two instances, each with its own connection to one database)', (setup) => {
  const dir = mkdtempSync(join(tmpdir(), 'dropfold-periodic-'))
  const file = join(dir, 'dropfold.sqlite')
  const [first, second] = [SqliteMetadataStore.open(file, setup.clock()), SqliteMetadataStore.open(file, setup.clock())]
  return {
    a: new SqlitePeriodicWork(first, { ...setup, timer: false }),
    b: new SqlitePeriodicWork(second, { ...setup, timer: false }),
    async close() {
      await first.close()
      await second.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

/** Ballots that take every claim, whoever changed the record meanwhile: no election at all. */
class UnguardedBallots implements Ballots {
  private readonly records = new Map<string, string>()
  async read(name: string) {
    return this.records.get(name) ?? null
  }
  async swap(name: string, _expected: string | null, next: string) {
    this.records.set(name, next)
    return true
  }
}

/** Ballots that forget every record: each claim looks like the first. */
class ForgetfulBallots implements Ballots {
  async read() {
    return null
  }
  async swap() {
    return true
  }
}

/** Ballots that never let a claim lapse: the first holder keeps the task for good. */
class EndlessBallots extends MemoryBallots {
  override async swap(name: string, expected: string | null, next: string) {
    const ballot = JSON.parse(next) as { runningUntil: number }
    return super.swap(name, expected, JSON.stringify({ ...ballot, runningUntil: ballot.runningUntil && Number.MAX_SAFE_INTEGER }))
  }
}

const withBallots =
  (ballots: () => Ballots): MakePeriodic =>
  (setup) => {
    const shared = ballots()
    return { a: new ElectedPeriodicWork(shared, { ...setup, timer: false }), b: new ElectedPeriodicWork(shared, { ...setup, timer: false }) }
  }

const broken: Record<string, BrokenAdapter<MakePeriodic>> = {
  'ballots without compare-and-swap': {
    make: withBallots(() => new UnguardedBallots()),
    fails: 'a task registered on both instances runs once per interval across them',
  },
  'ballots that forget': {
    make: withBallots(() => new ForgetfulBallots()),
    fails: 'a run under way is never joined by another, on either instance, however many ticks pass',
  },
  'ballots whose claims never lapse': {
    make: withBallots(() => new EndlessBallots()),
    fails: 'a holder that stops renewing (it died) is replaced once its claim lapses, not before',
  },
}

contractRejects('the PeriodicWork contract rejects broken adapters', PERIODIC_CHECKS, broken)
