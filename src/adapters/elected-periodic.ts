import type { PeriodicWork } from '../ports/periodic.ts'

type Log = (message: string, context?: Record<string, unknown>) => void

/**
 * Who holds each task's run, shared by every instance that must not run it twice. A claim is a
 * compare-and-swap: it is won by one claimant only, and its token proves the hold afterwards.
 */
export interface Ballots {
  /** The current record of `name`, or null before its first run. */
  read(name: string): Promise<string | null>
  /** Replaces `expected` (null: no record yet) with `next`; true if nobody changed it meanwhile. */
  swap(name: string, expected: string | null, next: string): Promise<boolean>
}

/** When the last run began, and until when its holder's claim stands unless it renews it. */
interface Ballot {
  lastRunAt: number
  runningUntil: number
  holder: string
}

export interface PeriodicOptions {
  clock?: () => number
  log?: Log
  /** How often each instance looks whether a run is due (and renews the runs it holds). */
  pollMs?: number
  /** How long a claim stands without renewal: a holder that died is replaced after this. */
  holdMs?: number
  /** False in tests, which call tick() themselves. */
  timer?: boolean
}

interface Task {
  name: string
  intervalMs: number
  run: () => Promise<void>
  /** The record this instance wrote for the run it holds, while it holds one. */
  held: string | null
  running: Promise<void> | null
  /** A renewal under way: the run's end waits for it, so it ends the claim as last renewed. */
  renewing: Promise<void> | null
}

let instances = 0

/**
 * Periodic work elected through shared ballots: each tick, an instance claims every due task
 * whose run nobody holds, runs the ones it won, and renews the claims of its runs under way.
 */
export class ElectedPeriodicWork implements PeriodicWork {
  private readonly tasks = new Set<Task>()
  private readonly clock: () => number
  private readonly log: Log
  private readonly pollMs: number
  private readonly holdMs: number
  private readonly id = `${process.pid}.${++instances}.${Math.random().toString(36).slice(2)}`
  private timer: ReturnType<typeof setInterval> | null = null

  constructor(
    private readonly ballots: Ballots,
    private readonly options: PeriodicOptions = {},
  ) {
    this.clock = options.clock ?? Date.now
    this.log = options.log ?? (() => {})
    this.pollMs = options.pollMs ?? 60_000
    this.holdMs = options.holdMs ?? 5 * this.pollMs
  }

  every(name: string, intervalMs: number, run: () => Promise<void>): () => Promise<void> {
    const task: Task = { name, intervalMs, run, held: null, running: null, renewing: null }
    this.tasks.add(task)
    if (this.options.timer !== false && !this.timer) this.timer = setInterval(() => void this.tick(), this.pollMs)
    return async () => {
      this.tasks.delete(task)
      if (this.tasks.size === 0 && this.timer) {
        clearInterval(this.timer)
        this.timer = null
      }
      await task.running
    }
  }

  /** Looks once at every task: renews the runs held here, starts the due ones this instance wins. */
  async tick(): Promise<void> {
    await Promise.all([...this.tasks].map((task) => this.visit(task).catch((error) => this.log('periodic work: the election failed', { task: task.name, error: String(error) }))))
  }

  /** Resolves once no run started here is under way (tests await the end of a run with it). */
  async idle(): Promise<void> {
    await Promise.all([...this.tasks].map((task) => task.running))
  }

  private async visit(task: Task) {
    const now = this.clock()
    if (task.running) {
      task.renewing ??= this.renew(task, now).finally(() => {
        task.renewing = null
      })
      return task.renewing
    }
    const current = await this.ballots.read(task.name)
    const record = current === null ? null : (JSON.parse(current) as Ballot)
    if (record && (now < record.lastRunAt + task.intervalMs || now < record.runningUntil)) return
    const claim = this.record({ lastRunAt: now, runningUntil: now + this.holdMs, holder: this.id })
    if (!(await this.ballots.swap(task.name, current, claim))) return
    task.held = claim
    task.running = this.run(task).finally(() => {
      task.running = null
    })
  }

  private async run(task: Task) {
    try {
      await task.run()
    } catch (error) {
      this.log('periodic work failed', { task: task.name, error: String(error) })
    }
    await task.renewing
    const held = task.held!
    task.held = null
    const { lastRunAt } = JSON.parse(held) as Ballot
    // Only the holder ends its run: a claim taken over after it lapsed is left to its new holder.
    await this.ballots.swap(task.name, held, this.record({ lastRunAt, runningUntil: 0, holder: '' })).catch((error) => this.log('periodic work: ending the run failed', { task: task.name, error: String(error) }))
  }

  private async renew(task: Task, now: number) {
    const held = task.held
    if (!held) return
    const renewed = this.record({ ...(JSON.parse(held) as Ballot), runningUntil: now + this.holdMs })
    if (await this.ballots.swap(task.name, held, renewed)) task.held = renewed
    else this.log('periodic work: the run outlived its claim', { task: task.name })
  }

  private record(record: Ballot): string {
    return JSON.stringify(record)
  }
}
