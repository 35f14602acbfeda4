import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { acceptDialogs, browserSuite, signIn, unexpectedErrors, waitForUploader, watchPage, describeWithBrowser } from '../helpers/browser.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { post, row, uploadFile } from '../library/helpers.ts'
import { createLink } from '../links/helpers.ts'

async function newLink(t: TestServer, fields: Record<string, string> = {}) {
  const { id, token } = await createLink(t, { label: 'shoot', ...fields })
  return { id, token }
}

describe('security headers of pages', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer()
  })
  afterAll(() => t.stop())

  test('every page forbids inline script and framing, and sniffing', async () => {
    const file = await uploadFile(t, 'a.txt', 'text')
    const link = await newLink(t)
    for (const path of ['/login', '/folders/1', `/files/${file.id}`, '/trash', '/uploads', '/activity', '/links', `/links/${link.id}`, `/d/${link.token}`]) {
      const response = await t.fetch(path)
      expect(`${path} ${response.status}`).toBe(`${path} 200`)
      const csp = response.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("script-src 'self'")
      expect(csp).not.toMatch(/script-src[^;]*'unsafe-(inline|eval)'/)
      expect(csp).toContain("frame-ancestors 'none'")
      expect(response.headers.get('x-frame-options')).toBe('DENY')
      expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    }
  })

  test('no page carries an inline script or event handler', async () => {
    const link = await newLink(t, { password: 'open sesame' })
    for (const path of ['/login', '/folders/1', '/links', `/links/${link.id}`, `/d/${link.token}`]) {
      const body = await (await t.fetch(path)).text()
      expect(body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
      expect(body).not.toMatch(/\s(on[a-z]+|hx-on[:\w-]*)=/)
    }
  })

  test("a drop link's pages are not kept, indexed or given away in a Referer", async () => {
    const open = await newLink(t, { allowDownload: 'on' })
    const locked = await newLink(t, { password: 'open sesame' })
    const pages = [`/d/${open.token}`, `/d/${open.token}/files`, `/d/${locked.token}`, '/d/no-such-token']
    for (const path of pages) {
      const response = await fetch(t.url + path)
      expect(response.headers.get('referrer-policy')).toBe('no-referrer')
      expect(response.headers.get('cache-control')).toBe('no-store')
      expect(response.headers.get('x-robots-tag')).toBe('noindex')
    }
    // The admin's own pages are not a visitor's.
    expect((await t.fetch('/links')).headers.get('x-robots-tag')).toBeNull()
  })
})

const suite = browserSuite()

/** Records every Content-Security-Policy violation a page raises, from before its first script. */
async function watchViolations(page: Page) {
  await page.addInitScript(() => {
    const seen: string[] = ((globalThis as any).__violations = [])
    document.addEventListener('securitypolicyviolation', (event) => seen.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`))
  })
  return () => page.evaluate(() => (globalThis as any).__violations as string[])
}

describeWithBrowser('pages in a real browser under the Content-Security-Policy', () => {
  test('a violation would be seen: an inline script injected into a page is blocked and reported', async () => {
    const server = await suite.startServer()
    const page = await (await suite.context()).newPage()
    const violations = await watchViolations(page)
    await page.goto(`${server.url}/login`)
    await page.evaluate(() => {
      const script = document.createElement('script')
      script.textContent = 'globalThis.__ran = true'
      document.body.append(script)
    })
    expect(await page.evaluate(() => (globalThis as any).__ran)).toBeUndefined()
    expect((await violations()).some((v) => v.startsWith('script-src'))).toBe(true)
  })

  test('every page and its behaviours run without a violation', async () => {
    const server = await suite.startServer()
    const file = await uploadFile(server, 'photo.png', new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]))
    const link = await newLink(server, { allowDownload: 'on' })
    const locked = await newLink(server, { password: 'open sesame' })
    const page = await (await suite.context()).newPage()
    const watch = watchPage(page)
    const violations = await watchViolations(page)
    const dialogs = acceptDialogs(page)
    await signIn(page, server.url)

    // Folder page: the new-folder form clears itself once the folder exists; select all.
    await page.fill('form[action="/folders/1/folders"] input[name=name]', 'Reports')
    await page.click('form[action="/folders/1/folders"] button')
    await page.waitForSelector('a:has-text("Reports")')
    expect(await page.inputValue('form[action="/folders/1/folders"] input[name=name]')).toBe('')
    await page.check('input[data-select-all]')
    expect(await page.isChecked(`input[name=ids][value="${file.id}"]`)).toBe(true)
    await waitForUploader(page)

    for (const path of [`/files/${file.id}`, '/trash', '/uploads', '/activity', '/links']) {
      await page.goto(server.url + path)
      await page.waitForLoadState('load')
    }
    // A new link's page shows its address once, selected on a click; deleting asks first.
    await page.goto(`${server.url}/links`)
    await page.fill('form[action="/links"] input[name=label]', 'handed over')
    await Promise.all([page.waitForURL((u) => /^\/links\/\d+$/.test(u.pathname)), page.click('form[action="/links"] button[type=submit], form[action="/links"] button:not([type])')])
    await page.click('input.url')
    expect(await page.evaluate(() => getSelection()?.toString() || (document.activeElement as HTMLInputElement).selectionEnd)).toBeTruthy()
    await Promise.all([page.waitForURL((u) => u.pathname === '/links'), page.click('form[action$="/delete"] button')])
    expect(dialogs.some((d) => d.startsWith('Delete this link?'))).toBe(true)

    // A visitor's pages.
    await page.goto(`${server.url}/d/${locked.token}`)
    await page.fill('input[name=password]', 'open sesame')
    await Promise.all([page.waitForURL((u) => u.pathname === `/d/${locked.token}`), page.click('button[type=submit]')])
    await waitForUploader(page)

    expect(await violations()).toEqual([])
    expect(unexpectedErrors(watch.errors)).toEqual([])
  })
})
