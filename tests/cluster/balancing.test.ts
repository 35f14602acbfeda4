import { expect, test } from 'bun:test'
import { describeWithNginx, type Cluster } from '../helpers/cluster.ts'
import { clusterPerTest } from './helpers.ts'

/**
 * nginx itself, with the deployed configuration, in front of three Dropfold processes. Until the
 * instances can share a database each has its own DATA_DIR here, so only requests that need no
 * shared state are sent: what is tested is how nginx spreads requests and moves on from a dead
 * instance, and that the harness sees it.
 */

const start = clusterPerTest()

const healthz = (entry: { uri: string }) => entry.uri === '/healthz'

async function send(cluster: Cluster, count: number, request: () => Promise<Response>) {
  const statuses: number[] = []
  for (let i = 0; i < count; i++) {
    const response = await request()
    await response.arrayBuffer()
    statuses.push(response.status)
  }
  return statuses
}

describeWithNginx('nginx spreading requests over three instances', () => {
  test('requests go round robin to every instance, and the per-instance counts add up to what nginx served', async () => {
    const cluster = await start({ instances: 3, dataDirEach: true })
    const before = cluster.instances.map((i) => i.requests(healthz))
    const statuses = await send(cluster, 30, () => fetch(`${cluster.url}/healthz`))
    expect(statuses.every((s) => s === 200)).toBe(true)
    await cluster.logged(healthz, before.reduce((a, b) => a + b, 0) + 30)
    const served = cluster.instances.map((instance, i) => instance.requests(healthz) - before[i]!)
    expect(served).toEqual([10, 10, 10])
  })

  test('after kill -9 of one instance every request, POSTs included, is answered by the others; none reaches the dead one', async () => {
    const cluster = await start({ instances: 3, dataDirEach: true })
    const [dead, ...alive] = cluster.instances
    await dead!.kill()
    expect(dead!.alive()).toBe(false)
    const servedBefore = dead!.requests()
    const loggedBefore = cluster.accessLog().length

    // POSTs first: the first one whose turn is the dead instance finds its connection refused,
    // before any of it was sent, so nginx passes it to the next instance.
    const form = () => new URLSearchParams({ password: 'not the password' })
    const posts = await send(cluster, 6, () => fetch(`${cluster.url}/login`, { method: 'POST', body: form(), redirect: 'manual' }))
    const gets = await send(cluster, 12, () => fetch(`${cluster.url}/healthz`))
    expect(posts.every((s) => s === 401)).toBe(true)
    expect(gets.every((s) => s === 200)).toBe(true)

    const entries = (await cluster.logged(() => true, loggedBefore + 18)).slice(loggedBefore)
    expect(entries.every((e) => e.upstream !== dead!.address)).toBe(true)
    expect(dead!.requests()).toBe(servedBefore)
    const movedOn = entries.filter((e) => e.upstreams.length > 1)
    expect(movedOn.length).toBeGreaterThanOrEqual(1)
    expect(movedOn[0]).toMatchObject({ method: 'POST', upstreams: [dead!.address, expect.any(String)] })
    expect(alive.every((instance) => instance.requests() > 0)).toBe(true)
  })

  test('without proxy_next_upstream, the request whose turn was the dead instance would fail', async () => {
    const cluster = await start({ instances: 3, dataDirEach: true, override: { proxy_next_upstream: 'off' } })
    await cluster.instances[0]!.kill()
    const form = () => new URLSearchParams({ password: 'not the password' })
    const posts = await send(cluster, 6, () => fetch(`${cluster.url}/login`, { method: 'POST', body: form(), redirect: 'manual' }))
    expect(posts).toContain(502)
  })
})
