/**
 * What went wrong, in the domain's words. The core throws these; the HTTP layer alone decides
 * which status and headers each kind becomes (src/http/errors.ts). The message is meant for
 * people and reaches the client as it is; anything that is not a DomainError never does.
 */
export const ERROR_KINDS = [
  /** The request's input breaks a rule (a name, a size that does not add up, a chunk out of range). */
  'invalid',
  /** A link's count of files is used up. */
  'limit-reached',
  /** No such folder, file, upload or link. */
  'not-found',
  /** The thing's state does not allow it (a name taken, an offset that moved on, a record in use). */
  'conflict',
  /** It existed but is no more: expired, cancelled, switched off, used up, deleted. */
  'gone',
  /** Larger than a limit allows. */
  'too-large',
  /** A kind of file the link does not take. */
  'unsupported-type',
  /** Another request is writing it right now; retry shortly. */
  'busy',
  /** The bytes do not match the checksum the client sent. */
  'checksum-mismatch',
  /** Dropfold could not keep what it was given (bytes missing or of the wrong size). */
  'failed',
  /** A passing fault (database held by another program, a disk error); retry after a while. */
  'unavailable',
  /** The disk is full, or a reservation of space is used up. */
  'no-space',
] as const

export type ErrorKind = (typeof ERROR_KINDS)[number]

export interface ErrorDetails {
  /** When trying again makes sense (`unavailable`). */
  retryAfterSeconds?: number
}

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message)
    this.name = 'DomainError'
  }

  /** The same refusal told about something more specific (e.g. which file of a request). */
  reworded(message: string): DomainError {
    return new DomainError(this.kind, message, this.details)
  }
}
