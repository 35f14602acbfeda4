import type { FileRecord as FileRow, Upload as UploadRow } from '../src/core/records.ts'
import { formatBytes, formatDate } from './format.ts'
import { html, type SafeHtml } from './html.ts'
import { layout } from './layout.ts'
import { flashBox, type Flash } from './folder.ts'

export interface FileDetail {
  file: FileRow
  folderPath: string
  upload: UploadRow | null
  /** The drop link the file came through, if it still exists. */
  link: { id: number; label: string } | null
  preview: { kind: 'image' | 'video' | 'audio' | 'pdf' } | { kind: 'text'; text: string; truncated: boolean } | null
  folderChoices: { id: number; path: string }[]
}

function uploader(upload: UploadRow | null, link: FileDetail['link']): SafeHtml | string {
  if (!upload) return 'unknown'
  const who =
    upload.owner === 'admin'
      ? 'the admin'
      : link
        ? html`a visitor of drop link <a href="/links/${link.id}">“${link.label}”</a>`
        : upload.owner.startsWith('link:')
          ? `a visitor of a deleted drop link (${upload.owner})`
          : upload.owner
  const how = { dropzone: 'the upload page (Dropzone)', plain: 'a form upload', tus: 'tus' }[upload.protocol]
  return html`${who}, through ${how}${upload.clientAddress ? html`, from ${upload.clientAddress}` : ''}`
}

function preview(d: FileDetail): SafeHtml | string {
  const src = `/files/${d.file.id}/preview`
  switch (d.preview?.kind) {
    case 'image':
      return html`<img src="${src}" alt="${d.file.name}">`
    case 'video':
      return html`<video src="${src}" controls preload="metadata"></video>`
    case 'audio':
      return html`<audio src="${src}" controls preload="metadata"></audio>`
    case 'pdf':
      // Ending in the file's name, which the browser's PDF viewer shows as the document's title.
      return html`<iframe src="${src}/${encodeURIComponent(d.file.name)}" title="${d.file.name}"></iframe>`
    case 'text':
      return html`<pre>${d.preview.text}</pre>${d.preview.truncated ? html`<p class="hint">Only the beginning is shown.</p>` : ''}`
    default:
      return html`<p class="empty">No preview for this type of file.</p>`
  }
}

export function filePage(d: FileDetail, flash: Flash | null) {
  const { file } = d
  const targets = d.folderChoices.filter((c) => c.id !== file.folderId)
  const form = (action: string, body: SafeHtml, extra: SafeHtml = html``) =>
    html`<form method="post" action="${action}" hx-post="${action}" class="inline" ${extra}>${body}</form>`
  return layout({
    title: file.name,
    signedIn: true,
    body: html`<nav class="crumbs"><a href="/folders/${file.folderId}">← ${d.folderPath}</a></nav>
${flashBox(flash)}
<section class="card">
  <h1 class="file-name">${file.name}</h1>
  <dl class="meta">
    <dt>Size</dt><dd>${formatBytes(file.sizeBytes)} (${file.sizeBytes.toLocaleString('en')} bytes)</dd>
    <dt>Type</dt><dd>${file.mimeType}</dd>
    <dt>SHA-256</dt><dd><code>${file.sha256}</code></dd>
    <dt>Folder</dt><dd><a href="/folders/${file.folderId}">${d.folderPath}</a></dd>
    <dt>Uploaded</dt><dd>${formatDate(file.createdAt)} by ${uploader(d.upload, d.link)}</dd>
  </dl>
  <p><a class="button" href="/files/${file.id}/download" download>Download</a></p>
  <div class="actions">
    ${form(`/files/${file.id}/rename`, html`<input name="name" value="${file.name}" required aria-label="File name"> <button>Rename</button>`)}
    ${form(`/files/${file.id}/move`, html`<select name="target" aria-label="Move to">${targets.map((c) => html`<option value="${c.id}">${c.path || '/'}</option>`)}</select> <button${targets.length ? '' : ' disabled'}>Move</button>`)}
    ${form(`/files/${file.id}/delete`, html`<button class="danger">Delete</button>`, html`hx-confirm="Move “${file.name}” to the trash?"`)}
  </div>
  <div class="preview">${preview(d)}</div>
</section>`,
  })
}
