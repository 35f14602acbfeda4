import { afterEach, describe, expect, test } from 'bun:test'
import { randomBytes } from 'node:crypto'
import { randomData } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { activityOf, createLink, median, one, sendLinkChunk, startClockedServer, startLinkServer, unlock, visit, type CreatedLink } from './helpers.ts'


/** Guessing tokens and passwords: 404s that tell nothing, a slow-down, and equal costs. */

let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

const newToken = () => randomBytes(24).toString('base64url')
const fake = (token: string): CreatedLink => ({ id: 0, token, path: `/d/${token}` })

/** The same character set, one position changed. */
function oneCharOff(token: string, position: number) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const c = token[position]!
  const replacement = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length]!
  return token.slice(0, position) + replacement + token.slice(position + 1)
}

describe('token guessing', () => {
  test('random well-formed tokens, near misses and malformed tokens all answer 404 everywhere', async () => {
    const s = (server = await startLinkServer())
    const real = await createLink(s, { allowDownload: 'on' })
    const protectedLink = await createLink(s, { password: 'guarded door', label: 'guarded' })
    const candidates = [
      ...Array.from({ length: 5 }, newToken),
      oneCharOff(real.token, 0),
      oneCharOff(real.token, 17),
      oneCharOff(real.token, real.token.length - 1),
      real.token.slice(0, -1),
      real.token + 'A',
      real.token.toUpperCase() === real.token ? real.token.toLowerCase() : real.token.toUpperCase(),
      oneCharOff(protectedLink.token, 5),
    ]
    const malformed = ['abc', 'x'.repeat(65), `${real.token.slice(0, 10)}.${real.token.slice(11)}`, `${real.token.slice(0, 10)}%20${real.token.slice(11)}`, '%00', '..%2F..%2Flinks']
    for (const token of [...candidates, ...malformed]) {
      const link = fake(token)
      const page = await visit(s, link.path)
      expect({ token, status: page.status }).toEqual({ token, status: 404 })
      expect(await page.text()).not.toContain('id="dropzone"')
      const chunk = await sendLinkChunk(s, link, 'guess', randomData(10), 0)
      expect({ token, status: chunk.status }).toEqual({ token, status: 404 })
      expect((await visit(s, `${link.path}/files`)).status).toBe(404)
      expect((await visit(s, `${link.path}/files/1/download`)).status).toBe(404)
      expect((await visit(s, `${link.path}/tus/`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1' } })).status).toBe(404)
    }
    // Unlocking a token that does not exist is a 404 too, and is neither logged nor counted as a wrong password.
    for (const token of candidates.slice(0, 3)) expect((await unlock(s, fake(token), 'guarded')).response.status).toBe(404)
    expect(activityOf(s, 'link.unlock.failure')).toEqual([])
    expect(one(s, 'select count(*) as n from uploads')).toEqual({ n: 0 })
    // The real ones still work.
    expect((await visit(s, real.path)).status).toBe(200)
  }, 30_000)

  test('unlocking costs one password check whether or not the token exists', async () => {
    // Each attempt from its own address, so the slow-down never answers early.
    const s = (server = await startLinkServer({ TRUST_PROXY: 'true' }))
    const link = await createLink(s, { password: 'the real password' })
    const unknown = fake(newToken())
    let client = 0
    const attempt = async (target: CreatedLink) => {
      const started = performance.now()
      const response = await visit(s, `${target.path}/unlock`, {
        method: 'POST',
        body: new URLSearchParams({ password: 'a wrong password' }),
        headers: { 'x-forwarded-for': `10.0.${Math.floor(++client / 250)}.${client % 250}` },
      })
      await response.arrayBuffer()
      return { status: response.status, ms: performance.now() - started }
    }
    // Warm up both paths.
    await attempt(link)
    await attempt(unknown)
    const known: number[] = []
    const missing: number[] = []
    for (let i = 0; i < 10; i++) {
      const a = await attempt(link)
      const b = await attempt(unknown)
      expect(a.status).toBe(401)
      expect(b.status).toBe(404)
      known.push(a.ms)
      missing.push(b.ms)
    }
    const knownMedian = median(known)
    const missingMedian = median(missing)
    // Both include an argon2 check (tens of milliseconds), so neither is a fraction of the other.
    expect(missingMedian).toBeGreaterThanOrEqual(knownMedian / 2)
    expect(knownMedian).toBeGreaterThanOrEqual(missingMedian / 2)
    // And that check really is there: far slower than a request without one.
    const page: number[] = []
    for (let i = 0; i < 10; i++) {
      const started = performance.now()
      await (await visit(s, unknown.path)).arrayBuffer()
      page.push(performance.now() - started)
    }
    expect(missingMedian).toBeGreaterThan(median(page) * 2)
  }, 30_000)
})

describe('password guessing', () => {
  test('five wrong passwords are free, then each further one doubles the wait (429 + Retry-After), even for the right one', async () => {
    const s = await startClockedServer({ TRUST_PROXY: 'true' })
    server = s
    const link = await createLink(s, { password: 'right password', label: 'Guarded' })
    const other = await createLink(s, { password: 'other password', label: 'Other' })
    const from = (address: string) => ({ 'x-forwarded-for': address })
    const tryPassword = async (target: CreatedLink, password: string, address = '203.0.113.7') => {
      const response = await visit(s, `${target.path}/unlock`, { method: 'POST', body: new URLSearchParams({ password }), headers: from(address) })
      const body = await response.text()
      return { status: response.status, retryAfter: response.headers.get('retry-after'), body, setCookie: response.headers.get('set-cookie') }
    }

    for (let i = 0; i < 5; i++) expect((await tryPassword(link, `guess ${i}`)).status).toBe(401)
    let blocked = await tryPassword(link, 'right password')
    expect(blocked).toMatchObject({ status: 429, retryAfter: '1', setCookie: null })
    expect(blocked.body).toContain('Too many wrong passwords')
    // Blocked attempts are not checked, so they are not logged either.
    expect(activityOf(s, 'link.unlock.failure')).toHaveLength(5)

    // The slow-down is for this client on this link: its other links and other clients are heard at once.
    expect((await tryPassword(other, 'other password')).status).toBe(303)
    expect((await tryPassword(link, 'right password', '198.51.100.9')).status).toBe(303)

    // After the wait, one more wrong guess: the next wait is 2 s, then 4 s.
    s.advance(1000)
    expect((await tryPassword(link, 'guess 5')).status).toBe(401)
    expect(await tryPassword(link, 'guess 6')).toMatchObject({ status: 429, retryAfter: '2' })
    // (Real time passes too, a little: each check takes some milliseconds.)
    s.advance(1000)
    expect(await tryPassword(link, 'guess 6')).toMatchObject({ status: 429, retryAfter: '1' })
    s.advance(1000)
    expect((await tryPassword(link, 'guess 6')).status).toBe(401)
    expect(await tryPassword(link, 'right password')).toMatchObject({ status: 429, retryAfter: '4' })
    s.advance(4000)
    const right = await tryPassword(link, 'right password')
    expect(right.status).toBe(303)
    expect(right.setCookie).toStartWith(`dropfold_unlock_${link.id}=`)

    const failures = activityOf(s, 'link.unlock.failure')
    expect(failures).toHaveLength(7)
    expect(failures.every((f) => f.client_address === '203.0.113.7')).toBe(true)
    expect(activityOf(s, 'link.unlock.success').map((r) => r.client_address)).toEqual(['203.0.113.7', '198.51.100.9', '203.0.113.7'])
  }, 30_000)
})

describe('visitors with the right password are not locked out by guessers', () => {
  const from = (address: string) => ({ 'x-forwarded-for': address })
  async function tryPassword(s: TestServer, target: CreatedLink, password: string, address: string) {
    const response = await visit(s, `${target.path}/unlock`, { method: 'POST', body: new URLSearchParams({ password }), headers: from(address) })
    await response.arrayBuffer()
    return { status: response.status, retryAfter: Number(response.headers.get('retry-after') ?? 0) }
  }

  test('an address guessing without pause, and one guessing every 15 minutes, do not stop a fresh visitor with the right password', async () => {
    const s = (server = await startClockedServer({ TRUST_PROXY: 'true' }))
    const link = await createLink(s, { password: 'right password' })
    let checked = 0
    let waited = 0
    // One attacker: guesses again as soon as it may, 40 times (waiting out every slow-down).
    for (let i = 0; i < 40; i++) {
      const attempt = await tryPassword(s, link, `guess ${i}`, '203.0.113.66')
      if (attempt.status === 429) {
        waited++
        s.advance(attempt.retryAfter * 1000)
      } else {
        expect(attempt.status).toBe(401)
        checked++
      }
    }
    // The other: one wrong guess every 15 minutes, for two hours.
    for (let i = 0; i < 8; i++) {
      expect((await tryPassword(s, link, `slow guess ${i}`, '203.0.113.77')).status).toBe(401)
      s.advance(15 * 60_000)
    }
    // Proves the attacker could be slowed down (this test would pass vacuously otherwise), and by how much.
    expect(waited).toBeGreaterThan(0)
    expect(checked).toBeLessThanOrEqual(5 + 20)
    // A fresh visitor gets in at once.
    expect((await tryPassword(s, link, 'right password', '198.51.100.1')).status).toBe(303)
    // So does one who mistyped once first.
    expect((await tryPassword(s, link, 'rihgt password', '198.51.100.2')).status).toBe(401)
    expect((await tryPassword(s, link, 'right password', '198.51.100.2')).status).toBe(303)
  }, 60_000)

  test('distributed guessing on one link is bounded: five per address, then twenty more in all, while fresh visitors still get in', async () => {
    const s = (server = await startClockedServer({ TRUST_PROXY: 'true' }))
    const link = await createLink(s, { password: 'right password' })
    const addresses = Array.from({ length: 11 }, (_, i) => `192.0.2.${i + 1}`)
    // Five free failures per address, all checked.
    for (const address of addresses) {
      for (let i = 0; i < 5; i++) expect((await tryPassword(s, link, `guess ${i}`, address)).status).toBe(401)
    }
    // Past their own free failures, every address draws on the link's budget of twenty.
    const statuses: number[] = []
    for (let round = 0; round < 2; round++) {
      s.advance(10_000) // past every address's own wait
      for (const address of addresses) statuses.push((await tryPassword(s, link, 'another guess', address)).status)
    }
    expect(statuses.filter((x) => x === 401)).toHaveLength(20)
    expect(statuses.filter((x) => x === 429)).toHaveLength(2)
    expect(activityOf(s, 'link.unlock.failure')).toHaveLength(11 * 5 + 20)
    // The budget blocks only addresses past their free failures: a fresh one is checked (and gets in).
    expect((await tryPassword(s, link, 'right password', '198.51.100.1')).status).toBe(303)
  }, 60_000)

  test('250 parallel wrong unlocks from one address: five are checked, the rest refused at once', async () => {
    // The clock stands still: on a loaded machine the burst may last longer than the first
    // wait (1 s), after which a sixth check is rightly allowed.
    const frozen = Date.now()
    const s = (server = await startTestServer({ CHUNK_SIZE: '64K' }, { clock: () => frozen }))
    const link = await createLink(s, { password: 'right password' })
    const answers = await Promise.all(Array.from({ length: 250 }, (_, i) => unlock(s, link, `parallel guess ${i}`)))
    const statuses = answers.map((a) => a.response.status)
    expect(statuses.filter((x) => x === 401)).toHaveLength(5)
    expect(statuses.filter((x) => x === 429 || x === 503)).toHaveLength(245)
    expect(answers.every((a) => a.response.status === 401 || a.response.headers.get('retry-after') !== null)).toBe(true)
    expect(activityOf(s, 'link.unlock.failure')).toHaveLength(5)
  }, 60_000)
})
