import { HttpError } from '../errors.ts'
import { InterruptedWrite } from '../storage/types.ts'

/** The reason a write stopped, as the client should hear it. */
export function unwrap(error: unknown): unknown {
  if (!(error instanceof InterruptedWrite)) return error
  const cause = error.cause
  if (cause instanceof HttpError || (cause as NodeJS.ErrnoException)?.code === 'ENOSPC') return cause
  // Anything else that breaks a body mid-stream is the connection going away: not our fault.
  if (cause instanceof Error && cause.name === 'AbortError') return new HttpError(400, 'The request body was interrupted')
  return cause
}

export function diskError(error: unknown): unknown {
  if ((error as NodeJS.ErrnoException)?.code === 'ENOSPC') return new HttpError(507, 'The server ran out of disk space')
  return error
}

export async function drain(body: AsyncIterable<Uint8Array>) {
  for await (const _ of body) void _
}

export async function* limitBytes(body: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let total = 0
  for await (const piece of body) {
    total += piece.length
    if (total > maxBytes) throw new HttpError(413, `The file is larger than the ${maxBytes}-byte limit`)
    yield piece
  }
}

/** A body's bytes in one array (no copy when it comes in one piece); for bodies known to be small. */
export async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const pieces: Uint8Array[] = []
  for await (const piece of body) pieces.push(piece)
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)
}

/** Bytes in hand, as a body. */
export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}
