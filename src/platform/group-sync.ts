/**
 * Shares one sync among everyone who asks while it runs. `request()` resolves after a sync that
 * started after the call, so whatever the caller wrote before asking is covered; callers that
 * ask at the same moment wait for the same sync instead of queueing one each.
 */
export class GroupSync {
  private running: Promise<void> | null = null
  private queued: Promise<void> | null = null

  constructor(private readonly sync: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.queued) return this.queued
    if (!this.running) return this.start()
    // The sync under way may have started before the caller's write: wait for the next one.
    const next = () => {
      this.queued = null
      return this.start()
    }
    this.queued = this.running.then(next, next)
    return this.queued
  }

  /** Resolves once no sync is running (at once when none is). */
  idle(): Promise<void> {
    const wait = this.queued ?? this.running
    return wait ? wait.then(() => this.idle(), () => this.idle()) : Promise.resolve()
  }

  private start(): Promise<void> {
    const run = this.sync()
    this.running = run
    const done = () => {
      if (this.running === run) this.running = null
    }
    run.then(done, done)
    return run
  }
}
