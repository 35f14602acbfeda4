import { describe, expect, test } from 'bun:test'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BrowserContextOptions, Page } from 'playwright-core'
import { acceptDialogs, markDocument, ROOT_FOLDER_PATH, signIn, signInWithoutScripts, unexpectedErrors, unexpectedLogs, waitForUploader, watchPage, browserSuite, describeWithBrowser } from '../helpers/browser.ts'
import { randomData, sha256 } from '../helpers/data.ts'
import { chunkFields, chunkOf, sendChunk } from '../helpers/dropzone-client.ts'

/**
 * Managing the library as a person does it in a real browser: folders, the bulk actions of the
 * file list, the trash. The htmx forms must work without reloading the page, the plain forms
 * must work without JavaScript, and refusals must reach the person.
 */

const suite = browserSuite()

async function setUp(options: BrowserContextOptions = {}) {
  const server = await suite.startServer({ CHUNK_SIZE: '64K' })
  const page = await (await suite.context(options)).newPage()
  return { server, page, watch: watchPage(page), tempDir: suite.tempDir() }
}

const shot = (page: Page, name: string) => page.screenshot({ path: `/tmp/dropfold-manage-${name}.png`, fullPage: true, animations: 'disabled' })

/** The "New folder" form of the folder page. */
const newFolderForm = (page: Page) => page.locator('.folder-head form[action$="/folders"]')

/** Creates a folder with the htmx form and waits for its link and the message. */
async function createFolder(page: Page, name: string) {
  const form = newFolderForm(page)
  await form.locator('input[name=name]').fill(name)
  await form.getByRole('button', { name: 'New folder' }).click()
  await page.locator('#flash').filter({ hasText: `Folder “${name}” created.` }).waitFor()
  await subfolderLink(page, name).waitFor()
  // The form is ready for the next name.
  expect(await form.locator('input[name=name]').inputValue()).toBe('')
}

const subfolderLink = (page: Page, name: string) => page.locator('#file-area ul.folders a').filter({ hasText: name })

/** Follows a subfolder link (a plain link: a new page) and waits for the folder page to be ready. */
async function openSubfolder(page: Page, name: string) {
  await Promise.all([page.waitForURL((u) => /^\/folders\/\d+$/.test(u.pathname) && u.pathname !== ROOT_FOLDER_PATH), subfolderLink(page, name).click()])
  await expect(page.locator('.folder-head h1').textContent()).resolves.toBe(name)
  await waitForUploader(page)
}

/** Goes Home the way a person does: the header's "Files" link. */
async function goHome(page: Page) {
  await Promise.all([page.waitForURL((u) => u.pathname === ROOT_FOLDER_PATH), page.locator('header .main-nav a', { hasText: 'Files' }).click()])
  await waitForUploader(page)
}

const fileNames = (page: Page) => page.locator('#file-area table.files td.name').allTextContents()
const fileRow = (page: Page, name: string) => page.locator('#file-area table.files tbody tr').filter({ has: page.locator('td.name', { hasText: name }) })

