import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core'

/**
 * Real Chromium for end-to-end tests, driven by playwright-core (no bundled browsers: we use the
 * system's). A missing browser is a failure with instructions, never a silent skip.
 */

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium was not found at ${CHROMIUM_PATH}. The browser tests need a real Chromium: ` +
        'install it with `apt-get install chromium`, or set CHROMIUM_PATH to the path of a Chromium/Chrome executable.',
    )
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS })
}

/** A fresh context (no cookies, no storage): a person who has never visited. */
export async function newContext(browser: Browser, options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, ...options })
  context.setDefaultTimeout(15_000)
  context.setDefaultNavigationTimeout(15_000)
  return context
}

/**
 * Collects what a page reports that a test should fail on: uncaught exceptions and console errors.
 * Call `problems()` to read them.
 */
export function watchPage(page: Page) {
  const errors: string[] = []
  const console: string[] = []
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`))
  page.on('console', (message) => {
    console.push(`${message.type()}: ${message.text()}`)
    if (message.type() === 'error') errors.push(`console.error: ${message.text()} (${message.location().url})`)
  })
  return { errors, console }
}

export async function closeContext(context: BrowserContext | undefined) {
  await context?.close().catch(() => {})
}

export async function closeBrowser(browser: Browser | undefined) {
  await browser?.close().catch(() => {})
}
