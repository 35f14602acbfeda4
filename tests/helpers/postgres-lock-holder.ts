// A process that takes the locks named on its command line and holds them until it is killed
// (tests kill it with SIGKILL to show PostgreSQL lets go of a dead instance's locks).
import { PostgresLocker } from '../../src/adapters/postgres/locker.ts'

const [url, ...keys] = process.argv.slice(2)
const locker = await PostgresLocker.open(url!)
for (const key of keys) await locker.lock(key)
process.stdout.write('holding\n')
setInterval(() => {}, 60_000)
