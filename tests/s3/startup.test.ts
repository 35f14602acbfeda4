import { PutBucketPolicyCommand } from '@aws-sdk/client-s3'
import { describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { checkS3 } from '../../src/adapters/s3/check.ts'
import { undoneAfterEach } from '../helpers/processes.ts'
import { describeS3, freshBucket, s3Env, testS3Settings, type TestBucket } from '../helpers/s3.ts'

// STORAGE=s3 from the outside: `bun src/main.ts` as an operator starts it, with each thing an
// operator can get wrong, and the secret key never in what it prints.

const { cleanups, tempDir, spawned } = undoneAfterEach('dropfold-s3-startup-')
const bucket = async () => {
  const made = await freshBucket()
  cleanups.push(() => made.drop())
  return made
}

/** A secret no real store would hold, easy to spot in anything printed. */
const DISTINCTIVE_SECRET = 'Zx9-SECRET-dropfold-startup-7Qw'

/** A port nothing listens on: bound, then closed. */
function closedPort() {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  return port
}

/** Starts the server with `env`, expects it to refuse with `exitCode`, and returns what it printed. */
async function refused(env: Record<string, string>, exitCode: number) {
  const child = spawned({ DATA_DIR: tempDir(), ...env })
  expect(await child.proc.exited).toBe(exitCode)
  const printed = await child.stderr
  expect(printed).not.toContain('    at ')
  return printed
}

const S3_OK_SHAPE = {
  STORAGE: 's3',
  S3_ENDPOINT: 'http://127.0.0.1:9',
  S3_BUCKET: 'dropfold-files',
  S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  S3_SECRET_ACCESS_KEY: DISTINCTIVE_SECRET,
}

describe('STORAGE=s3: settings refused before anything is asked of the store', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['an unknown STORAGE', { STORAGE: 'nfs' }, 'STORAGE must be local or s3, got "nfs"'],
    ['no endpoint', { ...S3_OK_SHAPE, S3_ENDPOINT: '' }, 'STORAGE=s3 needs S3_ENDPOINT'],
    ['no bucket', { ...S3_OK_SHAPE, S3_BUCKET: '' }, 'STORAGE=s3 needs S3_BUCKET'],
    ['no access key', { ...S3_OK_SHAPE, S3_ACCESS_KEY_ID: '' }, 'STORAGE=s3 needs S3_ACCESS_KEY_ID'],
    ['no secret key', { ...S3_OK_SHAPE, S3_SECRET_ACCESS_KEY: '' }, 'STORAGE=s3 needs S3_SECRET_ACCESS_KEY'],
    ['an endpoint that is not a URL', { ...S3_OK_SHAPE, S3_ENDPOINT: '127.0.0.1:7480' }, 'S3_ENDPOINT must be a URL'],
    ['an endpoint with credentials in it', { ...S3_OK_SHAPE, S3_ENDPOINT: 'http://key:pw@127.0.0.1:7480' }, 'S3_ENDPOINT must be a URL'],
    ['a bucket name S3 does not allow', { ...S3_OK_SHAPE, S3_BUCKET: 'My_Files' }, 'S3_BUCKET must be a bucket name'],
    ['a prefix with ".."', { ...S3_OK_SHAPE, S3_PREFIX: 'a/../b' }, 'S3_PREFIX must be a path'],
    ['a path style that is not a boolean', { ...S3_OK_SHAPE, S3_FORCE_PATH_STYLE: 'maybe' }, 'S3_FORCE_PATH_STYLE must be true or false'],
  ]
  for (const [what, env, message] of cases) {
    test(`${what}: exit code 2 and "${message}", without the secret key`, async () => {
      const printed = await refused(env, 2)
      expect(printed).toContain(`Configuration error: ${message}`)
      expect(printed).not.toContain(DISTINCTIVE_SECRET)
    })
  }
})

