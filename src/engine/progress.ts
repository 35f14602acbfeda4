const SPEED_WINDOW_MS = 10_000

/** Recent byte counts per upload, for a live speed. */
export class Progress {
  private readonly samples = new Map<string, { at: number; bytes: number }[]>()

  constructor(private readonly clock: () => number) {}

  /** Bytes per second over the last few seconds; 0 when idle. */
  speed(uploadId: string): number {
    const now = this.clock()
    const samples = (this.samples.get(uploadId) ?? []).filter((s) => now - s.at < SPEED_WINDOW_MS)
    if (samples.length === 0) return 0
    const bytes = samples.reduce((sum, s) => sum + s.bytes, 0)
    return (bytes * 1000) / Math.max(1000, now - samples[0]!.at)
  }

  note(uploadId: string, bytes: number) {
    const now = this.clock()
    const samples = (this.samples.get(uploadId) ?? []).filter((s) => now - s.at < SPEED_WINDOW_MS)
    samples.push({ at: now, bytes })
    this.samples.set(uploadId, samples)
    if (this.samples.size > 10_000) this.samples.delete(this.samples.keys().next().value!)
  }

  forget(uploadId: string) {
    this.samples.delete(uploadId)
  }
}
