import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { cleanFileName, validLabel, validName } from '../../src/engine/file-names.ts'
import { refusalOf } from '../../src/http/errors.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { dropzoneUpload, expectHtmxError, expectPageError, makeFolder, post, row, snapshot, uploadFile } from './helpers.ts'


/**
 * Hostile names through every path that sets one. Uploads lose characters that hide or reorder
 * text, and are refused only for a malformed name (control characters, empty, too long); names
 * and labels the admin types are refused with a message naming the problem.
 */

/** Every character the name rule keeps out of names, as a pattern over a whole page. */
const HIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b-\u200d\u2060-\u2064\ufeff\u00ad]/u

/** [what, name sent, name stored by an upload, what a typed name's refusal says] */
const HOSTILE: [string, string, string, string][] = [
  ['a right-to-left override', 'invoice\u202Egpj.exe', 'invoicegpj.exe', 'contains a character that changes the direction of text (U+202E)'],
  ['a left-to-right override', 'a\u202Db.txt', 'ab.txt', 'contains a character that changes the direction of text (U+202D)'],
  ['an embedding and its pop', 'a\u202Ab\u202C.txt', 'ab.txt', 'contains a character that changes the direction of text (U+202A)'],
  ['isolates', 'a\u2067b\u2069.txt', 'ab.txt', 'contains a character that changes the direction of text (U+2067)'],
  ['a right-to-left mark', 'a\u200Fb.txt', 'ab.txt', 'contains a character that changes the direction of text (U+200F)'],
  ['a left-to-right mark', 'a\u200Eb.txt', 'ab.txt', 'contains a character that changes the direction of text (U+200E)'],
  ['an Arabic letter mark', 'a\u061Cb.txt', 'ab.txt', 'contains a character that changes the direction of text (U+061C)'],
  ['a zero-width space', 'pay\u200Bpal.txt', 'paypal.txt', 'contains an invisible character (U+200B)'],
  ['a zero-width joiner', 'a\u200Db.txt', 'ab.txt', 'contains an invisible character (U+200D)'],
  ['a word joiner', 'a\u2060b.txt', 'ab.txt', 'contains an invisible character (U+2060)'],
  ['an invisible plus', 'a\u2064b.txt', 'ab.txt', 'contains an invisible character (U+2064)'],
  ['a byte-order mark inside', 'a\uFEFFb.txt', 'ab.txt', 'contains an invisible character (U+FEFF)'],
  ['a soft hyphen', 'a\u00ADb.txt', 'ab.txt', 'contains an invisible character (U+00AD)'],
  ['NUL', 'a\u0000b.txt', 'ab.txt', 'contains control characters'],
  ['DEL', 'a\u007Fb.txt', 'ab.txt', 'contains control characters'],
  ['a C1 control', 'a\u009Bb.txt', 'ab.txt', 'contains control characters'],
  ['a bell', 'a\u0007b.txt', 'ab.txt', 'contains control characters'],
  ['a newline', 'a\nb.txt', 'a b.txt', 'contains control characters'],
  ['a tab', 'a\tb.txt', 'a b.txt', 'contains control characters'],
  ['a line separator', 'a\u2028b.txt', 'a b.txt', 'contains control characters'],
]

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server.stop()
})

let folders = 0
/** A fresh folder for one test, so tests share the server but nothing else. */
const freshFolder = () => makeFolder(server, 1, `names ${++folders}`)

const fileName = (id: number) => row<{ name: string }>(server, 'select name from files where id = ?', id)!.name

