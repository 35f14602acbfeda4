import { expect, test } from 'bun:test'
import { chunkFields, sendChunk } from '../helpers/dropzone-client.ts'
import { newDataDir, removeDataDir, seededRandom, spawnServer, storeProblems, type ServerProcess } from './harness.ts'
import { checkDownloads, checkRecords, continueAll, fileRowCount, plan, requestCount, unfinished } from './resuming-clients.ts'

/**
 * Kills the server with SIGKILL in the middle of parallel Dropzone and tus uploads, starts it
 * again on the same data directory, resumes every upload as a client would, and checks what
 * Dropfold promises: every file's SHA-256, no acknowledged chunk or offset lost, no duplicate
 * file, blob reference counts exact (also in the state the crash left).
 *
 * CRASH_ITERATIONS (default 10) sets how many crashes; CRASH_SEED replays a run (iteration i
 * uses seed CRASH_SEED + i, printed in its name and on failure).
 */

const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 10)
const FIRST_SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31))
/** Kills the server at its `killAt`-th acknowledgement (`delayMs` later), or when asked if that never comes. */
function crashAt(server: ServerProcess, killAt: number, delayMs: number) {
  let acks = 0
  let crashing = false
  const crash = Promise.withResolvers<void>()
  const killNow = () => {
    if (crashing) return
    crashing = true
    void server.kill().then(crash.resolve)
  }
  return {
    acknowledged() {
      if (++acks !== killAt) return
      if (delayMs === 0) killNow()
      else setTimeout(killNow, delayMs)
    },
    /** Kills the server unless it is being killed already (a refusal may stop uploads early); resolves with the acknowledgements seen. */
    async crashed() {
      killNow()
      await crash.promise
      return acks
    },
  }
}

async function crashIteration(seed: number) {
  const rng = seededRandom(seed)
  const dataDir = newDataDir()
  const problems: string[] = []
  const events: string[] = []
  let server = await spawnServer(dataDir)
  try {
    const { uploads, stored } = plan(rng)
    const before = await sendChunk(server, chunkFields('stored-before', stored.data.length, stored.data.length, 0), stored.data, { fileName: stored.name })
    expect(before.status).toBe(200)
    await before.arrayBuffer()

    // One crash while everything is being sent; half the time a second one while resuming.
    const crashes = rng.next() < 0.5 ? 2 : 1
    const total = uploads.reduce((n, upload) => n + requestCount(upload), 0)
    const outputs: string[] = []
    for (let round = 0; round < crashes; round++) {
      const killAt = round === 0 ? rng.int(1, total - 1) : rng.int(1, 12)
      const delayMs = rng.next() < 0.5 ? 0 : rng.int(1, 15)
      const crash = crashAt(server, killAt, delayMs)
      await continueAll(server, uploads, rng, crash.acknowledged, problems)
      const acks = await crash.crashed()
      events.push(`crash ${round + 1}: kill at acknowledgement ${killAt}${round === 0 ? ` of ${total}` : ''} +${delayMs} ms; ${acks} acknowledged, ${uploads.filter(unfinished).length} of ${uploads.length} uploads unfinished`)
      for (const problem of storeProblems(dataDir)) problems.push(`right after crash ${round + 1}: ${problem}`)
      outputs.push(server.output())
      server = await spawnServer(dataDir)
    }
    await continueAll(server, uploads, rng, () => {}, problems)
    await checkDownloads(server, uploads, problems)
    await server.stop()
    checkRecords(dataDir, uploads, problems)

    for (const problem of storeProblems(dataDir)) problems.push(`after resuming: ${problem}`)
    const files = fileRowCount(dataDir)
    if (files !== uploads.length + 1) problems.push(`${files} file rows for ${uploads.length + 1} files uploaded`)
    if (problems.length) console.error(`crash test, seed ${seed}:\n${events.join('\n')}\n${[...outputs, server.output()].map((o, i) => `--- server ${i + 1}:\n${o}`).join('\n')}`)
    else console.log(`crash test, seed ${seed}: ${events.join('; ')}`)
    expect({ seed, problems }).toEqual({ seed, problems: [] })
  } finally {
    await server.kill()
    removeDataDir(dataDir)
  }
}

for (let i = 0; i < ITERATIONS; i++) {
  const seed = FIRST_SEED + i
  test(`a SIGKILL during parallel Dropzone and tus uploads loses nothing acknowledged, and resuming stores every file once (seed ${seed})`, () => crashIteration(seed), 60_000)
}
