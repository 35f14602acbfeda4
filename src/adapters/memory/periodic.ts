import { ElectedPeriodicWork, type Ballots, type PeriodicOptions } from '../elected-periodic.ts'

/** Ballots in a map: enough for one process, or for instances sharing one map in tests. */
export class MemoryBallots implements Ballots {
  private readonly records = new Map<string, string>()

  async read(name: string): Promise<string | null> {
    return this.records.get(name) ?? null
  }

  async swap(name: string, expected: string | null, next: string): Promise<boolean> {
    if ((this.records.get(name) ?? null) !== expected) return false
    this.records.set(name, next)
    return true
  }
}

/** The in-process periodic work: runs never overlap in this process, and one per interval. */
export class MemoryPeriodicWork extends ElectedPeriodicWork {
  constructor(options: PeriodicOptions = {}, ballots: MemoryBallots = new MemoryBallots()) {
    super(ballots, options)
  }
}