describeWithBrowser('managing files in a real browser', () => {
  test('a person creates a folder, uploads into it, moves a file, deletes it and restores it', async () => {
    const { server, page, watch, tempDir } = await setUp()
    const dialogs = acceptDialogs(page)
    const holiday = 'Holiday 2024 <b>'
    const text = { name: 'itinerary.txt', data: new TextEncoder().encode('Day 1: fly to Lisbon\nDay 2: tram 28, Alfama, pastéis\n'.repeat(40)) }
    // Several chunks, not a multiple of the chunk size.
    const archive = { name: 'beach photos.zip', data: randomData(200 * 1024 + 77) }
    for (const f of [text, archive]) writeFileSync(join(tempDir, f.name), f.data)

    await signIn(page, server.url)
    await createFolder(page, holiday)
    // The name is text, not markup.
    expect(await page.locator('#file-area ul.folders b').count()).toBe(0)
    await openSubfolder(page, holiday)
    let sameDocument = await markDocument(page)

    // Two files through Dropzone; when the queue completes the list refreshes itself.
    await expect(page.locator('#file-area .empty').textContent()).resolves.toContain('No files yet')
    await page.setInputFiles('input.dz-hidden-input', [join(tempDir, text.name), join(tempDir, archive.name)])
    await page.locator('.dz-preview.dz-success').nth(1).waitFor()
    await fileRow(page, text.name).waitFor()
    await fileRow(page, archive.name).waitFor()
    expect((await fileNames(page)).sort()).toEqual([archive.name, text.name].sort())
    await expect(page.locator('#file-area .count').textContent()).resolves.toBe('2 files')
    expect(await sameDocument()).toBe(true)
    await shot(page, 'folder')

    // A second folder, made from Home; then back into the holiday folder.
    await goHome(page)
    await createFolder(page, 'Archive')
    expect(await page.locator('#file-area ul.folders a').allTextContents()).toEqual(['📁 Archive', `📁 ${holiday}`])
    await openSubfolder(page, holiday)
    sameDocument = await markDocument(page)

    // Move one file to Archive with the checkbox and "With selected".
    await fileRow(page, archive.name).locator('input[name=ids]').check()
    await page.locator('#bulk select[name=target]').selectOption({ label: '/Archive' })
    await page.locator('#bulk').getByRole('button', { name: 'Move', exact: true }).click()
    await page.locator('#flash').filter({ hasText: 'Moved 1 file to /Archive.' }).waitFor()
    expect(await page.locator('#flash').getAttribute('role')).toBe('status')
    await fileRow(page, archive.name).waitFor({ state: 'detached' })
    expect(await fileNames(page)).toEqual([text.name])
    expect(await sameDocument()).toBe(true)
    expect(new URL(page.url()).pathname).toMatch(/^\/folders\/\d+$/)

    // The text file's own page, for the screenshot (and its preview is the text, escaped).
    await Promise.all([page.waitForURL((u) => /^\/files\/\d+$/.test(u.pathname)), fileRow(page, text.name).locator('td.name a').click()])
    await expect(page.locator('h1.file-name').textContent()).resolves.toBe(text.name)
    await expect(page.locator('.preview pre').textContent()).resolves.toContain('Day 2: tram 28, Alfama, pastéis')
    await expect(page.locator('dl.meta code').textContent()).resolves.toBe(sha256(text.data))
    await shot(page, 'file')

    // Archive has the moved file; delete it there.
    await goHome(page)
    await openSubfolder(page, 'Archive')
    sameDocument = await markDocument(page)
    expect(await fileNames(page)).toEqual([archive.name])
    await fileRow(page, archive.name).locator('input[name=ids]').check()
    await page.locator('#bulk').getByRole('button', { name: 'Delete', exact: true }).click()
    await page.locator('#flash').filter({ hasText: '1 file is in the trash.' }).waitFor()
    await fileRow(page, archive.name).waitFor({ state: 'detached' })
    await expect(page.locator('#file-area .empty').textContent()).resolves.toContain('No files yet')
    expect(await sameDocument()).toBe(true)
    const archiveUrl = page.url()

    // The trash has it; Restore puts it back where it was.
    await Promise.all([page.waitForURL((u) => u.pathname === '/trash'), page.locator('header .main-nav a', { hasText: 'Trash' }).click()])
    const trashRow = page.locator('#trash table.files tbody tr').filter({ hasText: archive.name })
    await expect(trashRow.locator('td').nth(1).textContent()).resolves.toBe('/Archive')
    await shot(page, 'trash')
    await trashRow.getByRole('button', { name: 'Restore' }).click()
    await page.locator('#flash').filter({ hasText: `Restored “${archive.name}” to /Archive.` }).waitFor()
    await expect(page.locator('#trash .empty').textContent()).resolves.toContain('The trash is empty')

    await goHome(page)
    await openSubfolder(page, 'Archive')
    expect(page.url()).toBe(archiveUrl)
    expect(await fileNames(page)).toEqual([archive.name])

    // Its Download link gives back exactly the bytes that were uploaded.
    const [download] = await Promise.all([page.waitForEvent('download'), fileRow(page, archive.name).getByRole('link', { name: 'Download' }).click()])
    expect(download.suggestedFilename()).toBe(archive.name)
    const saved = await download.path()
    expect(sha256(new Uint8Array(readFileSync(saved)))).toBe(sha256(archive.data))

    // The holiday folder goes to the trash (after a confirm()), and the trash is emptied (another).
    await goHome(page)
    await openSubfolder(page, holiday)
    await Promise.all([page.waitForURL((u) => u.pathname === ROOT_FOLDER_PATH), page.getByRole('button', { name: 'Delete folder' }).click()])
    await page.locator('#flash').filter({ hasText: `“${holiday}” is in the trash; you can restore it from there.` }).waitFor()
    expect(await page.locator('#file-area ul.folders a').allTextContents()).toEqual(['📁 Archive'])
    await Promise.all([page.waitForURL((u) => u.pathname === '/trash'), page.locator('header .main-nav a', { hasText: 'Trash' }).click()])
    await expect(page.locator('#trash table.files td.name').allTextContents()).resolves.toEqual([`📁 ${holiday}`])
    await page.getByRole('button', { name: 'Empty trash' }).click()
    // The folder and the text file still in it.
    await page.locator('#flash').filter({ hasText: 'Deleted 1 file and 1 folder for good.' }).waitFor()
    await expect(page.locator('#trash .empty').textContent()).resolves.toContain('The trash is empty')
    expect(dialogs).toEqual([
      `Move “${holiday}” and everything in it to the trash?`,
      'Delete everything in the trash for good? This frees its storage and cannot be undone.',
    ])

    // An unfinished upload, so the uploads page has a row to show.
    const partial = randomData(300 * 1024)
    const chunk = 64 * 1024
    const sent = await sendChunk(server, chunkFields('screenshot-partial', partial.length, chunk, 0), chunkOf(partial, chunk, 0), { fileName: 'half-sent video.mp4' })
    expect(sent.status).toBe(200)
    await Promise.all([page.waitForURL((u) => u.pathname === '/uploads'), page.locator('header .main-nav a', { hasText: 'Uploads' }).click()])
    await page.locator('#uploads-table td.name', { hasText: 'half-sent video.mp4' }).waitFor()
    await shot(page, 'uploads')

    // Every step was recorded.
    await Promise.all([page.waitForURL((u) => u.pathname === '/activity'), page.locator('header .main-nav a', { hasText: 'Activity' }).click()])
    const actions = await page.locator('#activity-list td code').allTextContents()
    expect(actions).toEqual(expect.arrayContaining(['folder.create', 'file.move', 'file.delete', 'file.restore']))
    await shot(page, 'activity')

    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors)).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  }, 60_000)

  test('without JavaScript, the plain form creates a folder and the next page shows the message', async () => {
    const { server, page, watch } = await setUp({ javaScriptEnabled: false })
    await signInWithoutScripts(page, server.url)
    // No scripts ran: no Dropzone, and the <noscript> upload form is there instead.
    expect(await page.locator('#dropzone.dz-clickable').count()).toBe(0)
    expect(await page.locator('#dropzone input[type=file][name=file]').count()).toBe(1)

    const form = newFolderForm(page)
    await form.locator('input[name=name]').fill('Scans')
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `${ROOT_FOLDER_PATH}/folders`),
      page.waitForURL((u) => u.pathname === ROOT_FOLDER_PATH),
      form.getByRole('button', { name: 'New folder' }).click(),
    ])
    expect(response.status()).toBe(303)
    await page.waitForLoadState('domcontentloaded')
    await expect(page.locator('#flash').textContent()).resolves.toBe('Folder “Scans” created.')
    expect(await page.locator('#flash').getAttribute('class')).toContain('notice')
    expect(await page.locator('#file-area ul.folders a').allTextContents()).toEqual(['📁 Scans'])

    // The message is shown once: the next page no longer has it.
    await page.reload()
    await expect(page.locator('#flash').textContent()).resolves.toBe('')
    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors)).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  })

  test('creating a folder whose name is taken shows the refusal and changes nothing', async () => {
    const { server, page, watch } = await setUp()
    await signIn(page, server.url)
    await createFolder(page, 'Photos')
    const sameDocument = await markDocument(page)
    const areaBefore = await page.locator('#file-area').innerHTML()

    const form = newFolderForm(page)
    await form.locator('input[name=name]').fill('Photos')
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `${ROOT_FOLDER_PATH}/folders`),
      form.getByRole('button', { name: 'New folder' }).click(),
    ])
    expect(response.status()).toBe(409)
    const alert = page.getByRole('alert')
    await alert.filter({ hasText: 'A folder named "Photos" already exists here' }).waitFor()
    expect(await alert.getAttribute('id')).toBe('flash')
    expect(await alert.getAttribute('class')).toContain('error')
    expect(await alert.isVisible()).toBe(true)

    // Nothing else changed: same document, same list, what was typed is still there to correct.
    expect(await sameDocument()).toBe(true)
    expect(await page.locator('#file-area').innerHTML()).toBe(areaBefore)
    expect(await page.locator('#file-area ul.folders a').allTextContents()).toEqual(['📁 Photos'])
    expect(await form.locator('input[name=name]').inputValue()).toBe('Photos')
    const list = await (await server.fetch(`${ROOT_FOLDER_PATH}/view`)).text()
    expect(list.match(/📁 Photos/g)).toHaveLength(1)
    await shot(page, 'folder-error')

    // The 409 is Chromium's console error for the failed request, and nothing else.
    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors).filter((e) => !/409 \(Conflict\)/.test(e))).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  })
})

