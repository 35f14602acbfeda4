import { describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT_FOLDER_PATH, signIn, trackUploads, unexpectedErrors, unexpectedLogs, watchPage, browserSuite, describeWithBrowser } from '../helpers/browser.ts'
import { randomData, sha256 } from '../helpers/data.ts'

/**
 * The upload page as a person uses it: real Chromium, the stock Dropzone build and htmx served by
 * the server, no test hooks in the page.
 */

const suite = browserSuite()

async function setUp(env: Record<string, string>) {
  const server = await suite.startServer(env)
  const page = await (await suite.context()).newPage()
  return { server, page, watch: watchPage(page), tempDir: suite.tempDir() }
}

describeWithBrowser('uploading through the folder page in a real browser', () => {
  test('a person signs in and uploads a multi-megabyte file with stock Dropzone; it downloads byte-identical', async () => {
    const chunkSize = 256 * 1024
    const size = 6 * 1024 * 1024 + 12_345 // not a multiple of the chunk size: the last chunk is short
    const expectedChunks = Math.ceil(size / chunkSize)
    const { server, page, watch, tempDir } = await setUp({ CHUNK_SIZE: '256K' })
    const data = randomData(size)
    const name = 'holiday-video 2024.bin'
    const path = join(tempDir, name)
    writeFileSync(path, data)

    await signIn(page, server.url)
    await expect(page.locator('#dropzone').getAttribute('data-chunk-size')).resolves.toBe(String(chunkSize))
    await expect(page.locator('#file-area .empty').textContent()).resolves.toContain('No files yet')
    const uploads = trackUploads(page)

    await page.setInputFiles('input.dz-hidden-input', path)
    const link = page.locator('.dz-preview.dz-success .dz-status a')
    await link.waitFor()
    expect(await link.textContent()).toBe(`Stored as “${name}” — download`)
    // The queue completed, so htmx reloads the file list and it shows the new file.
    const cell = page.locator('#file-area table.files td.name')
    await cell.filter({ hasText: name }).waitFor()
    expect(await cell.allTextContents()).toEqual([name])

    // Stock Dropzone split the file and sent several chunks at once.
    expect(uploads.failed).toEqual([])
    expect(uploads.posts).toBeGreaterThanOrEqual(expectedChunks)
    expect(uploads.maxInFlight).toBeGreaterThanOrEqual(2)
    const uuid = await page.evaluate(() => (globalThis as any).Dropzone.instances[0].files[0].upload.uuid as string)
    const status = await (await server.fetch(`/upload/${uuid}`, { headers: { accept: 'application/json' } })).json()
    expect(status.upload).toMatchObject({ state: 'complete', totalChunks: expectedChunks, receivedChunks: expectedChunks, totalBytes: size })

    // The link the page shows downloads exactly the bytes that were chosen.
    const href = await link.getAttribute('href')
    expect(href).toMatch(/^\/files\/\d+\/download$/)
    const response = await server.fetch(href!)
    expect(response.status).toBe(200)
    const downloaded = new Uint8Array(await response.arrayBuffer())
    expect(downloaded.length).toBe(size)
    expect(sha256(downloaded)).toBe(sha256(data))
    // So does the file list's own link.
    expect(await page.locator('#file-area table.files a[download]').getAttribute('href')).toBe(href)

    await page.screenshot({ path: '/tmp/dropfold-folder.png', fullPage: true, animations: 'disabled' })
    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(unexpectedErrors(watch.errors)).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  })

  test('a file name with HTML in it is shown as text, never markup', async () => {
    const { server, page, watch, tempDir } = await setUp({ CHUNK_SIZE: '64K' })
    const name = '<img src=x onerror="window.__xss=1">.txt'
    const path = join(tempDir, name)
    const data = new TextEncoder().encode('just some text\n'.repeat(100))
    writeFileSync(path, data)

    await signIn(page, server.url)
    await page.setInputFiles('input.dz-hidden-input', path)
    await page.locator('.dz-preview.dz-success .dz-status a').waitFor()
    const cell = page.locator('#file-area table.files td.name')
    await cell.waitFor()

    // Nothing in the page was made from the name: no script ran, no element appeared.
    const noMarkup = async () => {
      expect(await page.evaluate(() => (globalThis as any).__xss)).toBeUndefined()
      expect(await page.locator('img[src=x], img[onerror], [onerror]').count()).toBe(0)
    }
    await noMarkup()
    const shown = {
      preview: await page.locator('.dz-preview [data-dz-name]').textContent(),
      link: await page.locator('.dz-status a').textContent(),
      listAfterUpload: await cell.textContent(),
    }
    // After a full reload (the server-rendered list rather than the htmx fragment) it is still text.
    await page.reload()
    await page.locator('#file-area table.files td.name').waitFor()
    await noMarkup()
    const listAfterReload = await page.locator('#file-area table.files td.name').textContent()

    // And the text is the name the person chose, character for character.
    expect(shown.preview).toBe(name)
    expect(shown.link).toBe(`Stored as “${name}” — download`)
    expect(shown.listAfterUpload).toBe(name)
    expect(listAfterReload).toBe(name)
    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
  })

  test("the server's refusal is shown to the person", async () => {
    // Far more free space than any disk has: the server refuses every upload with 507.
    const { server, page, watch, tempDir } = await setUp({ CHUNK_SIZE: '64K', MIN_FREE_SPACE: '1000T' })
    const path = join(tempDir, 'report.pdf')
    writeFileSync(path, randomData(100 * 1024))

    await signIn(page, server.url)
    const uploads = trackUploads(page)
    await page.setInputFiles('input.dz-hidden-input', path)
    const message = page.locator('.dz-preview.dz-error .dz-error-message')
    await message.waitFor({ state: 'attached' })
    await expect(message.textContent()).resolves.toContain('disk space')
    expect(await page.locator('.dz-status a').count()).toBe(0)
    // The message is readable without hovering, and the person can try again.
    expect(await message.isVisible()).toBe(true)
    expect(await message.evaluate((e) => getComputedStyle(e).opacity)).toBe('1')
    expect(await page.locator('.dz-preview.dz-error button.retry').isVisible()).toBe(true)
    // A refusal is final: the chunks are not retried against a server that said no.
    expect(uploads.posts).toBe(2)
    await page.screenshot({ path: '/tmp/dropfold-refused.png', fullPage: true, animations: 'disabled' })
    // Nothing was stored, so the list stays empty.
    const list = await (await server.fetch(`${ROOT_FOLDER_PATH}/view`)).text()
    expect(list).toContain('No files yet')
    expect(watch.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
  })
})
