import type { Server } from 'bun'
import { HttpError } from '../errors.ts'
import { cookieHeader, readCookie } from '../http/cookies.ts'
import { refusalOf } from '../http/errors.ts'
import { flashBox, type Flash } from '../../views/folder.ts'
import { html, htmlResponse, type SafeHtml } from '../../views/html.ts'
import { errorPage } from '../../views/error.ts'

/**
 * How a management action answers: htmx requests get the re-rendered fragment plus the message
 * (or a client-side redirect); plain form posts get a redirect, with the message carried in a
 * short-lived cookie so it shows once on the next page.
 */

const FLASH_COOKIE = 'dropfold_flash'

/** What an action's handler takes from the route (POST /things/:id/…). */
export type ActionContext = { request: Request; params: { id: string }; server: Server<unknown> | null }

export type Flashes = ReturnType<typeof flashes>

export const isHtmx = (request: Request) => request.headers.get('hx-request') === 'true'

/**
 * The flash message helpers of one app: its cookie carries Secure like the session cookie when
 * the server is configured for HTTPS (SECURE_COOKIES).
 */
export function flashes(config: { secureCookies: boolean }) {
  const flashCookie = (flash: Flash | null) =>
    flash
      ? cookieHeader(FLASH_COOKIE, encodeURIComponent(JSON.stringify(flash)), { maxAgeSeconds: 60, secure: config.secureCookies })
      : cookieHeader(FLASH_COOKIE, '', { maxAgeSeconds: 0, secure: config.secureCookies })

  return {
    /** The message a previous action left for this page (and a header that clears it). */
    takeFlash(request: Request): { flash: Flash | null; headers: Record<string, string> } {
      const raw = readCookie(request, FLASH_COOKIE)
      if (!raw) return { flash: null, headers: {} }
      try {
        const value = JSON.parse(decodeURIComponent(raw)) as Flash
        const flash = value && (value.kind === 'notice' || value.kind === 'error') && typeof value.text === 'string' ? value : null
        return { flash, headers: { 'set-cookie': flashCookie(null) } }
      } catch {
        return { flash: null, headers: { 'set-cookie': flashCookie(null) } }
      }
    },

    succeeded(request: Request, args: { flash: Flash; redirect: string; fragment?: () => SafeHtml }): Response {
      if (isHtmx(request)) {
        if (args.fragment) return htmlResponse(html`${args.fragment()}${flashBox(args.flash, true)}`)
        return new Response('', { status: 200, headers: { 'hx-redirect': args.redirect, 'set-cookie': flashCookie(args.flash) } })
      }
      return new Response(null, { status: 303, headers: { location: args.redirect, 'set-cookie': flashCookie(args.flash) } })
    },
  }
}

export function failed(request: Request, error: HttpError, back: string): Response {
  const flash: Flash = { kind: 'error', text: error.message }
  // htmx: only the message is swapped in (out of band); what is on the page stays as it is.
  if (isHtmx(request)) return htmlResponse(flashBox(flash, true), error.status)
  return htmlResponse(errorPage({ status: error.status, message: error.message, back }), error.status)
}

/** Runs an action, turning refusals into answers the person can read. */
export async function act(request: Request, back: string, work: () => Response | Promise<Response>): Promise<Response> {
  try {
    return await work()
  } catch (error) {
    const refusal = refusalOf(error)
    if (refusal) return failed(request, refusal, back)
    throw error
  }
}

export async function readForm(request: Request): Promise<FormData> {
  try {
    return await request.formData()
  } catch {
    throw new HttpError(400, 'The request must be a form')
  }
}

export function formId(form: FormData, name: string): number {
  const text = form.get(name)
  if (typeof text !== 'string' || !/^\d{1,15}$/.test(text)) throw new HttpError(400, `Field ${name} must be an id`)
  return Number(text)
}

export function formText(form: FormData, name: string): string {
  const text = form.get(name)
  if (typeof text !== 'string') throw new HttpError(400, `Field ${name} is missing`)
  return text
}

export function pathId(text: string, what: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(404, `No such ${what}`)
  return Number(text)
}
