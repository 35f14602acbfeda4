// Preloaded for every `bun test` run (bunfig.toml): once every file has run, says which suites
// were skipped for want of a service (PostgreSQL, nginx, Chromium), and how to run them.
import { afterAll } from 'bun:test'
import { skippedReport } from './services.ts'
import { skippedOnPostgres } from './backend.ts'
import { skippedOffLocalDisk } from './s3.ts'

afterAll(() => {
  for (const { service, suites } of skippedReport()) {
    process.stderr.write(`\nSkipped ${suites.length} suite(s) that need ${service.name}: ${suites.join('; ')}.\n${service.howToRun}\n`)
  }
  const sqliteOnly = skippedOnPostgres()
  if (sqliteOnly.length) process.stderr.write(`\nSkipped ${sqliteOnly.length} test(s) on PostgreSQL that look into SQLite itself: ${sqliteOnly.join('; ')}.\n`)
  const localOnly = skippedOffLocalDisk()
  if (localOnly.length) process.stderr.write(`\nSkipped ${localOnly.length} test(s) on S3 that look into DATA_DIR itself: ${localOnly.join('; ')}.\n`)
})
