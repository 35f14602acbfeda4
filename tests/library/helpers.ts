import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'bun:test'
import { chunkFields, sendChunk } from '../helpers/dropzone-client.ts'
import type { Param } from '../helpers/database.ts'
import { blobPath, type TestServer } from '../helpers/server.ts'

/** Helpers shared by the library (folders, files, trash, uploads page, activity) tests. */

export type Fields = Record<string, string | number | (string | number)[]>

export const HX = { 'hx-request': 'true' } as const
export const CROSS_SITE = { origin: 'https://evil.example' } as const

export const encode = (text: string) => new TextEncoder().encode(text)

/** A form body; array values become repeated fields (ids=1&ids=2). */
export function form(fields: Fields): URLSearchParams {
  const body = new URLSearchParams()
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) body.append(name, String(v))
  }
  return body
}

/** POSTs a form as the signed-in admin; `htmx` adds HX-Request: true. */
export function post(server: TestServer, path: string, fields: Fields = {}, options: { htmx?: boolean; headers?: Record<string, string> } = {}) {
  return server.fetch(path, { method: 'POST', body: form(fields), headers: { ...(options.htmx ? HX : {}), ...options.headers } })
}

/** POSTs without any session cookie. */
export function anonymousPost(server: TestServer, path: string, fields: Fields = {}) {
  return fetch(server.url + path, { method: 'POST', body: form(fields), redirect: 'manual' })
}

/** SQL on the server's database, either backend (tests/helpers/database.ts). */
export function rows<T = Record<string, unknown>>(server: TestServer, query: string, ...params: Param[]): T[] {
  return server.sql.all<T>(query, ...params)
}

export function row<T = Record<string, unknown>>(server: TestServer, query: string, ...params: Param[]): T | null {
  return server.sql.get<T>(query, ...params)
}

/** Everything a management action could change; compared before and after a refused action. */
export function snapshot(server: TestServer) {
  return {
    folders: rows(server, 'select * from folders order by id'),
    files: rows(server, 'select * from files order by id'),
    blobs: rows(server, 'select * from blobs order by sha256'),
    uploads: rows(server, 'select * from uploads order by id'),
    activity: rows(server, 'select * from activity order by id'),
  }
}

/** Creates a folder through the API and returns its id. */
export async function makeFolder(server: TestServer, parentId: number, name: string): Promise<number> {
  const response = await post(server, `/folders/${parentId}/folders`, { name })
  expect(response.status).toBe(303)
  // Through the store's port, so this works on either database.
  const found = (await server.server.store.library.liveSubfolders(parentId)).find((folder) => folder.name === name.normalize('NFC').trim())
  expect(found).toBeDefined()
  return found!.id
}

export interface UploadedFile {
  id: number
  name: string
  folderId: number
  sizeBytes: number
  sha256: string
  mimeType: string
  url: string
}

/** Uploads a whole file with a plain multipart form (protocol "plain"). */
export async function uploadFile(server: TestServer, name: string, bytes: Uint8Array | string, folder?: number): Promise<UploadedFile> {
  const data = typeof bytes === 'string' ? encode(bytes) : bytes
  const body = new FormData()
  body.append('file', new Blob([data as Uint8Array<ArrayBuffer>]), name)
  const response = await server.fetch(`/upload${folder ? `?folder=${folder}` : ''}`, { method: 'POST', body, headers: { accept: 'application/json' } })
  expect(response.status).toBe(200)
  return ((await response.json()) as { file: UploadedFile }).file
}

let dzCounter = 0

/** Uploads a whole file as one Dropzone chunk (protocol "dropzone"). */
export async function dropzoneUpload(server: TestServer, name: string, bytes: Uint8Array | string, folder?: number): Promise<UploadedFile> {
  const data = typeof bytes === 'string' ? encode(bytes) : bytes
  const uuid = `lib-${process.pid}-${++dzCounter}`
  const chunkSize = Math.max(64 * 1024, data.length)
  const response = await sendChunk(server, chunkFields(uuid, data.length, chunkSize, 0), data, { fileName: name, folder })
  expect(response.status).toBe(200)
  const json = (await response.json()) as { upload: { state: string }; file: UploadedFile }
  expect(json.upload.state).toBe('complete')
  return json.file
}

