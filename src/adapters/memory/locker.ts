import type { Lock, Locker } from '../../ports/locker.ts'

interface Waiter {
  grant(): void
}

/**
 * The in-process locker: enough while one process serves a data directory. A key is in the map
 * only while someone holds it; its waiters queue behind the holder and get it in arrival order.
 */
export class MemoryLocker implements Locker {
  private readonly queues = new Map<string, Waiter[]>()

  lock(key: string, signal?: AbortSignal): Promise<Lock> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    const queue = this.queues.get(key)
    if (!queue) return Promise.resolve(this.take(key))
    return new Promise<Lock>((resolve, reject) => {
      const onAbort = () => {
        queue.splice(queue.indexOf(waiter), 1)
        reject(signal!.reason)
      }
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve(this.handle(key))
        },
      }
      queue.push(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  async tryLock(key: string): Promise<Lock | null> {
    return this.queues.has(key) ? null : this.take(key)
  }

  /** How many keys are held right now (tests check none is left behind). */
  keysHeld(): number {
    return this.queues.size
  }

  private take(key: string): Lock {
    this.queues.set(key, [])
    return this.handle(key)
  }

  private handle(key: string): Lock {
    let released = false
    return {
      release: async () => {
        if (released) return
        released = true
        const queue = this.queues.get(key)!
        const next = queue.shift()
        if (next) next.grant()
        else this.queues.delete(key)
      },
    }
  }
}
