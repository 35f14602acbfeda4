import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { chunkFields } from '../helpers/dropzone-client.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { createLink } from '../links/helpers.ts'
import { stagedUploadCount } from '../helpers/stored.ts'


/**
 * Hostile protocol inputs, each sent to the admin endpoint and to a drop link's: every one is
 * answered 4xx, none reaches the log as an unexpected error, and none creates or changes anything.
 */

let server: TestServer
/** Path prefix of each endpoint under test. */
const endpoints: Record<'admin' | 'link', string> = { admin: '', link: '' }
beforeAll(async () => {
  server = await startTestServer({ MAX_FILE_SIZE: '16M', MAX_CHUNK_SIZE: '1M', CHUNK_SIZE: '1M' })
  endpoints.link = (await createLink(server)).path
})
afterAll(async () => {
  await server.stop()
})

const TUS = { 'tus-resumable': '1.0.0' }
const b64 = (text: string) => Buffer.from(text).toString('base64')
const uploadCount = () => (server.sql.get('select count(*) as n from uploads') as { n: number }).n
const stagingCount = () => stagedUploadCount(server)
const unexpectedSince = (from: number) => server.logs.slice(from).filter((line) => line.startsWith('unexpected error'))
const named = (name: string) => `filename ${b64(name)}`
const anId = 'a'.repeat(32)

/** Sends a request and checks it is refused with a 4xx, logs no unexpected error and leaves uploads as they were. */
async function expectRefused(send: () => Promise<Response>, status: number) {
  const before = { uploads: uploadCount(), staging: (await stagingCount()), rows: server.sql.all('select * from uploads order by id') }
  const logged = server.logs.length
  const response = await send()
  await response.arrayBuffer()
  expect(response.status).toBe(status)
  expect(unexpectedSince(logged)).toEqual([])
  expect({ uploads: uploadCount(), staging: (await stagingCount()), rows: server.sql.all('select * from uploads order by id') }).toEqual(before)
}

type Case = [what: string, headers: Record<string, string>, status: number]

/** Creation requests: each differs from a valid one (below) in one header. */
const creations: Case[] = [
  ['Upload-Length with a leading +', { 'upload-length': '+5' }, 400],
  ['Upload-Length in hex', { 'upload-length': '0x5' }, 400],
  ['Upload-Length with an exponent', { 'upload-length': '5e0' }, 400],
  ['Upload-Length negative', { 'upload-length': '-5' }, 400],
  ['Upload-Length past 2^53', { 'upload-length': '9007199254740993' }, 400],
  ['Upload-Length of 30 digits', { 'upload-length': '9'.repeat(30) }, 400],
  ['Upload-Length with a fraction', { 'upload-length': '5.0' }, 400],
  ['Upload-Length empty', { 'upload-length': '' }, 400],
  ['Upload-Length over the size limit', { 'upload-length': String(17 * 1024 * 1024) }, 413],
  ['Upload-Defer-Length other than 1', { 'upload-length': '', 'upload-defer-length': '2' }, 400],
  ['a file name with NUL', { 'upload-metadata': named('a\u0000b.txt') }, 400],
  ['a file name with a control character', { 'upload-metadata': named('a\u001bb.txt') }, 400],
  ['a file name over 255 bytes', { 'upload-metadata': named('x'.repeat(256)) }, 400],
  ['a file name of 10 KB', { 'upload-metadata': named('x'.repeat(10_000)) }, 431],
  ['a file name ".."', { 'upload-metadata': named('..') }, 400],
  ['a file name "/"', { 'upload-metadata': named('/') }, 400],
  ['an empty file name', { 'upload-metadata': 'filename ' }, 400],
  ['no file name', { 'upload-metadata': `filetype ${b64('text/plain')}` }, 400],
  ['Upload-Metadata over 4 KB', { 'upload-metadata': `${named('a.txt')},note ${b64('n'.repeat(4000))}` }, 431],
  ['Upload-Metadata that is not base64', { 'upload-metadata': 'filename not*base64' }, 400],
  ['Upload-Metadata with a key twice', { 'upload-metadata': `${named('a')},${named('b')}` }, 400],
  ['Upload-Metadata with three words in a pair', { 'upload-metadata': `filename ${b64('a')} extra` }, 400],
  ['a folder that is not an id', { 'upload-metadata': `${named('a.txt')},folder ${b64('1; drop table')}` }, 400],
  ['a partial upload whose name has NUL', { 'upload-concat': 'partial', 'upload-metadata': named('a\u0000b') }, 400],
  ['a partial upload whose name is over 4 KB', { 'upload-concat': 'partial', 'upload-metadata': named('p'.repeat(4096)) }, 431],
  ['a partial upload whose name is over 255 bytes', { 'upload-concat': 'partial', 'upload-metadata': named('p'.repeat(300)) }, 400],
  ['Upload-Concat other than partial or final', { 'upload-concat': 'whole' }, 400],
  ['Upload-Concat "partial;x"', { 'upload-concat': 'partial;x' }, 400],
  ['Upload-Concat "final" without parts', { 'upload-concat': 'final;', 'upload-length': '' }, 400],
  ['Upload-Concat with a malformed URL', { 'upload-concat': 'final;http://[', 'upload-length': '' }, 400],
  ['Upload-Concat with a URL of no upload', { 'upload-concat': 'final;/tus/../../etc', 'upload-length': '' }, 400],
  ['Upload-Concat naming a part twice', { 'upload-concat': `final;/tus/${anId} /tus/${anId}`, 'upload-length': '' }, 400],
  ['Upload-Concat with 101 parts', { 'upload-concat': `final;${Array.from({ length: 101 }, (_, i) => i.toString(36).padStart(32, '0')).join(' ')}`, 'upload-length': '' }, 400],
  ['Upload-Concat of 10 KB', { 'upload-concat': `final;${`/tus/${anId} `.repeat(270)}`, 'upload-length': '' }, 431],
  ['Upload-Concat of 20 KB', { 'upload-concat': `final;${`/tus/${anId} `.repeat(540)}`, 'upload-length': '' }, 431],
  ['Upload-Checksum with an unknown algorithm', { 'content-type': 'application/offset+octet-stream', 'upload-checksum': `crc32 ${b64('abcd')}` }, 400],
  ['Upload-Checksum that is not base64', { 'content-type': 'application/offset+octet-stream', 'upload-checksum': 'sha256 !!!!' }, 400],
  ['Upload-Checksum of the wrong length', { 'content-type': 'application/offset+octet-stream', 'upload-checksum': `sha256 ${b64('short')}` }, 400],
]

