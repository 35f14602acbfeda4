import { ConfigError, loadConfig } from './config.ts'
import { consoleLog, startServer } from './server.ts'
import { StartupError } from './startup-error.ts'

try {
  const config = loadConfig()
  const server = await startServer(config)
  console.log(`Dropfold is running at ${server.url}  (data in ${config.dataDir})`)
  if (!process.env.UV_THREADPOOL_SIZE) {
    // Bun sizes its file-system thread pool from this at start-up (a handful of threads by
    // default); every disk sync holds a thread, so parallel uploads would queue behind each other.
    consoleLog('UV_THREADPOOL_SIZE is not set: start with `npm start`, or set UV_THREADPOOL_SIZE=16, for faster parallel uploads')
  }
  if (server.generatedPassword) {
    console.log(`\nNo ADMIN_PASSWORD was set, so one was generated. It is shown only this once:\n\n    ${server.generatedPassword}\n\nOpen ${server.url}/login and sign in with it (or set ADMIN_PASSWORD).\n`)
  }
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    consoleLog(`received ${signal}, stopping`)
    await server.stop()
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`Configuration error: ${error.message}`)
    process.exit(2)
  }
  if (error instanceof StartupError) {
    console.error(`Dropfold cannot start: ${error.message}`)
    process.exit(error.exitCode)
  }
  throw error
}