test('an endpoint nothing listens on stops start-up, naming it, without the secret key, and leaves DATA_DIR untouched', async () => {
  const port = closedPort()
  const dataDir = join(tempDir(), 'data')
  const child = spawned({ ...S3_OK_SHAPE, S3_ENDPOINT: `http://127.0.0.1:${port}`, DATA_DIR: dataDir })
  expect(await child.proc.exited).toBe(3)
  const printed = await child.stderr
  expect(printed).toContain(`Dropfold cannot start: cannot use s3://dropfold-files/ at http://127.0.0.1:${port}: cannot reach the endpoint`)
  expect(printed).toContain('S3_ENDPOINT')
  expect(printed).not.toContain(DISTINCTIVE_SECRET)
  expect(printed).not.toContain('    at ')
  expect(existsSync(dataDir)).toBe(false)
})

describeS3('STORAGE=s3 against a real store: the start-up check', () => {
  /** Starts a server on `target` with `env` changed, expects the start-up check to refuse it, and returns what it printed. */
  async function checkRefuses(target: TestBucket, env: Record<string, string>) {
    const printed = await refused({ ...s3Env(target.settings), ...env }, 3)
    expect(printed).toContain('Dropfold cannot start: cannot use s3://')
    // Whatever the case, the secret the server was given appears nowhere in what it printed.
    expect(printed).not.toContain(env.S3_SECRET_ACCESS_KEY ?? target.settings.secretAccessKey)
    return printed
  }

  test('starts with good settings, leaves no probe object behind, and prints no secret', async () => {
    const target = await bucket()
    const child = spawned({ DATA_DIR: tempDir(), ...s3Env({ ...target.settings, prefix: 'team/dropfold/' }) })
    const url = await child.started
    expect((await fetch(`${url}/login`)).status).toBe(200)
    expect(await target.keys()).toEqual([])
    child.proc.kill('SIGTERM')
    await child.proc.exited
    expect(await child.stderr).not.toContain(target.settings.secretAccessKey)
  })

  test('an access key the store does not know is named', async () => {
    const printed = await checkRefuses(await bucket(), { S3_ACCESS_KEY_ID: 'NOSUCHKEY0000000000', S3_SECRET_ACCESS_KEY: DISTINCTIVE_SECRET })
    expect(printed).toContain('the store does not know this access key (S3_ACCESS_KEY_ID)')
  })

  test('a wrong secret key is named, and never printed', async () => {
    const printed = await checkRefuses(await bucket(), { S3_SECRET_ACCESS_KEY: DISTINCTIVE_SECRET })
    expect(printed).toContain('the secret key does not match the access key (S3_SECRET_ACCESS_KEY)')
  })

  test('a bucket that does not exist is named', async () => {
    const target = await bucket()
    const missing = `${target.settings.bucket.slice(0, 50)}-missing`
    const printed = await checkRefuses(target, { S3_BUCKET: missing })
    expect(printed).toContain(`the bucket "${missing}" does not exist (S3_BUCKET)`)
  })

  test('a bucket these keys may read but not write is named', async () => {
    const target = await bucket()
    // Proof that the keys could write there: the check passes before the policy.
    await checkS3(target.settings)
    await target.client.send(
      new PutBucketPolicyCommand({
        Bucket: target.settings.bucket,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Deny', Principal: '*', Action: ['s3:PutObject'], Resource: [`arn:aws:s3:::${target.settings.bucket}/*`] }],
        }),
      }),
    )
    const printed = await checkRefuses(target, {})
    expect(printed).toContain(`these keys may not write objects in the bucket "${target.settings.bucket}"`)
  })

  test('the endpoint of a store that is not there is named', async () => {
    const settings = testS3Settings('dropfold-nowhere', { endpoint: `http://127.0.0.1:${closedPort()}` })
    const printed = await refused(s3Env(settings), 3)
    expect(printed).toContain(`cannot reach the endpoint ${settings.endpoint}`)
    expect(printed).not.toContain(settings.secretAccessKey)
  })
})
