import { describe, expect, test } from 'bun:test'
import { GroupSync } from '../../src/platform/group-sync.ts'

/** A sync whose runs we start and finish by hand, counting them. */
function manualSync() {
  const runs: { finish: (error?: Error) => void }[] = []
  const group = new GroupSync(
    () =>
      new Promise<void>((resolve, reject) => {
        runs.push({ finish: (error) => (error ? reject(error) : resolve()) })
      }),
  )
  return { group, runs }
}

const settled = async (promise: Promise<unknown>) => {
  let done = false
  void promise.then(
    () => (done = true),
    () => (done = true),
  )
  await Bun.sleep(0)
  return done
}

describe('group sync', () => {
  test('idle() resolves at once when no sync runs, and otherwise after the running and the queued one, even if they fail', async () => {
    const { group, runs } = manualSync()
    expect(await settled(group.idle())).toBe(true)
    void group.request().catch(() => {})
    void group.request()
    const idle = group.idle()
    expect(await settled(idle)).toBe(false)
    runs[0]!.finish(new Error('disk gone'))
    expect(await settled(idle)).toBe(false)
    runs[1]!.finish()
    expect(await settled(idle)).toBe(true)
  })

  test('the first request starts a sync at once; requests made while it runs all wait for one next sync', async () => {
    const { group, runs } = manualSync()
    const first = group.request()
    expect(runs.length).toBe(1)
    // Made after the first sync began: that sync may not cover what these callers wrote.
    const waiting = [group.request(), group.request(), group.request()]
    expect(runs.length).toBe(1)
    runs[0]!.finish()
    await first
    expect(await settled(Promise.all(waiting))).toBe(false)
    expect(runs.length).toBe(2)
    runs[1]!.finish()
    await Promise.all(waiting)
    expect(runs.length).toBe(2)
  })

  test('with nothing running, a request starts a new sync', async () => {
    const { group, runs } = manualSync()
    const one = group.request()
    runs[0]!.finish()
    await one
    await Bun.sleep(0)
    const two = group.request()
    expect(runs.length).toBe(2)
    runs[1]!.finish()
    await two
  })

  test('a failed sync fails its waiters, and the next request starts a new one', async () => {
    const { group, runs } = manualSync()
    const failing = group.request()
    runs[0]!.finish(new Error('EIO'))
    expect(failing).rejects.toThrow('EIO')
    await Bun.sleep(0)
    const next = group.request()
    expect(runs.length).toBe(2)
    runs[1]!.finish()
    await next
  })
})
