/**
 * A reason the server cannot start that its operator must resolve (another instance is running,
 * the port is taken). main.ts prints the message, without a stack, and exits with `exitCode`.
 */
export class StartupError extends Error {
  readonly exitCode = 3

  constructor(message: string) {
    super(message)
    this.name = 'StartupError'
  }
}
