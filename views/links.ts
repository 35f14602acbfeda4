import type { LinkUsage } from '../src/core/records.ts'
import { LINK_PASSWORD_MIN_LENGTH, LINK_PASSWORD_RULE } from '../src/auth/link-passwords.ts'
import { formatBytes, formatDate } from './format.ts'
import { flashBox, type Flash } from './folder.ts'
import { html, type SafeHtml } from './html.ts'
import { layout } from './layout.ts'

/** A link's settings as the admin sees them: never its token (not stored) nor its password hash. */
export interface LinkSettings {
  id: number
  label: string
  /** The address's last characters, to tell links apart. */
  tokenHint: string
  folderId: number
  /** Whether the link has a password of its own. */
  hasPassword: boolean
  expiresAt: number | null
  maxFileBytes: number | null
  maxTotalBytes: number | null
  maxFiles: number | null
  allowedTypes: string | null
  allowDownload: boolean
  disabled: boolean
}

/** An upload that came through a link, as its page lists it. */
export interface LinkUpload {
  /** The file it became, once finished. */
  fileId: number | null
  fileName: string
  receivedBytes: number
  totalBytes: number
  state: string
  updatedAt: number
  clientAddress: string | null
}

export interface LinkLine {
  link: LinkSettings
  folderPath: string
  state: 'active' | 'disabled' | 'expired'
  usage: LinkUsage
  passwordFrom: 'link' | 'folder' | null
}

/** What only the page right after creating (or editing) a link shows: its address, a generated password. */
export interface LinkSecrets {
  url: string | null
  password: string | null
}

/** Not the address (never stored), only enough of it to tell links apart. */
const addressHint = (link: LinkSettings) => `/d/…${link.tokenHint}`

type FolderChoice = { id: number; path: string }

const fileCount = (n: number) => `${n} ${n === 1 ? 'file' : 'files'}`

function options(l: LinkLine): SafeHtml {
  const { link } = l
  const parts = [
    l.passwordFrom === 'link' ? 'password' : l.passwordFrom === 'folder' ? "folder's password" : '',
    link.expiresAt !== null ? `expires ${formatDate(link.expiresAt)}` : '',
    link.maxFileBytes !== null ? `files ≤ ${formatBytes(link.maxFileBytes)}` : '',
    link.maxTotalBytes !== null ? `total ≤ ${formatBytes(link.maxTotalBytes)}` : '',
    link.maxFiles !== null ? `≤ ${link.maxFiles} files` : '',
    link.allowedTypes ? `only ${link.allowedTypes}` : '',
    link.allowDownload ? 'visitors see the folder' : 'upload only',
  ].filter(Boolean)
  return html`${parts.join(' · ')}`
}

/** The fields shared by "create" and "edit". */
function linkFields(link: LinkSettings | null, folders: FolderChoice[], folderId = link?.folderId) {
  return html`<label>Folder <select name="folder">${folders.map((f) => html`<option value="${f.id}"${folderId === f.id ? ' selected' : ''}>${f.path || '/'}</option>`)}</select></label>
  <label>Label <input name="label" required value="${link?.label ?? ''}" placeholder="e.g. Footage from the shoot"></label>
  <label>Password <input type="password" name="password" autocomplete="new-password" minlength="${LINK_PASSWORD_MIN_LENGTH}" placeholder="${link?.hasPassword ? 'unchanged (type to replace)' : 'none'}"></label>
  <label class="check"><input type="checkbox" name="generatePassword"> Generate a strong password (shown once)</label>
  <p class="hint">${LINK_PASSWORD_RULE}</p>
  ${link?.hasPassword ? html`<label class="check"><input type="checkbox" name="removePassword"> Remove the password</label>` : ''}
  <label>Expires in days <input name="expiresInDays" inputmode="numeric" value="" placeholder="${link?.expiresAt ? `now ${formatDate(link.expiresAt)}; blank keeps it` : 'never'}"></label>
  ${link?.expiresAt ? html`<label class="check"><input type="checkbox" name="noExpiry"> Never expire</label>` : ''}
  <label>Largest file <input name="maxFileSize" value="${link?.maxFileBytes ?? ''}" placeholder="no limit (e.g. 2G)"></label>
  <label>Total size <input name="maxTotalSize" value="${link?.maxTotalBytes ?? ''}" placeholder="no limit (e.g. 50G)"></label>
  <label>Number of files <input name="maxFiles" inputmode="numeric" value="${link?.maxFiles ?? ''}" placeholder="no limit"></label>
  <label>Allowed types <input name="allowedTypes" value="${link?.allowedTypes ?? ''}" placeholder="anything (e.g. image/*, .pdf)"></label>
  <label class="check"><input type="checkbox" name="allowDownload"${link?.allowDownload ? ' checked' : ''}> Visitors may see and download what is in the folder</label>`
}