/** Starts a two-chunk Dropzone upload and sends only its first chunk; returns the server's upload id. */
export async function halfUpload(server: TestServer, name: string, chunkSize = 64 * 1024) {
  const uuid = `half-${process.pid}-${++dzCounter}`
  const total = chunkSize * 2
  const response = await sendChunk(server, chunkFields(uuid, total, chunkSize, 0), new Uint8Array(chunkSize).fill(7), { fileName: name })
  expect(response.status).toBe(200)
  const upload = (await server.server.store.uploads.findByClientKey('admin', uuid))!
  return { id: upload.id, uuid, total, chunkSize }
}

export const blobOnDisk = (server: TestServer, sha256: string) => existsSync(blobPath(server, sha256))
export const stagingPath = (server: TestServer, uploadId: string) => join(server.dataDir, 'staging', uploadId)

/** The `#flash` element an htmx answer swaps in out of band. */
export function oobFlash(body: string): string | null {
  const m = /<div id="flash"[^>]*hx-swap-oob="true"[^>]*>([\s\S]*?)<\/div>/.exec(body)
  return m ? m[1]! : null
}

/** Expects an htmx refusal: the status, and a body that is only the out-of-band flash with the message. */
export async function expectHtmxError(response: Response, status: number, message: string) {
  const body = await response.text()
  expect(response.status).toBe(status)
  expect(body.trim()).toStartWith('<div id="flash"')
  expect(body).toContain('class="flash error"')
  expect(body).toContain('role="alert"')
  expect(oobFlash(body)).toContain(message)
  expect(body).not.toContain('<html')
  expect(body).not.toContain('id="file-area"')
  return body
}

/** Expects a plain-form refusal: the status and an HTML page that shows the message. */
export async function expectPageError(response: Response, status: number, message: string, back?: string) {
  const body = await response.text()
  expect(response.status).toBe(status)
  expect(response.headers.get('content-type')).toContain('text/html')
  expect(body).toContain('<!doctype html>')
  expect(body).toContain('That did not work')
  expect(body).toContain(`<p class="flash error" role="alert">${message}`)
  if (back) expect(body).toContain(`<a href="${back}">← Back</a>`)
  expect(response.headers.get('set-cookie') ?? '').not.toContain('dropfold_flash=%')
  return body
}

/** The flash message a plain-form success carried in its cookie. */
export function flashFromCookie(response: Response): { kind: string; text: string } | null {
  const setCookie = response.headers.get('set-cookie') ?? ''
  const m = /dropfold_flash=([^;]*)/.exec(setCookie)
  if (!m || !m[1]) return null
  return JSON.parse(decodeURIComponent(m[1]))
}

/** Follows a plain-form success: the next page, carrying the flash cookie. */
export async function follow(server: TestServer, response: Response): Promise<{ status: number; body: string; setCookie: string | null }> {
  const location = response.headers.get('location')!
  const flash = /dropfold_flash=[^;]*/.exec(response.headers.get('set-cookie') ?? '')?.[0]
  const next = await server.fetch(location, { headers: { cookie: [server.cookie, flash].filter(Boolean).join('; ') } })
  return { status: next.status, body: await next.text(), setCookie: next.headers.get('set-cookie') }
}

/** Number of file rows in a listing (one checkbox per file). */
export const fileRowCount = (body: string) => (body.match(/name="ids"/g) ?? []).length

/** File names in a listing, in the order shown. */
export function listedNames(body: string): string[] {
  return [...body.matchAll(/<td class="name" title="SHA-256 [0-9a-f]{64}"><a href="\/files\/\d+">([^<]*)<\/a><\/td>/g)].map((m) => m[1]!)
}

/** Activity rows, newest first. */
export function activityRows(server: TestServer, action?: string) {
  const all = rows<{ id: number; actor: string; action: string; target: string | null; details: string | null; client_address: string | null }>(
    server,
    'select id, actor, action, target, details, client_address from activity order by id desc',
  )
  return action ? all.filter((r) => r.action === action) : all
}
