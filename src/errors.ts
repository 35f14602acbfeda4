/**
 * A refusal decided by the HTTP side (routes, protocols, guards): a status and a message meant
 * for people. The core throws DomainErrors instead (src/core/errors.ts); src/http/errors.ts maps
 * both to the answer each protocol wants.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }
}