export function linksPage(args: { lines: LinkLine[]; folders: FolderChoice[]; protectedFolders: FolderChoice[]; flash: Flash | null; shareFolderId?: number }) {
  return layout({
    title: 'Drop links',
    signedIn: true,
    body: html`${flashBox(args.flash)}
<section class="card">
  <h1>Drop links</h1>
  ${args.lines.length === 0
    ? html`<p class="empty">No links yet. Create one below and send its address to whoever should upload.</p>`
    : html`<table class="files">
  <thead><tr><th>Label</th><th>Folder</th><th>Address</th><th>Options</th><th>Received</th><th>State</th></tr></thead>
  <tbody>${args.lines.map(
    (l) => html`<tr>
    <td class="name"><a href="/links/${l.link.id}">${l.link.label}</a></td>
    <td>${l.folderPath}</td>
    <td><code class="hint">${addressHint(l.link)}</code></td>
    <td class="type">${options(l)}</td>
    <td>${fileCount(l.usage.files)}, ${formatBytes(l.usage.fileBytes)}${l.usage.inProgress ? html`<br><span class="hint">${l.usage.inProgress} in progress</span>` : ''}</td>
    <td><span class="state ${l.state === 'active' ? 'receiving' : 'failed'}">${l.state}</span></td>
  </tr>`,
  )}</tbody></table>`}
</section>
<section class="card" id="new-link">
  <h2>New drop link</h2>
  <form method="post" action="/links" class="stacked">
    ${linkFields(null, args.folders, args.shareFolderId)}
    <button>Create link</button>
  </form>
</section>
<section class="card">
  <h2>Folder passwords</h2>
  <p class="hint">Visitors reaching a protected folder (or any folder inside it) through a drop link must give its password, unless the link has its own.</p>
  ${args.protectedFolders.length
    ? html`<ul>${args.protectedFolders.map(
        (f) => html`<li>${f.path || '/'} <form method="post" action="/links/folder-password" class="inline"><input type="hidden" name="folder" value="${f.id}"><input type="hidden" name="action" value="remove"><button class="secondary">Remove password</button></form></li>`,
      )}</ul>`
    : ''}
  <form method="post" action="/links/folder-password" class="inline">
    <input type="hidden" name="action" value="set">
    <select name="folder" aria-label="Folder">${args.folders.map((f) => html`<option value="${f.id}">${f.path || '/'}</option>`)}</select>
    <input type="password" name="password" autocomplete="new-password" minlength="${LINK_PASSWORD_MIN_LENGTH}" placeholder="Password" aria-label="Folder password">
    <label class="check"><input type="checkbox" name="generatePassword"> or generate one (shown once)</label>
    <button>Set password</button>
  </form>
  <p class="hint">${LINK_PASSWORD_RULE}</p>
</section>`,
  })
}

function secretsBox(secrets: LinkSecrets | null) {
  if (!secrets) return ''
  return html`<section class="card" id="link-secrets">
  <h2>Copy now: shown only this once</h2>
  ${secrets.url ? html`<p><label>Address <input class="url wide" readonly value="${secrets.url}" aria-label="Address" data-select-on-click></label></p>` : ''}
  ${secrets.password ? html`<p><label>Password <input class="password wide" readonly value="${secrets.password}" aria-label="Generated password" data-select-on-click></label></p>` : ''}
  <p class="hint">Dropfold keeps only a hash of ${secrets.url ? 'the address' : ''}${secrets.url && secrets.password ? ' and ' : ''}${secrets.password ? 'the password' : ''}: it cannot show ${secrets.url && secrets.password ? 'them' : 'it'} again. Lost? Create a new link.</p>
</section>`
}

export function linkPage(args: { line: LinkLine; folders: FolderChoice[]; uploads: LinkUpload[]; flash: Flash | null; secrets: LinkSecrets | null }) {
  const { link } = args.line
  return layout({
    title: link.label,
    signedIn: true,
    body: html`<nav class="crumbs"><a href="/links">← Drop links</a></nav>
${flashBox(args.flash)}
${secretsBox(args.secrets)}
<section class="card">
  <h1>${link.label}</h1>
  <p>Address: <code class="hint">${addressHint(link)}</code> (the full address was shown when the link was created)</p>
  <p>State: <span class="state ${args.line.state === 'active' ? 'receiving' : 'failed'}">${args.line.state}</span> · ${options(args.line)}</p>
  <p>Received ${fileCount(args.line.usage.files)} (${formatBytes(args.line.usage.fileBytes)})${args.line.usage.inProgress ? `, ${args.line.usage.inProgress} in progress` : ''}.</p>
  <div class="actions">
    <form method="post" action="/links/${link.id}/${link.disabled ? 'enable' : 'disable'}"><button class="secondary">${link.disabled ? 'Switch on' : 'Switch off'}</button></form>
    <form method="post" action="/links/${link.id}/delete" data-confirm="Delete this link? Its address stops working; files already received stay."><button class="danger">Delete link</button></form>
  </div>
</section>
<section class="card">
  <h2>Settings</h2>
  <form method="post" action="/links/${link.id}" class="stacked">
    ${linkFields(link, args.folders)}
    <button>Save</button>
  </form>
</section>
<section class="card">
  <h2>Uploads through this link</h2>
  ${args.uploads.length === 0
    ? html`<p class="empty">None yet.</p>`
    : html`<table class="files"><thead><tr><th>File</th><th>Size</th><th>State</th><th>When</th><th>From</th></tr></thead><tbody>
  ${args.uploads.map(
    (u) => html`<tr><td class="name">${u.fileId ? html`<a href="/files/${u.fileId}">${u.fileName}</a>` : u.fileName}</td>
    <td>${formatBytes(u.receivedBytes)} of ${formatBytes(u.totalBytes)}</td><td><span class="state ${u.state}">${u.state}</span></td>
    <td>${formatDate(u.updatedAt)}</td><td>${u.clientAddress ?? ''}</td></tr>`,
  )}</tbody></table>`}
</section>`,
  })
}