/** Requests to an existing upload: each differs from a valid PATCH in one header. */
const patches: Case[] = [
  ['Upload-Offset with a leading +', { 'upload-offset': '+0' }, 400],
  ['Upload-Offset in hex', { 'upload-offset': '0x0' }, 400],
  ['Upload-Offset with an exponent', { 'upload-offset': '0e0' }, 400],
  ['Upload-Offset negative', { 'upload-offset': '-0' }, 400],
  ['Upload-Offset past 2^53', { 'upload-offset': '9007199254740993' }, 400],
  ['Upload-Offset empty', { 'upload-offset': '' }, 400],
  ['Upload-Offset not where the upload stands', { 'upload-offset': '3' }, 409],
  ['Upload-Length that is not a number', { 'upload-length': '1e1' }, 400],
  ['Upload-Checksum with an unknown algorithm', { 'upload-checksum': `crc32 ${b64('abcd')}` }, 400],
  ['Upload-Checksum that is not base64', { 'upload-checksum': 'sha1 @@@@' }, 400],
  ['Upload-Checksum without a digest', { 'upload-checksum': 'sha1' }, 400],
  ['Upload-Checksum of the wrong length', { 'upload-checksum': `sha1 ${b64('x'.repeat(32))}` }, 400],
]

const validCreation = { ...TUS, 'upload-length': '10', 'upload-metadata': named('hostile.txt') }
const withoutEmpty = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== ''))

function create(prefix: string, headers: Record<string, string>) {
  const all = withoutEmpty({ ...validCreation, ...headers })
  const body = all['content-type'] ? 'hello' : undefined
  return server.fetch(`${prefix}/tus/`, { method: 'POST', headers: all, body })
}

/** A valid upload of 10 bytes at `prefix`, for the PATCH cases. */
async function existingUpload(prefix: string) {
  const response = await create(prefix, {})
  expect(response.status).toBe(201)
  return response.headers.get('location')!
}

const validPatch = { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }

for (const which of ['admin', 'link'] as const) {
  describe(`tus at the ${which} endpoint`, () => {
    test('the valid requests the cases below depart from are accepted', async () => {
      const prefix = endpoints[which]
      const uploads = uploadCount()
      const location = await existingUpload(prefix)
      expect(uploadCount()).toBe(uploads + 1)
      const patched = await server.fetch(location, { method: 'PATCH', headers: validPatch, body: 'hello' })
      expect(patched.status).toBe(204)
      expect(patched.headers.get('upload-offset')).toBe('5')
      expect((await server.fetch(location, { method: 'DELETE', headers: TUS })).status).toBe(204)
    })

    // A link's uploads always go into its folder, whatever the metadata says.
    const cases = which === 'link' ? creations.filter(([, headers]) => !headers['upload-metadata']?.includes(',folder ')) : creations
    test.each(cases)('creation: %s is refused', async (_what, headers, status) => {
      // Through a link, concatenation and deferred lengths are refused whatever they say (after the bounds on headers).
      const linkRefusesAnyway = which === 'link' && status !== 431 && ('upload-concat' in headers || 'upload-defer-length' in headers)
      await expectRefused(() => create(endpoints[which], headers), linkRefusesAnyway ? 400 : status)
    })

    test.each(patches)('PATCH: %s is refused', async (_what, headers, status) => {
      const location = await existingUpload(endpoints[which])
      await expectRefused(() => server.fetch(location, { method: 'PATCH', headers: withoutEmpty({ ...validPatch, ...headers }), body: 'hello' }), status)
      const head = await server.fetch(location, { method: 'HEAD', headers: TUS })
      expect(head.headers.get('upload-offset')).toBe('0')
    })

    test('a HEAD, PATCH or DELETE of an id that is not one is 404', async () => {
      for (const id of ['A'.repeat(32), 'a'.repeat(33), '%00', anId]) {
        for (const method of ['HEAD', 'PATCH', 'DELETE']) {
          await expectRefused(() => server.fetch(`${endpoints[which]}/tus/${id}`, { method, headers: validPatch, body: method === 'PATCH' ? 'x' : undefined }), 404)
        }
      }
    })
  })
}

