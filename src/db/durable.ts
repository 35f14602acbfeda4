import { GroupSync } from '../storage/group-sync.ts'
import { syncPath } from '../storage/sync-path.ts'
import type { Db } from './open.ts'

/**
 * Group commit. The database runs with `synchronous = NORMAL`, so a commit lands in the WAL
 * without waiting for the disk (and without blocking the event loop on fsync). `durable(db)`
 * then makes every commit so far durable with one fdatasync of the WAL file, run in the thread
 * pool and shared by all the requests that ask at the same time. That is what
 * `synchronous = FULL` does on every commit, minus the waiting in line.
 *
 * Call it before acknowledging anything to a client, and before any irreversible step on disk
 * (a link into the blob store, an unlink) that relies on a commit.
 */
export function durable(db: Db): Promise<void> {
  let state = states.get(db)
  if (!state) states.set(db, (state = newState(db)))
  return state.durable()
}

/**
 * Runs `work` (synchronous database writes, nothing else) in a transaction shared with the
 * work of every request that asks while the WAL is being synced. When one of them throws, the
 * whole group is undone and each runs again in a transaction of its own, so a refusal rejects
 * only its own promise. (Savepoints would isolate them too, but write a statement journal per
 * item, which cost more than the group saves.) Resolves with what `work` returned once committed,
 * not yet durable: call durable() before answering.
 *
 * Why: requests ask to commit while the previous group's sync runs, and would wait for it
 * anyway (durable() needs a sync that started after their commit). Committing them together
 * then writes each page they share (the tables' last leaves, most indexes) to the WAL once.
 */
export function commitTogether<T>(db: Db, work: () => T): Promise<T> {
  let state = states.get(db)
  if (!state) states.set(db, (state = newState(db)))
  return state.together(work)
}

const states = new WeakMap<Db, ReturnType<typeof newState>>()

function newState(db: Db) {
  const sqlite = db.$client
  const walPath = sqlite.filename && sqlite.filename !== ':memory:' ? `${sqlite.filename}-wal` : null
  const changes = sqlite.prepare<{ n: number }, []>('SELECT total_changes() AS n')
  // Rows changed (since the connection opened) that are known to be on disk.
  let synced = changes.get()!.n
  const group = new GroupSync(async () => {
    const upTo = changes.get()!.n
    // Opened for each sync, so no descriptor outlives the database (the WAL is removed when it closes).
    if (walPath) await syncPath(walPath, 'data')
    synced = Math.max(synced, upTo)
  })
  const control = {
    begin: sqlite.prepare('BEGIN'),
    commit: sqlite.prepare('COMMIT'),
    rollback: sqlite.prepare('ROLLBACK'),
  }
  type Waiting = { work: () => unknown; resolve: (value: any) => void; reject: (error: unknown) => void }
  let waiting: Waiting[] = []
  /** Each in a transaction of its own: what a group that failed somewhere falls back to. */
  const oneByOne = (batch: Waiting[]) => {
    for (const item of batch) {
      let value: unknown
      try {
        control.begin.run()
        value = item.work()
        control.commit.run()
      } catch (error) {
        if (sqlite.inTransaction) control.rollback.run()
        item.reject(error)
        continue
      }
      item.resolve(value)
    }
  }
  const flush = () => {
    const batch = waiting
    waiting = []
    if (batch.length === 1) return oneByOne(batch)
    const values: unknown[] = []
    try {
      control.begin.run()
      for (const item of batch) values.push(item.work())
      control.commit.run()
    } catch {
      // Refusals are rare: undo the whole group and give each its own transaction and answer.
      if (sqlite.inTransaction) control.rollback.run()
      return oneByOne(batch)
    }
    batch.forEach((item, i) => item.resolve(values[i]))
  }
  return {
    durable: () => (changes.get()!.n === synced ? Promise.resolve() : group.request()),
    together: <T>(work: () => T): Promise<T> => {
      const { promise, resolve, reject } = Promise.withResolvers<T>()
      waiting.push({ work, resolve, reject })
      if (waiting.length === 1) void group.idle().then(() => setImmediate(flush))
      return promise
    },
  }
}
