import { html } from './html.ts'
import { layout } from './layout.ts'

export function errorPage(args: { status: number; message: string; back: string }) {
  return layout({
    title: 'Not done',
    signedIn: true,
    body: html`<section class="card">
  <h1>That did not work</h1>
  <p class="flash error" role="alert">${args.message}</p>
  <p><a href="${args.back}">← Back</a></p>
</section>`,
  })
}
