// Preloaded for every `bun test` run (bunfig.toml): once every file has run, says which
// PostgreSQL suites were skipped for want of a server, and how to run them.
import { afterAll } from 'bun:test'
import { skippedPostgresSuites } from './postgres.ts'

afterAll(() => {
  const names = skippedPostgresSuites()
  if (names.length === 0) return
  process.stderr.write(
    `\nSkipped ${names.length} PostgreSQL suite(s) (TEST_DATABASE_URL is not set): ${names.join('; ')}.\n` +
      'Run them with `npm run test:postgres`, which starts a private PostgreSQL 15 cluster for the run, ' +
      'or set TEST_DATABASE_URL=postgres://user@host:port/postgres (a user who may create databases).\n',
  )
})
