import { expect } from 'bun:test'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { chunkFields, chunkOf } from '../helpers/dropzone-client.ts'
import type { Param } from '../helpers/database.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

/**
 * Helpers for the drop link tests. The admin side goes through `server.fetch` (admin cookie);
 * everything a visitor does goes through plain `fetch` with no cookie but the ones given.
 */

/** Small chunks, so multi-chunk uploads stay small. */
export const CHUNK = 64 * 1024

export const startLinkServer = (env: Record<string, string> = {}) => startTestServer({ CHUNK_SIZE: '64K', ...env })

/** SQL on the server's database, either backend (tests/helpers/database.ts). */
export function rows<T = Record<string, unknown>>(server: TestServer, query: string, ...params: Param[]): T[] {
  return server.sql.all<T>(query, ...params)
}

export function one<T = Record<string, unknown>>(server: TestServer, query: string, ...params: Param[]): T | null {
  return server.sql.get<T>(query, ...params)
}

/** POSTs a form as the admin. */
export function adminPost(server: TestServer, path: string, fields: Record<string, string> = {}) {
  return server.fetch(path, { method: 'POST', body: new URLSearchParams(fields) })
}

export interface CreatedLink {
  id: number
  token: string
  /** /d/<token> */
  path: string
}

/** Creates a link through the admin form (folder 1 and a label unless given) and returns it. */
export async function createLink(server: TestServer, fields: Record<string, string> = {}): Promise<CreatedLink> {
  const response = await adminPost(server, '/links', { folder: '1', label: 'Test link', ...fields })
  expect(response.status).toBe(303)
  const location = response.headers.get('location') ?? ''
  expect(location).toMatch(/^\/links\/\d+$/)
  const id = Number(location.split('/').pop())
  const { url } = await createdSecrets(server, response)
  const token = url!.split('/d/')[1]!
  return { id, token, path: `/d/${token}` }
}

/** What the page after creating (or editing) a link shows once: its address and a generated password. */
export async function createdSecrets(server: TestServer, response: Response) {
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('dropfold_link_secrets='))?.split(';')[0]
  const page = await (await server.fetch(response.headers.get('location')!, { headers: { cookie: `${server.cookie}; ${cookie ?? ''}` } })).text()
  return {
    url: /aria-label="Address" value="([^"]+)"|value="([^"]+)" aria-label="Address"/.exec(page)?.slice(1).find(Boolean) ?? null,
    password: /value="([^"]+)" aria-label="Generated password"/.exec(page)?.[1] ?? null,
  }
}

/** Edits a link: the form is sent whole, like the settings form (which always holds every field). */
export async function editLink(server: TestServer, id: number, fields: Record<string, string>) {
  const link = one<{ folder_id: number; label: string; max_file_bytes: number | null; max_total_bytes: number | null; max_files: number | null; allowed_types: string | null; allow_download: number }>(
    server,
    'select * from links where id = ?',
    id,
  )!
  const base: Record<string, string> = {
    folder: String(link.folder_id),
    label: link.label,
    maxFileSize: link.max_file_bytes === null ? '' : String(link.max_file_bytes),
    maxTotalSize: link.max_total_bytes === null ? '' : String(link.max_total_bytes),
    maxFiles: link.max_files === null ? '' : String(link.max_files),
    allowedTypes: link.allowed_types ?? '',
    password: '',
    expiresInDays: '',
  }
  if (link.allow_download) base.allowDownload = 'on'
  return adminPost(server, `/links/${id}`, { ...base, ...fields })
}

/** Creates a folder through the admin API and returns its id. */
export { makeFolder } from '../library/helpers.ts'

/** A request as a visitor: no admin session, only the cookie given. */
export function visit(server: TestServer, path: string, init: RequestInit & { cookie?: string } = {}) {
  const { cookie, ...rest } = init
  const headers = new Headers(rest.headers)
  if (cookie) headers.set('cookie', cookie)
  return fetch(server.url + path, { ...rest, headers, redirect: 'manual' })
}

