import { html } from './html.ts'
import { layout } from './layout.ts'

export function loginPage(args: { error?: string; next: string }) {
  return layout({
    title: 'Sign in',
    signedIn: false,
    body: html`<section class="card narrow">
  <h1>Sign in</h1>
  ${args.error ? html`<p class="error" role="alert">${args.error}</p>` : ''}
  <form method="post" action="/login">
    <input type="hidden" name="next" value="${args.next}">
    <label>Admin password <input type="password" name="password" autocomplete="current-password" required autofocus></label>
    <button type="submit">Sign in</button>
  </form>
</section>`,
  })
}
