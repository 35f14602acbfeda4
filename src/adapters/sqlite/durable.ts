import { GroupSync } from '../../platform/group-sync.ts'
import { syncPath } from '../../platform/sync-path.ts'
import type { Db } from './types.ts'
import { atomically } from './prepared.ts'

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
/** Per database: a promise while a transaction that awaits is open (see SqliteMetadataStore), else null. */
const gates = new WeakMap<Db, () => Promise<void> | null>()

/** Group commits wait while `gate()` returns a promise: they must not land inside another's open transaction. */
export function gateCommits(db: Db, gate: () => Promise<void> | null) {
  gates.set(db, gate)
}

/** How the WAL of a database is synced, where a test stands between (the power-loss test). */
const walSyncs = new WeakMap<Db, (walPath: string) => Promise<void>>()

/** Test hook: the syncs of `db`'s WAL go through `sync` (which makes the WAL durable itself). */
export function routeWalSyncs(db: Db, sync: (walPath: string) => Promise<void>) {
  walSyncs.set(db, sync)
}

function newState(db: Db) {
  const sqlite = db.$client
  const walPath = sqlite.filename && sqlite.filename !== ':memory:' ? `${sqlite.filename}-wal` : null
  const changes = sqlite.prepare<{ n: number }, []>('SELECT total_changes() AS n')
  // Rows changed (since the connection opened) that are known to be on disk.
  // None at first: what was committed before the first call (at start-up, say) is not known to be
  // on disk.
  let synced = 0
  const group = new GroupSync(async () => {
    // Changes inside a transaction still open are not committed: this sync cannot vouch for them.
    const upTo = sqlite.inTransaction ? synced : changes.get()!.n
    // Opened for each sync, so no descriptor outlives the database (the WAL is removed when it closes).
    if (walPath) await (walSyncs.get(db) ?? ((path: string) => syncPath(path, 'data')))(walPath)
    synced = Math.max(synced, upTo)
  })
  type Waiting = { work: () => unknown; resolve: (value: any) => void; reject: (error: unknown) => void }
  let waiting: Waiting[] = []
  const flush = (): void => {
    const closed = gates.get(db)?.()
    if (closed) return void closed.then(flush)
    const batch = waiting
    waiting = []
    if (batch.length > 1) {
      try {
        const values = atomically(db, () => batch.map((item) => item.work()))
        return batch.forEach((item, i) => item.resolve(values[i]))
      } catch {
        // Refusals are rare: the group was undone; each gets a transaction and an answer of its own.
      }
    }
    for (const item of batch) {
      try {
        item.resolve(atomically(db, item.work))
      } catch (error) {
        item.reject(error)
      }
    }
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
