import { flashBox, type Flash } from './folder.ts'
import { html } from './html.ts'
import { layout } from './layout.ts'

export function accountPage(args: { fromEnvironment: boolean; minLength: number; error: string | null; flash: Flash | null }) {
  const flash: Flash | null = args.error ? { kind: 'error', text: args.error } : args.flash
  return layout({
    title: 'Account',
    signedIn: true,
    body: html`${flashBox(flash)}
<section class="card narrow">
  <h1>Account</h1>
  <h2>Change password</h2>
  ${args.fromEnvironment
    ? html`<p class="hint">The admin password is set by <code>ADMIN_PASSWORD</code> in the server’s environment, so it cannot be changed here: change it there and restart the server (every session made under the old one then ends).</p>`
    : html`<form method="post" action="/account/password" class="stacked">
    <label>Current password <input type="password" name="current" autocomplete="current-password" required></label>
    <label>New password <input type="password" name="password" autocomplete="new-password" minlength="${args.minLength}" required></label>
    <label>New password again <input type="password" name="confirm" autocomplete="new-password" minlength="${args.minLength}" required></label>
    <p class="hint">At least ${args.minLength} characters. Every other session is signed out; this one stays.</p>
    <button>Change password</button>
  </form>`}
  <h2>Sessions</h2>
  <form method="post" action="/account/sign-out-everywhere">
    <p class="hint">Ends every session, on every device, including this one.</p>
    <button class="danger">Sign out everywhere</button>
  </form>
</section>`,
  })
}
