import { afterEach, describe, expect, test } from 'bun:test'
import { loadConfig } from '../../src/config.ts'
import { clientAddress } from '../../src/http/client-address.ts'
import { standingClock, startTestServer, type TestServer } from '../helpers/server.ts'

/** Which address a request comes from, behind trusted proxies: never what the client wrote itself. */

let server: TestServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

describe('TRUST_PROXY', () => {
  test('40 sign-ins with forged left-most X-Forwarded-For addresses are limited as one client and logged with the address the proxy appended', async () => {
    // The clock stands still: the waits after the fifth failure cannot run out on a slow machine.
    const s = (server = await startTestServer({ TRUST_PROXY: 'true' }, { clock: standingClock() }))
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) {
      const response = await fetch(`${s.url}/login`, {
        method: 'POST',
        body: new URLSearchParams({ password: `guess ${i}` }),
        // The client wrote the first entry; our proxy appended the last.
        headers: { 'x-forwarded-for': `10.66.0.${i}, 198.51.100.23` },
        redirect: 'manual',
      })
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    expect(statuses.filter((x) => x === 401)).toHaveLength(5)
    expect(statuses.filter((x) => x === 429)).toHaveLength(35)
    const logged = s.sql.all("select distinct client_address as address from activity where action = 'login.failure'")
    expect(logged).toEqual([{ address: '198.51.100.23' }])
  }, 60_000)

  const request = (forwardedFor: string | null) => new Request('http://x/', { headers: forwardedFor === null ? {} : { 'x-forwarded-for': forwardedFor } })
  const peer = (address: string) => ({ requestIP: () => ({ address, family: 'IPv4', port: 1 }) }) as never
  const trust = (value: string) => loadConfig({ TRUST_PROXY: value }).trustProxy

  test.each([
    ['false', '6.6.6.6, 203.0.113.9', '10.0.0.2', '10.0.0.2'],
    ['true', '6.6.6.6, 203.0.113.9', '10.0.0.2', '203.0.113.9'],
    ['1', '6.6.6.6,203.0.113.9', '10.0.0.2', '203.0.113.9'],
    // Two proxies of ours: the first appended the client, the second appended the first proxy.
    ['2', '6.6.6.6, 203.0.113.9, 10.0.0.7', '10.0.0.2', '203.0.113.9'],
    ['true', null, '10.0.0.2', '10.0.0.2'],
    // Proxies by address: skip their own entries from the right; the first outside them is the client.
    ['10.0.0.0/8, ::1', '6.6.6.6, 203.0.113.9, 10.0.0.7', '10.0.0.2', '203.0.113.9'],
    ['10.0.0.0/8', '6.6.6.6, 203.0.113.9', '10.0.0.2', '203.0.113.9'],
    // A peer that is not one of the proxies wrote the header itself: it is not believed.
    ['10.0.0.0/8', '203.0.113.9', '192.0.2.1', '192.0.2.1'],
    ['192.0.2.1, 2001:db8::/32', '203.0.113.9, 2001:db8::5', '192.0.2.1', '203.0.113.9'],
  ])('TRUST_PROXY=%s, X-Forwarded-For %p from %s: the client is %s', (setting, forwardedFor, from, expected) => {
    expect(clientAddress(request(forwardedFor), peer(from), trust(setting))).toBe(expected)
  })

  test.each(['maybe', '10.0.0.0/33', '10.0.0.0/8, nonsense', '0x10', '999.1.1.1'])('TRUST_PROXY=%p is refused at start-up with a clear message', (value) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY must be true or false, a number of proxies/)
  })
})