/** Gives a link's password; returns the response and the unlock cookie ("name=value") if one was set. */
export async function unlock(server: TestServer, link: CreatedLink, password: string, init: { cookie?: string } = {}) {
  const response = await visit(server, `${link.path}/unlock`, { method: 'POST', body: new URLSearchParams({ password }), cookie: init.cookie })
  const setCookie = response.headers.get('set-cookie')
  const cookie = setCookie ? setCookie.split(';')[0]! : null
  await response.arrayBuffer()
  return { response, setCookie, cookie }
}

/** Unlocks and expects success; returns the cookie. */
export async function unlocked(server: TestServer, link: CreatedLink, password: string): Promise<string> {
  const { response, cookie } = await unlock(server, link, password)
  expect(response.status).toBe(303)
  expect(cookie).toStartWith(`dropfold_unlock_${link.id}=`)
  return cookie!
}

/** One Dropzone chunk POSTed to a link's upload endpoint, dz fields first, then the file part. */
export function linkChunk(
  server: TestServer,
  link: CreatedLink,
  fields: Record<string, string | number>,
  bytes: Uint8Array,
  options: { fileName?: string; cookie?: string; query?: string } = {},
) {
  const form = new FormData()
  for (const [name, value] of Object.entries(fields)) form.append(name, String(value))
  form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), options.fileName ?? 'data.bin')
  return visit(server, `${link.path}/upload${options.query ?? ''}`, { method: 'POST', body: form, headers: { accept: 'application/json' }, cookie: options.cookie })
}

/** Sends chunk `index` of `data` for the upload `uuid`. */
export function sendLinkChunk(
  server: TestServer,
  link: CreatedLink,
  uuid: string,
  data: Uint8Array,
  index: number,
  options: { fileName?: string; cookie?: string; chunkSize?: number; extra?: Record<string, string> } = {},
) {
  const size = options.chunkSize ?? CHUNK
  return linkChunk(server, link, { ...options.extra, ...chunkFields(uuid, data.length, size, index) }, chunkOf(data, size, index), options)
}

/** Uploads `data` whole through a link, chunk after chunk; returns the last response's JSON. */
export async function uploadThroughLink(
  server: TestServer,
  link: CreatedLink,
  data: Uint8Array,
  options: { fileName?: string; cookie?: string; uuid?: string; extra?: Record<string, string> } = {},
) {
  const uuid = options.uuid ?? `u-${crypto.randomUUID()}`
  const count = Math.max(1, Math.ceil(data.length / CHUNK))
  let body: any = null
  for (let index = 0; index < count; index++) {
    const response = await sendLinkChunk(server, link, uuid, data, index, options)
    body = await response.json()
    expect({ status: response.status, body }).toMatchObject({ status: 200 })
  }
  return body as { upload: { state: string; id: string }; file: { id: number; name: string; url: string | null } | null }
}

export const TUS = { 'tus-resumable': '1.0.0' }
const b64 = (text: string) => Buffer.from(text).toString('base64')
export const tusMetadata = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',')

/** Staged uploads on disk (one entry per upload that has been given bytes or created). */
export const stagingEntries = (server: TestServer) => {
  const dir = join(server.dataDir, 'staging')
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : []
}

export const activityOf = (server: TestServer, action: string) =>
  rows<{ actor: string; action: string; target: string | null; details: string | null; client_address: string | null }>(
    server,
    'select actor, action, target, details, client_address from activity where action = ? order by id',
    action,
  )

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/**
 * A test server whose clock the test moves (for waits such as the password slow-down).
 * Same shape as startTestServer's, plus `advance(ms)`.
 */
export async function startClockedServer(env: Record<string, string> = {}): Promise<TestServer & { advance(ms: number): void; now(): number }> {
  let offset = 0
  const clock = () => Date.now() + offset
  const server = await startTestServer({ CHUNK_SIZE: '64K', ...env }, { clock })
  return Object.assign(server, {
    advance(ms: number) {
      offset += ms
    },
    now: clock,
  })
}
