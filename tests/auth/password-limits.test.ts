import { afterEach, describe, expect, test } from 'bun:test'
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts'


/** Sign-in attempts under load and across restarts: reserved before they are checked, and kept in the database. */

let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

const attempt = (s: TestServer, password: string, headers: Record<string, string> = {}) =>
  fetch(`${s.url}/login`, { method: 'POST', body: new URLSearchParams({ password }), headers, redirect: 'manual' })

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!

describe('a burst of wrong passwords', () => {
  test('1,000 wrong sign-ins at once: five are checked, the rest refused at once, and /healthz stays responsive', async () => {
    // The clock stands still: the burst takes longer than the first wait (1 s), after which a sixth attempt would rightly be heard.
    const now = Date.now()
    const s = (server = await startTestServer({}, { clock: () => now }))
    // What /healthz takes on this machine right now, without the burst: the bound below is relative to it.
    const quiet: number[] = []
    for (let i = 0; i < 50; i++) {
      const started = performance.now()
      await (await fetch(`${s.url}/healthz`)).text()
      quiet.push(performance.now() - started)
    }
    Bun.gc(true)
    const rssBefore = process.memoryUsage().rss
    let peakRss = rssBefore
    const healthz: number[] = []
    let burstDone = false
    const sampler = (async () => {
      while (!burstDone) {
        const started = performance.now()
        const response = await fetch(`${s.url}/healthz`)
        await response.text()
        healthz.push(performance.now() - started)
        peakRss = Math.max(peakRss, process.memoryUsage().rss)
      }
    })()
    const answers = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const response = await attempt(s, `wrong password ${i}`)
        await response.arrayBuffer()
        return { status: response.status, retryAfter: response.headers.get('retry-after') }
      }),
    )
    burstDone = true
    await sampler
    const statuses = answers.map((a) => a.status)
    expect(statuses.filter((x) => x === 401)).toHaveLength(5)
    expect(statuses.filter((x) => x === 429)).toHaveLength(995)
    expect(answers.filter((a) => a.status === 429).every((a) => Number(a.retryAfter) >= 1)).toBe(true)
    const failures = s.sql.get("select count(*) as n from activity where action = 'login.failure'") as { n: number }
    expect(failures.n).toBe(5)
    const p99 = percentile(healthz, 0.99)
    console.log(`healthz during 1,000 wrong sign-ins: ${healthz.length} samples, p50 ${percentile(healthz, 0.5).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; RSS ${Math.round(rssBefore / 2 ** 20)} → peak ${Math.round(peakRss / 2 ** 20)} MiB`)
    expect(healthz.length).toBeGreaterThan(0)
    // Responsive, not fast (speed lives in the bench): before the checks were bounded, /healthz
    // took 2.2 s in such a burst. The bound scales with how loaded this shared machine is
    // without the burst, and looks at p90, not the maximum: the test's own client shares this
    // process, and sending the 1,000 requests stalls it a few times, whichever server answers.
    expect(percentile(healthz, 0.9)).toBeLessThan(Math.max(2000, 25 * percentile(quiet, 0.99)))
    // Five argon2 checks (19 MiB each, two at a time), not a thousand.
    expect(peakRss - rssBefore).toBeLessThan(150 * 2 ** 20)
  }, 60_000)

  test('past the queue of waiting checks, attempts are answered 503 with Retry-After at once', async () => {
    // Each attempt from its own address (so none is refused for failures): only the bound on checks can refuse them.
    const s = (server = await startTestServer({ TRUST_PROXY: 'true' }))
    const answers = await Promise.all(
      Array.from({ length: 120 }, async (_, i) => {
        const response = await attempt(s, 'wrong password', { 'x-forwarded-for': `10.1.${i >> 8}.${i & 255}` })
        await response.arrayBuffer()
        return { status: response.status, retryAfter: response.headers.get('retry-after') }
      }),
    )
    const busy = answers.filter((a) => a.status === 503)
    expect(busy.length).toBeGreaterThan(0)
    expect(busy.every((a) => a.retryAfter === '1')).toBe(true)
    expect(answers.filter((a) => a.status === 401).length).toBeGreaterThanOrEqual(2 + 32)
    expect(answers.every((a) => a.status === 401 || a.status === 503)).toBe(true)
    // A refused attempt was never checked, so it does not count against its client.
    const first = answers.findIndex((a) => a.status === 503)
    const again = await attempt(s, TEST_PASSWORD, { 'x-forwarded-for': `10.1.${first >> 8}.${first & 255}` })
    expect(again.status).toBe(303)
  }, 60_000)
})

describe('attempt counters', () => {
  test('survive a restart: five wrong passwords, a restart, and the sixth attempt still waits', async () => {
    let now = Date.now()
    const s = (server = await startTestServer({}, { clock: () => now }))
    for (let i = 0; i < 5; i++) expect((await attempt(s, `guess ${i}`)).status).toBe(401)
    await s.restart()
    const blocked = await attempt(s, TEST_PASSWORD)
    expect(blocked.status).toBe(429)
    expect(blocked.headers.get('retry-after')).toBe('1')
    now += 1000
    expect((await attempt(s, TEST_PASSWORD)).status).toBe(303)
  }, 60_000)

  test('old counters are pruned', async () => {
    let now = Date.now()
    const s = (server = await startTestServer({}, { clock: () => now }))
    expect((await attempt(s, 'wrong password')).status).toBe(401)
    const count = () => (s.sql.get('select count(*) as n from attempts') as { n: number }).n
    expect(count()).toBe(1)
    now += 25 * 3_600_000
    expect((await attempt(s, 'another wrong one', { 'x-forwarded-for': '10.9.9.9' })).status).toBe(401)
    expect(count()).toBe(1)
  }, 60_000)
})
