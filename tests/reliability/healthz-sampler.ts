/**
 * Asks `<url>/healthz` every ~20 ms until its stdin closes. Prints a line `ready` once the first
 * answer came, and at the end what it measured as JSON ({ latenciesMs, failures }). Run as a process of its own so that the load generator's event
 * loop does not add to the latencies it measures.
 */

export {}

const INTERVAL_MS = 20
/** A sampler left behind by a test that died stops by itself. */
const MAX_RUN_MS = 5 * 60_000
const REQUEST_TIMEOUT_MS = 10_000

const url = `${process.argv[2]}/healthz`
const latenciesMs: number[] = []
const failures: string[] = []
let running = true

const stdinClosed = (async () => {
  for await (const _ of Bun.stdin.stream()) {
    // Nothing is expected on stdin; only its end matters.
  }
})()
void stdinClosed.finally(() => {
  running = false
})
const deadline = Date.now() + MAX_RUN_MS

while (running && Date.now() < deadline) {
  const started = performance.now()
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    await response.arrayBuffer()
    if (response.status === 200) latenciesMs.push(performance.now() - started)
    else failures.push(`status ${response.status}`)
  } catch (error) {
    failures.push(String(error))
  }
  if (latenciesMs.length + failures.length === 1) process.stdout.write('ready\n')
  const pause = INTERVAL_MS - (performance.now() - started)
  if (pause > 0) await Bun.sleep(pause)
}

process.stdout.write(JSON.stringify({ latenciesMs, failures }))
process.exit(0)