/** A one-page PDF that says "Hello PDF" (offsets need not be exact: viewers rebuild the table). */
const HELLO_PDF = [
  '%PDF-1.4',
  '1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj',
  '2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj',
  '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj',
  '4 0 obj<</Length 44>>stream',
  'BT /F1 24 Tf 20 100 Td (Hello PDF) Tj ET',
  'endstream endobj',
  '5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj',
  'trailer<</Root 1 0 R>>',
  '%%EOF',
  '',
].join('\n')

/** Chromium's built-in PDF viewer, the page it opens inside a frame that shows a PDF. */
const PDF_VIEWER = 'chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/index.html'

test('a PDF is shown by the browser’s own viewer in the file page’s preview, under the preview’s CSP', async () => {
  const { server, page, watch } = await setUp()
  const body = new FormData()
  body.append('file', new Blob([HELLO_PDF], { type: 'application/pdf' }), 'hello world.pdf')
  const response = await server.fetch('/upload', { method: 'POST', body, headers: { accept: 'application/json' } })
  expect(response.status).toBe(200)
  const file = ((await response.json()) as { file: { id: number } }).file
  await signIn(page, server.url)
  const downloads: string[] = []
  page.on('download', (download) => downloads.push(download.suggestedFilename()))

  await page.goto(`${server.url}/files/${file.id}`)
  const preview = page.locator(`.preview iframe[src="/files/${file.id}/preview/hello%20world.pdf"]`)
  await preview.waitFor()
  // The viewer opens in a frame of its own when Chromium accepts the response as a PDF to show
  // (not a download, not blocked by its headers), and titles itself after the URL's last segment
  // (the file's name) once it has read the document: a PDF it cannot read leaves the title empty.
  const started = Date.now()
  while (!page.frames().some((frame) => frame.url() === PDF_VIEWER) && Date.now() - started < 10_000) await page.waitForTimeout(100)
  const viewer = page.frames().find((frame) => frame.url() === PDF_VIEWER)
  expect(viewer?.url()).toBe(PDF_VIEWER)
  await viewer!.waitForFunction(() => document.title !== '')
  expect(await viewer!.evaluate(() => document.title)).toBe('hello world.pdf')
  expect(downloads).toEqual([])
  await shot(page, 'pdf-preview')
  expect(unexpectedErrors(watch.errors)).toEqual([])
})