async function tusUpload(name: string, content: string, folder: number): Promise<number> {
  const tus = { 'tus-resumable': '1.0.0' }
  const metadata = `filename ${Buffer.from(name).toString('base64')},folder ${Buffer.from(String(folder)).toString('base64')}`
  const created = await server.fetch('/tus/', { method: 'POST', headers: { ...tus, 'upload-length': String(content.length), 'upload-metadata': metadata } })
  expect(created.status).toBe(201)
  const location = new URL(created.headers.get('location')!, server.url).pathname
  const patched = await server.fetch(location, {
    method: 'PATCH',
    headers: { ...tus, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
    body: content,
  })
  expect(patched.status).toBe(204)
  const upload = row<{ file_id: number }>(server, 'select file_id from uploads where id = ?', location.split('/').pop()!)!
  return upload.file_id
}

/** The folder page and the file's page: neither shows a hidden character. */
async function expectShownClean(folder: number, fileId: number, shown: string) {
  for (const path of [`/folders/${folder}`, `/files/${fileId}`]) {
    const page = await (await server.fetch(path)).text()
    expect(page).toContain(shown)
    expect(page).not.toMatch(HIDDEN)
  }
}

/** A multipart upload and a tus creation with this name: both refused (400), nothing stored. */
async function expectUploadRefused(name: string, folder: number) {
  const before = snapshot(server)
  const form = new FormData()
  form.append('folder', String(folder))
  form.append('file', new Blob(['x']), name)
  const plain = await server.fetch('/upload', { method: 'POST', body: form })
  expect(plain.status).toBe(400)
  const metadata = `filename ${Buffer.from(name).toString('base64')},folder ${Buffer.from(String(folder)).toString('base64')}`
  const tus = await server.fetch('/tus/', { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1', 'upload-metadata': metadata } })
  expect(tus.status).toBe(400)
  expect(snapshot(server)).toEqual(before)
}

const malformed = (message: string) => message === 'contains control characters'

describe('uploads keep the file and clean its name', () => {
  for (const [what, sent, , message] of HOSTILE.filter(([, , , message]) => malformed(message))) {
    test(`${what}: a malformed name, refused by multipart and tus, nothing stored`, async () => {
      await expectUploadRefused(sent, await freshFolder())
    })
  }

  for (const [what, sent, stored] of HOSTILE.filter(([, , , message]) => !malformed(message))) {
    test(`${what}: multipart, Dropzone and tus all store ${JSON.stringify(stored)}`, async () => {
      const folder = await freshFolder()
      const plain = await uploadFile(server, sent, 'plain', folder)
      const dropzone = await dropzoneUpload(server, sent, 'dropzone', folder)
      const tus = await tusUpload(sent, 'tus', folder)
      expect(plain.name).toBe(stored)
      expect(fileName(plain.id)).toBe(stored)
      // The same name a second and third time: numbered, as any clash.
      const [stem, extension] = [stored.slice(0, stored.lastIndexOf('.')), stored.slice(stored.lastIndexOf('.'))]
      expect(fileName(dropzone.id)).toBe(`${stem} (1)${extension}`)
      expect(fileName(tus)).toBe(`${stem} (2)${extension}`)
      await expectShownClean(folder, plain.id, stored)
    })
  }

  test('the type comes from the extension the name really ends with', async () => {
    const file = await uploadFile(server, 'invoice\u202Egpj.exe', 'MZ', await freshFolder())
    expect(file.mimeType).not.toBe('image/jpeg')
    expect(file.name.endsWith('.exe')).toBe(true)
  })

  test('a name is stored in NFC', async () => {
    const file = await uploadFile(server, 'Cafe\u0301.txt', 'x', await freshFolder())
    expect(fileName(file.id)).toBe('Caf\u00e9.txt')
  })

  test('a name of nothing but hidden characters, "..", or over 255 bytes is refused', async () => {
    const folder = await freshFolder()
    await expectUploadRefused('\u202E\u200B\u2066', folder)
    await expectUploadRefused('..', folder)
    await expectUploadRefused('x'.repeat(300) + '.txt', folder)
    expect((await uploadFile(server, 'x'.repeat(251) + '.txt', 'x', folder)).name).toBe('x'.repeat(251) + '.txt')
  })
})

describe('names the admin types are refused (400) and nothing changes', () => {
  for (const [what, typed, , message] of HOSTILE) {
    test(`${what}: new folder, folder rename, file rename`, async () => {
      const folder = await freshFolder()
      const file = await uploadFile(server, 'ok.txt', 'ok', folder)
      const before = snapshot(server)
      await expectHtmxError(await post(server, `/folders/${folder}/folders`, { name: typed }, { htmx: true }), 400, `The folder name ${message}`)
      await expectPageError(await post(server, `/folders/${folder}/folders`, { name: typed }), 400, `The folder name ${message}`)
      await expectHtmxError(await post(server, `/folders/${folder}/rename`, { name: typed }, { htmx: true }), 400, `The folder name ${message}`)
      await expectHtmxError(await post(server, `/files/${file.id}/rename`, { name: typed }, { htmx: true }), 400, `The file name ${message}`)
      expect(snapshot(server)).toEqual(before)
    })
  }

  test('a backslash is refused like a slash', async () => {
    const folder = await freshFolder()
    await expectHtmxError(await post(server, `/folders/${folder}/folders`, { name: 'a\\b' }, { htmx: true }), 400, 'The folder name cannot contain &quot;\\&quot;')
  })

  test('a name typed in decomposed form is stored in NFC', async () => {
    const folder = await freshFolder()
    const id = await makeFolder(server, folder, 'Cafe\u0301')
    expect(row<{ name: string }>(server, 'select name from folders where id = ?', id)!.name).toBe('Caf\u00e9')
  })
})

describe('drop-link labels', () => {
  const create = (label: string) => server.fetch('/links', { method: 'POST', body: new URLSearchParams({ folder: '1', label }) })

  for (const [what, typed, , message] of HOSTILE) {
    test(`${what} in a label is refused on create and edit`, async () => {
      const made = await create(`label ${what}`)
      expect(made.status).toBe(303)
      const id = Number(made.headers.get('location')!.split('/').pop())
      const before = snapshot(server)
      const links = () => server.sql.all('select * from links order by id')
      const linksBefore = links()
      await expectPageError(await create(typed), 400, `The label ${message}`)
      await expectPageError(await server.fetch(`/links/${id}`, { method: 'POST', body: new URLSearchParams({ folder: '1', label: typed }) }), 400, `The label ${message}`)
      expect(snapshot(server)).toEqual(before)
      expect(links()).toEqual(linksBefore)
      const page = await (await server.fetch('/links')).text()
      expect(page).toContain(`label ${what}`)
      expect(page).not.toMatch(HIDDEN)
    })
  }
})

describe('the rule itself', () => {
  const refusal = (f: () => unknown) => {
    try {
      f()
    } catch (error) {
      const known = refusalOf(error)
      return known ? `${known.status} ${known.message}` : String(error)
    }
    return 'accepted'
  }

  test('a lone surrogate is removed from an upload name and refused in a typed one', () => {
    expect(cleanFileName('a\uD800b.txt')).toBe('ab.txt')
    expect(refusal(() => validName('a\uDC00b', 'folder name'))).toBe('400 The folder name contains an invisible character (U+DC00)')
  })

  test('a client path keeps only its last part', () => {
    expect(cleanFileName('C:\\Users\\me\\photo.jpg')).toBe('photo.jpg')
    expect(cleanFileName('../../etc/passwd')).toBe('passwd')
  })

  test('emoji, accents and right-to-left scripts are kept as they are', () => {
    for (const name of ['😀 party.png', 'Grüße.txt', 'שלום.txt', 'مرحبا.pdf', '日本語.doc']) {
      expect(cleanFileName(name)).toBe(name)
      expect(validName(name)).toBe(name)
    }
  })

  test('a label may hold a slash but nothing hidden, and at most 200 characters', () => {
    expect(validLabel('  Photos 2024/25 ')).toBe('Photos 2024/25')
    expect(refusal(() => validLabel('x'.repeat(201)))).toBe('400 The label must be 1 to 200 characters')
    expect(refusal(() => validLabel('a\u202Eb'))).toBe('400 The label contains a character that changes the direction of text (U+202E)')
  })
})
