import { expect, test } from 'bun:test'
import { describeWithNginx, type Cluster } from '../helpers/cluster.ts'
import { randomData } from '../helpers/data.ts'
import { tusHead } from '../helpers/tus.ts'
import { clusterPerTest, requestFrom } from './helpers.ts'

/**
 * A slow client through the deployed nginx configuration: its body is streamed to Dropfold as it
 * arrives (proxy_request_buffering off) and never cut while bytes keep coming (generous
 * timeouts). Each property is shown against the nginx setting that would break it, so the test
 * is seen to catch it.
 */

const KiB = 1024
const PIECES = 4
const PIECE_BYTES = 64 * KiB
const GAP_MS = 2000

const start = clusterPerTest()

/**
 * One tus PATCH through nginx whose body arrives in PIECES pieces, GAP_MS apart (about six
 * seconds in all). Meanwhile, until the last piece is sent, another PATCH at a wrong offset asks
 * again and again: Dropfold answers it 423 only while the slow PATCH holds the upload, that is
 * once the slow PATCH has reached Dropfold (otherwise 409, changing nothing).
 */
async function slowPatch(cluster: Cluster) {
  const total = PIECES * PIECE_BYTES
  const created = await cluster.fetch('/tus/', {
    method: 'POST',
    headers: { 'tus-resumable': '1.0.0', 'upload-length': String(total), 'upload-metadata': `filename ${btoa('slow.bin')}` },
  })
  expect(created.status).toBe(201)
  const path = created.headers.get('location')!
  const patchHeaders = (offset: number) => ({ 'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), cookie: cluster.cookie })

  let lastPieceSent = false
  const answer = requestFrom('127.0.0.1', cluster.url + path, {
    method: 'PATCH',
    headers: patchHeaders(0),
    body: Array.from({ length: PIECES }, () => randomData(PIECE_BYTES)),
    gapMs: GAP_MS,
    onLastPiece: () => (lastPieceSent = true),
  })
  let answered = false
  void answer.then(() => (answered = true))
  const probes: number[] = []
  while (!lastPieceSent && !answered) {
    const probe = await cluster.fetch(path, { method: 'PATCH', headers: { ...patchHeaders(1), 'content-length': '0' } })
    await probe.arrayBuffer()
    probes.push(probe.status)
    await Bun.sleep(100)
  }
  const response = await answer
  return { response, probes, total, offset: (await tusHead(cluster, cluster.url + path)).offset }
}

describeWithNginx('a slow upload through nginx', () => {
  test('a PATCH whose body trickles in over several seconds is streamed to Dropfold as it arrives and stored whole', async () => {
    const { response, probes, total, offset } = await slowPatch(await start())
    expect(response.status).toBe(204)
    expect(offset).toBe(total)
    // Dropfold held the upload while the body was still arriving: nginx did not wait for all of it.
    expect(probes).toContain(423)
    expect(probes.every((status) => status === 423 || status === 409)).toBe(true)
  }, 60_000)

  test('with nginx buffering request bodies (its default), Dropfold would see nothing until the client finished', async () => {
    const { response, probes, total, offset } = await slowPatch(await start({ override: { proxy_request_buffering: 'on' } }))
    expect(response.status).toBe(204)
    expect(offset).toBe(total)
    expect(probes.length).toBeGreaterThan(0)
    expect(probes.every((status) => status === 409)).toBe(true)
  }, 60_000)

  test('with a body timeout shorter than the pauses, nginx would cut the same upload', async () => {
    const { response, total, offset } = await slowPatch(await start({ override: { client_body_timeout: '1s' } }))
    expect(response.status).not.toBe(204)
    expect(offset).toBeLessThan(total)
  }, 60_000)
})
