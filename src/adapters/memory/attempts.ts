import {
  forgettable,
  refunded,
  reservationOf,
  type AttemptRecord,
  type AttemptStore,
  type Claim,
  type Counted,
  type Reservation,
} from '../../ports/attempts.ts'

/**
 * Attempt counters in a map: for tests and a single process that need not remember failures
 * across restarts. Each operation runs without an await, so it is atomic like a transaction.
 */
export class MemoryAttemptStore implements AttemptStore {
  private readonly records = new Map<string, AttemptRecord>()

  async reserve(claims: Claim[], now: number): Promise<Reservation> {
    const { reservation, writes } = reservationOf(claims, now, (key) => this.records.get(key))
    for (const { key, record } of writes) this.records.set(key, record)
    return reservation
  }

  async refund(counted: Counted[]): Promise<void> {
    for (const c of counted) {
      const record = this.records.get(c.key)
      if (record) this.records.set(c.key, refunded(record, c))
    }
  }

  async reset(keys: string[]): Promise<void> {
    for (const key of keys) this.records.delete(key)
  }

  async prune(before: number, now: number): Promise<void> {
    for (const [key, record] of this.records) if (forgettable(record, before, now)) this.records.delete(key)
  }

  /** How many keys are remembered (tests check pruning lets go of them). */
  keysKept(): number {
    return this.records.size
  }
}
