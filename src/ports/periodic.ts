/**
 * Work that recurs on an interval (expiry, trash purge, staging cleanup, finalisation recovery).
 * With several instances sharing an adapter, one of them is elected for each run, so the work
 * happens once per interval across the cluster, not once per instance.
 * tests/contracts/periodic.ts says what every adapter must do.
 */
export interface PeriodicWork {
  /**
   * Runs `task` about every `intervalMs`, with two guarantees for each `name` across every
   * instance sharing the adapter: at most one run at a time, and at most one run started per
   * interval. A slow run makes later ticks skip rather than overlap; a failing run is logged,
   * never thrown, and tried again next interval.
   * Returns `stop`, which ends the ticking and resolves once a run under way here has ended.
   */
  every(name: string, intervalMs: number, task: () => Promise<void>): () => Promise<void>
}
