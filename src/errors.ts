/**
 * The one error type whose message may be shown to the outside world. The engine and the routes
 * throw it; the app's error handler renders it (JSON for Dropzone, plain text for tus).
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
