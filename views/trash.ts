import type { TrashEntry } from '../src/core/records.ts'
import { formatBytes, formatDate } from './format.ts'
import { flashBox, type Flash } from './folder.ts'
import { html } from './html.ts'
import { layout } from './layout.ts'

export function trashPage(args: { entries: TrashEntry[]; retentionDays: number; flash: Flash | null }) {
  return layout({
    title: 'Trash',
    signedIn: true,
    body: html`${flashBox(args.flash)}
<section class="card" id="trash">
  <div class="list-head">
    <h1>Trash</h1>
    ${args.entries.length
      ? html`<form method="post" action="/trash/empty" hx-post="/trash/empty" hx-confirm="Delete everything in the trash for good? This frees its storage and cannot be undone.">
      <button class="danger">Empty trash</button></form>`
      : ''}
  </div>
  <p class="hint">Deleted files and folders stay here for ${args.retentionDays} days, then they are deleted for good.</p>
  ${args.entries.length === 0
    ? html`<p class="empty">The trash is empty.</p>`
    : html`<table class="files">
  <thead><tr><th>Name</th><th>Was in</th><th class="num">Size</th><th>Deleted</th><th></th></tr></thead>
  <tbody>${args.entries.map(
    (e) => html`<tr>
    <td class="name">${e.kind === 'folder' ? '📁 ' : ''}${e.name}</td>
    <td>${e.from || '/'}</td>
    <td class="num">${e.sizeBytes === null ? '' : formatBytes(e.sizeBytes)}</td>
    <td>${formatDate(e.deletedAt)}</td>
    <td><form method="post" action="/trash/${e.kind}s/${e.id}/restore" hx-post="/trash/${e.kind}s/${e.id}/restore"><button class="secondary">Restore</button></form></td>
  </tr>`,
  )}</tbody>
</table>`}
</section>`,
  })
}
