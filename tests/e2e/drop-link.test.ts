import { describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { signIn, unexpectedErrors, unexpectedLogs, watchPage, browserSuite, describeWithBrowser } from '../helpers/browser.ts'
import { randomData, sha256 } from '../helpers/data.ts'

/**
 * A drop link from both sides, in real Chromium: the admin makes it on the Drop links page, a
 * visitor without an account opens the address, gives the password and uploads; the admin sees it.
 */

const suite = browserSuite()

const context = () => suite.context()

describeWithBrowser('drop links in a real browser', () => {
  test('the admin creates a password-protected drop link, a visitor opens it, enters the password and uploads a file; the admin sees it', async () => {
    const server = await suite.startServer({ CHUNK_SIZE: '64K' })
    const tempDir = suite.tempDir()
    const size = 300_000 // several chunks
    const data = randomData(size)
    const name = 'Interview take 3.wav'
    const path = join(tempDir, name)
    writeFileSync(path, data)

    // The admin: signs in, follows the navigation to Drop links, fills in the form.
    const admin = await (await context()).newPage()
    const adminWatch = watchPage(admin)
    await signIn(admin, server.url)
    await Promise.all([admin.waitForURL((u) => u.pathname === '/links'), admin.click('nav.main-nav a[href="/links"]')])
    await expect(admin.locator('h1').textContent()).resolves.toBe('Drop links')
    const form = admin.locator('form[action="/links"]')
    await form.locator('input[name=label]').fill('Interview recordings')
    await form.locator('input[name=password]').fill('tape deck 42')
    await form.locator('input[name=allowDownload]').check()
    await Promise.all([admin.waitForURL((u) => /^\/links\/\d+$/.test(u.pathname)), form.locator('button', { hasText: 'Create link' }).click()])
    const linkId = Number(new URL(admin.url()).pathname.split('/').pop())
    await expect(admin.locator('#flash').textContent()).resolves.toContain('created')
    const address = await admin.locator('input.url').inputValue()
    expect(address).toMatch(new RegExp(`^${server.url}/d/[A-Za-z0-9_-]{32}$`))
    expect(await admin.locator('main').textContent()).toContain('password')

    // The visitor: another browser, no session. The address asks for the password first.
    const visitorContext = await context()
    const visitor = await visitorContext.newPage()
    const visitorWatch = watchPage(visitor)
    await visitor.goto(address)
    await expect(visitor.locator('h1').textContent()).resolves.toBe('Interview recordings')
    expect(await visitor.locator('#dropzone').count()).toBe(0)
    expect(await visitor.locator('nav.main-nav').count()).toBe(0)
    await visitor.screenshot({ path: '/tmp/dropfold-link-unlock.png', fullPage: true, animations: 'disabled' })
    // A wrong password first: told so, still locked.
    await visitor.fill('input[name=password]', 'tape deck 41')
    await Promise.all([visitor.waitForURL((u) => u.pathname.endsWith('/unlock')), visitor.click('button[type=submit]')])
    await visitor.locator('[role=alert]', { hasText: 'Wrong password' }).waitFor()
    await visitor.fill('input[name=password]', 'tape deck 42')
    await Promise.all([visitor.waitForURL(address), visitor.click('button[type=submit]')])
    await visitor.waitForSelector('#dropzone.dz-clickable')
    await visitor.waitForSelector('input.dz-hidden-input', { state: 'attached' })
    const cookies = await visitorContext.cookies()
    // The unlock and the visitor's own id (which keeps visitors' uploads apart), both only for this link.
    expect(cookies.map((c) => ({ name: c.name, path: c.path, httpOnly: c.httpOnly, sameSite: c.sameSite }))).toEqual([
      { name: `dropfold_unlock_${linkId}`, path: new URL(address).pathname, httpOnly: true, sameSite: 'Lax' },
      { name: 'dropfold_visitor', path: new URL(address).pathname, httpOnly: true, sameSite: 'Lax' },
    ])

    // Uploads through stock Dropzone; the chunks go to the link's endpoint only.
    const posts: string[] = []
    visitor.on('request', (r) => {
      if (r.method() === 'POST') posts.push(new URL(r.url()).pathname)
    })
    await visitor.setInputFiles('input.dz-hidden-input', path)
    const stored = visitor.locator('.dz-preview.dz-success .dz-status a')
    await stored.waitFor()
    expect(await stored.textContent()).toBe(`Stored as “${name}” — download`)
    const href = await stored.getAttribute('href')
    expect(href).toMatch(new RegExp(`^${new URL(address).pathname}/files/\\d+/download$`))
    expect(posts.length).toBeGreaterThanOrEqual(Math.ceil(size / 65536))
    expect(new Set(posts)).toEqual(new Set([`${new URL(address).pathname}/upload`]))
    // The folder list on the visitor's page refreshes and shows the file.
    await visitor.locator('#file-area td.name', { hasText: name }).waitFor()
    await visitor.screenshot({ path: '/tmp/dropfold-link-visitor.png', fullPage: true, animations: 'disabled' })

    // The visitor's download (with the visitor's cookies) is byte-identical.
    const download = await visitorContext.request.get(`${server.url}${href}`)
    expect(download.status()).toBe(200)
    expect(sha256(new Uint8Array(await download.body()))).toBe(sha256(data))
    // The visitor's cookie opens nothing of the admin's.
    const probe = await visitorContext.newPage()
    await probe.goto(`${server.url}/folders/1`)
    expect(new URL(probe.url()).pathname).toBe('/login')
    await probe.goto(`${server.url}/links`)
    expect(new URL(probe.url()).pathname).toBe('/login')
    await probe.close()

    // The admin sees the upload on the link's page, and the file in the folder.
    await admin.reload()
    const uploadRow = admin.locator('table.files tr', { hasText: name })
    await uploadRow.waitFor()
    expect(await uploadRow.locator('.state').textContent()).toBe('complete')
    await expect(admin.locator('main').textContent()).resolves.toContain('Received 1 file (300 KB)')
    await Promise.all([admin.waitForURL((u) => u.pathname === '/links'), admin.click('nav.main-nav a[href="/links"]')])
    const line = admin.locator('table.files tr', { hasText: 'Interview recordings' })
    await expect(line.textContent()).resolves.toContain('1 file, 300 KB')
    await admin.screenshot({ path: '/tmp/dropfold-link-admin.png', fullPage: true, animations: 'disabled' })
    await admin.goto(`${server.url}/links/${linkId}`)
    await admin.screenshot({ path: '/tmp/dropfold-link-detail.png', fullPage: true, animations: 'disabled' })
    await Promise.all([admin.waitForURL((u) => u.pathname === '/folders/1'), admin.click('nav.main-nav a[href="/"]')])
    await admin.locator('#file-area td.name', { hasText: name }).waitFor()
    const fileId = href!.split('/').at(-2)
    const adminDownload = await server.fetch(`/files/${fileId}/download`)
    expect(sha256(new Uint8Array(await adminDownload.arrayBuffer()))).toBe(sha256(data))

    expect(unexpectedErrors(adminWatch.errors)).toEqual([])
    expect(unexpectedErrors(visitorWatch.errors).filter((e) => !e.includes('401'))).toEqual([])
    expect(unexpectedLogs(server.logs)).toEqual([])
  }, 60_000)
})
