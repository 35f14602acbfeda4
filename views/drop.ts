import type { LinkUsage } from '../src/core/records.ts'
import { formatBytes, formatDate } from './format.ts'
import { html } from './html.ts'
import { layout } from './layout.ts'

/** What a visitor of a drop link sees: no admin navigation, nothing but this link. */

/** The drop link as its visitor sees it: its label and its limits (never its token or password). */
export interface DropLink {
  id: number
  label: string
  maxFileBytes: number | null
  maxTotalBytes: number | null
  maxFiles: number | null
  /** Extensions and media types, as the admin wrote them ("image/*, .pdf"). */
  allowedTypes: string | null
  expiresAt: number | null
}

/** A file of the link's folder, for a link that lets visitors download. */
export interface DropFile {
  id: number
  name: string
  sizeBytes: number
  createdAt: number
}

export function unlockPage(args: { label: string; token: string; error?: string }) {
  return layout({
    title: args.label,
    signedIn: false,
    body: html`<section class="card narrow">
  <h1>${args.label}</h1>
  <p>This drop link is protected. Enter its password to continue.</p>
  ${args.error ? html`<p class="flash error" role="alert">${args.error}</p>` : ''}
  <form method="post" action="/d/${args.token}/unlock">
    <label>Password <input type="password" name="password" autocomplete="current-password" required autofocus></label>
    <button type="submit">Continue</button>
  </form>
</section>`,
  })
}

export function linkGonePage(args: { status: number; message: string }) {
  return layout({
    title: 'Drop link',
    signedIn: false,
    body: html`<section class="card narrow"><h1>${args.status === 404 ? 'Not found' : 'Link closed'}</h1><p>${args.message}</p></section>`,
  })
}

function limits(link: DropLink, usage: LinkUsage) {
  const used = usage.fileBytes + usage.inProgressBytes
  const items = [
    link.maxFileBytes !== null ? html`<li>Files up to ${formatBytes(link.maxFileBytes)}</li>` : '',
    link.maxTotalBytes !== null ? html`<li>${formatBytes(Math.max(0, link.maxTotalBytes - used))} left of ${formatBytes(link.maxTotalBytes)}</li>` : '',
    link.maxFiles !== null ? html`<li>${Math.max(0, link.maxFiles - usage.files - usage.inProgress)} of ${link.maxFiles} files left</li>` : '',
    link.allowedTypes ? html`<li>Only ${link.allowedTypes}</li>` : '',
    link.expiresAt !== null ? html`<li>Open until ${formatDate(link.expiresAt)}</li>` : '',
  ]
  return items.some((i) => i !== '') ? html`<ul class="limits">${items}</ul>` : ''
}

export function dropFileList(token: string, files: DropFile[]) {
  return html`<div id="file-area" hx-get="/d/${token}/files" hx-trigger="dropfold:uploaded from:body" hx-swap="outerHTML">
${files.length === 0
  ? html`<p class="empty">Nothing here yet.</p>`
  : html`<table class="files"><thead><tr><th>Name</th><th class="num">Size</th><th>Uploaded</th><th></th></tr></thead><tbody>
${files.map(
  (f) => html`<tr><td class="name">${f.name}</td><td class="num">${formatBytes(f.sizeBytes)}</td><td>${formatDate(f.createdAt)}</td>
  <td><a href="/d/${token}/files/${f.id}/download" download>Download</a></td></tr>`,
)}
</tbody></table>`}
</div>`
}

export function dropPage(args: {
  link: DropLink
  token: string
  usage: LinkUsage
  chunkBytes: number
  maxFileBytes: number
  files: DropFile[] | null
}) {
  const { link, token } = args
  return layout({
    title: link.label,
    signedIn: false,
    scripts: ['/assets/vendor/dropzone-min.js', '/assets/upload.js'],
    body: html`<section class="card">
  <h1>${link.label}</h1>
  ${limits(link, args.usage)}
  <form id="dropzone" class="dropzone" action="/d/${token}/upload" method="post" enctype="multipart/form-data"
        data-upload-url="/d/${token}/upload" data-status-url="/d/${token}/upload/" data-folder="link-${link.id}"
        data-chunk-size="${args.chunkBytes}" data-max-file-size="${args.maxFileBytes}" data-accepted-files="${link.allowedTypes ?? ''}">
    <div class="dz-message">
      <strong>Drop files here</strong> or click to choose.
      <span class="hint">Large files are sent in pieces and resume where they stopped if you drop them again.</span>
    </div>
    <noscript><input type="file" name="file" multiple> <button type="submit">Upload</button></noscript>
  </form>
  <p id="upload-summary" class="summary" aria-live="polite"></p>
</section>
${args.files ? html`<section class="card"><h2>In this folder</h2>${dropFileList(token, args.files)}</section>` : ''}`,
  })
}
