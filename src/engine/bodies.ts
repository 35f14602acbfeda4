import { DomainError } from '../core/errors.ts'
import { noteBytesReceived } from '../platform/collect-garbage.ts'
import { InterruptedWrite } from '../ports/staging.ts'

/** The reason a write stopped, as the client should hear it. */
export function unwrap(error: unknown): unknown {
  if (!(error instanceof InterruptedWrite)) return error
  const cause = error.cause
  if (cause instanceof DomainError || (cause as NodeJS.ErrnoException)?.code === 'ENOSPC') return cause
  // Anything else that breaks a body mid-stream is the connection going away: not our fault.
  if (cause instanceof Error && cause.name === 'AbortError') return new DomainError('invalid', 'The request body was interrupted')
  return cause
}

export function diskError(error: unknown): unknown {
  if ((error as NodeJS.ErrnoException)?.code === 'ENOSPC') return new DomainError('no-space', 'The server ran out of disk space')
  return error
}

export async function drain(body: AsyncIterable<Uint8Array>) {
  for await (const _ of body) void _
}

export async function* limitBytes(body: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let total = 0
  for await (const piece of body) {
    total += piece.length
    if (total > maxBytes) throw new DomainError('too-large', `The file is larger than the ${maxBytes}-byte limit`)
    yield piece
  }
}

/** A body's bytes in one array (no copy when it comes in one piece); for bodies known to be small. */
export async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const pieces: Uint8Array[] = []
  for await (const piece of body) {
    // Counted like bytes written to staging, so that spent bodies are collected as often.
    noteBytesReceived(piece.length)
    pieces.push(piece)
  }
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)
}

/** Bytes in hand, as a body. */
export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

/**
 * Bytes of request bodies held in memory, across all requests: a request takes its share before
 * its body is read into memory and gives it back when done. Past the limit, the caller refuses
 * (503) rather than letting memory grow with the number of clients.
 */
export class MemoryBudget {
  private heldBytes = 0

  constructor(private readonly limitBytes: number) {}

  /** Takes `bytes` if they fit beside what is held; returns the function that gives them back, or null. */
  take(bytes: number): (() => void) | null {
    if (this.heldBytes + bytes > this.limitBytes) return null
    this.heldBytes += bytes
    let given = false
    return () => {
      if (given) return
      given = true
      this.heldBytes -= bytes
    }
  }
}

/**
 * Passes `body` through while `check` keeps passing: it runs every `everyMs` while the body
 * streams (also while no byte comes) and once more at its end; the error it throws ends the body.
 */
export async function* watched(body: AsyncIterable<Uint8Array>, check: () => Promise<void>, everyMs: number): AsyncGenerator<Uint8Array> {
  let stop!: (error: unknown) => void
  const stopped = new Promise<never>((_, reject) => (stop = reject))
  stopped.catch(() => {})
  const timer = setInterval(() => check().catch(stop), everyMs)
  const pieces = body[Symbol.asyncIterator]()
  try {
    for (;;) {
      const next = await Promise.race([pieces.next(), stopped])
      if (next.done) break
      yield next.value
    }
    await check()
  } finally {
    clearInterval(timer)
    // Not awaited: a piece still pending would hold it up until the client sends more.
    pieces.return?.()?.catch(() => {})
  }
}
