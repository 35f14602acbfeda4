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

const states = new WeakMap<Db, { durable: () => Promise<void> }>()

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
  return {
    durable: () => (changes.get()!.n === synced ? Promise.resolve() : group.request()),
  }
}
