import { expect, test } from 'bun:test'
import { PostgresLocker } from '../../src/adapters/postgres/locker.ts'
import { describePostgres, suiteDatabase } from '../helpers/postgres.ts'
import { lockerContract } from './locker.ts'

describePostgres('PostgreSQL locker', () => {
  const database = suiteDatabase()

  /** Keys held as this instance counts them, checked against the advisory locks PostgreSQL says it holds. */
  const underTest = async () => {
    const locker = await PostgresLocker.open(database.url)
    return {
      locker,
      keysHeld: async () => {
        const held = await locker.advisoryLocksHeld()
        expect(held).toBe(locker.keysHeld())
        return held
      },
      close: () => locker.close(),
    }
  }

  lockerContract('PostgreSQL (advisory locks on one session)', underTest)

  test('two instances on one database exclude each other: tryLock answers null while the other holds the key', async () => {
    const [a, b] = await Promise.all([PostgresLocker.open(database.url), PostgresLocker.open(database.url)])
    try {
      const held = (await a.tryLock('upload:shared'))!
      expect(held).not.toBeNull()
      expect(await b.tryLock('upload:shared')).toBeNull()
      // Only that key: another is free on the other instance.
      const other = (await b.tryLock('upload:other'))!
      expect(other).not.toBeNull()
      await held.release()
      const now = await b.tryLock('upload:shared')
      expect(now).not.toBeNull()
      await Promise.all([now!.release(), other.release()])
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  test("a waiter on one instance gets the key once the other instance releases it, told by the release's notification", async () => {
    // A poll so slow the test would time out on it: only the notification can wake the waiter.
    const [a, b] = await Promise.all([PostgresLocker.open(database.url), PostgresLocker.open(database.url, { maxPollMs: 600_000 })])
    try {
      const held = await a.lock('blob:shared')
      let taken = false
      const waiting = b.lock('blob:shared').then((lock) => {
        taken = true
        return lock
      })
      // The waiter has asked PostgreSQL and been refused before the release.
      while (b.waitersOnOthers() < 1) await new Promise((resolve) => setImmediate(resolve))
      expect(taken).toBe(false)
      await held.release()
      const lock = await waiting
      expect(await a.tryLock('blob:shared')).toBeNull()
      await lock.release()
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  test('many holders across two instances never overlap on one key', async () => {
    const [a, b] = await Promise.all([PostgresLocker.open(database.url, { maxPollMs: 20 }), PostgresLocker.open(database.url, { maxPollMs: 20 })])
    try {
      let inside = 0
      let most = 0
      await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const lock = await (i % 2 ? a : b).lock('chunk:u:0')
          inside++
          most = Math.max(most, inside)
          await new Promise((resolve) => setImmediate(resolve))
          inside--
          await lock.release()
        }),
      )
      expect(most).toBe(1)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  test("an instance killed with SIGKILL loses its locks: another instance's waiter gets them", async () => {
    const child = Bun.spawn([process.execPath, import.meta.dir + '/../helpers/postgres-lock-holder.ts', database.url, 'upload:killed', 'blob:killed'], {
      stdout: 'pipe',
      stderr: 'inherit',
    })
    const locker = await PostgresLocker.open(database.url)
    try {
      // The child says when it holds both keys (and would hold them until killed).
      const reader = child.stdout.getReader()
      let said = ''
      while (!said.includes('holding')) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`the lock holder ended before holding its locks: ${said}`)
        said += new TextDecoder().decode(value)
      }
      // Proof the child holds them: this instance cannot take them.
      expect(await locker.tryLock('upload:killed')).toBeNull()
      const waiting = locker.lock('blob:killed')
      child.kill('SIGKILL')
      await child.exited
      // No release is ever said by a killed process: the waiters find the keys free by asking again.
      const [upload, blob] = [await locker.lock('upload:killed'), await waiting]
      await Promise.all([upload.release(), blob.release()])
    } finally {
      child.kill('SIGKILL')
      await locker.close()
    }
  })
})