/** Dropzone and plain multipart fields, each departing from a valid chunk in one field or the file name. */
const dzFields: [what: string, fields: Record<string, string | undefined>, status: number][] = [
  ['dzuuid with a slash', { dzuuid: '../x' }, 400],
  ['dzuuid with NUL', { dzuuid: 'a\u0000b' }, 400],
  ['dzuuid of 10 KB', { dzuuid: 'u'.repeat(10_000) }, 400],
  ['dzuuid empty', { dzuuid: '' }, 400],
  ['dzchunkindex negative', { dzchunkindex: '-1' }, 400],
  ['dzchunkindex huge', { dzchunkindex: '9'.repeat(30) }, 400],
  ['dzchunkindex in hex', { dzchunkindex: '0x1' }, 400],
  ['dzchunkindex past 2^53', { dzchunkindex: '9007199254740993' }, 400],
  ['dztotalchunkcount huge', { dztotalchunkcount: '9007199254740991' }, 400],
  ['dztotalchunkcount negative', { dztotalchunkcount: '-3' }, 400],
  ['dztotalchunkcount junk', { dztotalchunkcount: 'three' }, 400],
  ['dzchunkbyteoffset huge', { dzchunkbyteoffset: '9007199254740991' }, 400],
  ['dzchunkbyteoffset negative', { dzchunkbyteoffset: '-1000' }, 400],
  ['dztotalfilesize huge', { dztotalfilesize: '9007199254740991' }, 413],
  ['dztotalfilesize negative', { dztotalfilesize: '-2500' }, 400],
  ['dztotalfilesize with an exponent', { dztotalfilesize: '2.5e3' }, 400],
  ['dzchunksize huge', { dzchunksize: '9007199254740991' }, 413],
  ['dzchunksize zero', { dzchunksize: '0' }, 400],
]

const fileNames: [what: string, name: string, status: number][] = [
  ['NUL', 'a\u0000b.txt', 400],
  ['10 KB long', 'n'.repeat(10_000), 400],
  ['".."', '..', 400],
  ['"/"', '/', 400],
  ['empty', '', 400],
]

function multipart(prefix: string, fields: Record<string, string | undefined>, fileName: string) {
  const boundary = 'hostileboundary'
  const field = ([name, value]: [string, string | undefined]) =>
    value === undefined ? '' : `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  const disposition = fileName === '' ? 'filename=""' : `filename="x"; filename*=utf-8''${encodeURIComponent(fileName)}`
  const body =
    Object.entries(fields).map(field).join('') +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\n\r\n` +
    'x'.repeat(1000) +
    `\r\n--${boundary}--\r\n`
  return server.fetch(`${prefix}/upload`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body })
}

const validChunk = Object.fromEntries(Object.entries(chunkFields('hostile', 2500, 1000, 1)).map(([k, v]) => [k, String(v)]))

for (const which of ['admin', 'link'] as const) {
  describe(`Dropzone and multipart at the ${which} endpoint`, () => {
    test('the valid chunk and plain file the cases below depart from are accepted', async () => {
      const uploads = uploadCount()
      expect((await multipart(endpoints[which], { ...validChunk, dzuuid: `valid-${which}` }, 'data.bin')).status).toBe(200)
      expect((await multipart(endpoints[which], {}, 'plain.bin')).status).toBe(200)
      expect(uploadCount()).toBe(uploads + 2)
    })

    test.each(dzFields)('chunk: %s is refused', async (_what, fields, status) => {
      await expectRefused(() => multipart(endpoints[which], { ...validChunk, ...fields }, 'data.bin'), status)
    })

    test.each(fileNames)('chunk: a file name %s is refused', async (_what, name, status) => {
      await expectRefused(() => multipart(endpoints[which], validChunk, name), status)
    })

    test.each(fileNames)('plain file: a file name %s is refused', async (_what, name, status) => {
      await expectRefused(() => multipart(endpoints[which], {}, name), status)
    })
  })
}
