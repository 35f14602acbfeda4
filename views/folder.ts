import type { FileRow, FolderRow } from '../src/db/files.ts'
import { formatBytes, formatDate } from './format.ts'
import { html } from './html.ts'
import { layout } from './layout.ts'

export interface FileListData {
  folderId: number
  files: FileRow[]
  total: number
  page: number
  pageSize: number
}

export function folderPage(args: {
  folder: FolderRow
  list: FileListData
  chunkBytes: number
  maxFileBytes: number
}) {
  const { folder } = args
  return layout({
    title: folder.name || 'Home',
    signedIn: true,
    scripts: ['/assets/vendor/dropzone-min.js', '/assets/upload.js'],
    body: html`<section class="card">
  <h1>${folder.name || 'Home'}</h1>
  <form id="dropzone" class="dropzone" action="/upload" method="post" enctype="multipart/form-data"
        data-folder="${folder.id}" data-chunk-size="${args.chunkBytes}" data-max-file-size="${args.maxFileBytes}">
    <div class="dz-message">
      <strong>Drop files here</strong> or click to choose.
      <span class="hint">Large files are sent in ${formatBytes(args.chunkBytes)} chunks, several at a time, and retried on errors.</span>
    </div>
    <noscript>
      <input type="hidden" name="folder" value="${folder.id}">
      <input type="file" name="file" multiple> <button type="submit">Upload</button>
    </noscript>
  </form>
  <p id="upload-summary" class="summary" aria-live="polite"></p>
</section>
<section class="card">
  <h2>Files</h2>
  <div id="file-list" hx-get="/folders/${folder.id}/files?page=${args.list.page}" hx-trigger="dropfold:uploaded from:body">
    ${fileList(args.list)}
  </div>
</section>`,
  })
}

export function fileList(list: FileListData) {
  if (list.total === 0) return html`<p class="empty">No files yet.</p>`
  const pages = Math.ceil(list.total / list.pageSize)
  const pageLink = (page: number, label: string) =>
    html`<a href="/folders/${list.folderId}?page=${page}" hx-get="/folders/${list.folderId}/files?page=${page}" hx-target="#file-list">${label}</a>`
  return html`<table class="files">
  <thead><tr><th>Name</th><th class="num">Size</th><th>Uploaded</th><th></th></tr></thead>
  <tbody>
  ${list.files.map(
    (file) => html`<tr>
    <td class="name" title="SHA-256 ${file.sha256}">${file.name}</td>
    <td class="num" title="${file.sizeBytes} bytes">${formatBytes(file.sizeBytes)}</td>
    <td>${formatDate(file.createdAt)}</td>
    <td><a href="/files/${file.id}/download" download>Download</a></td>
  </tr>`,
  )}
  </tbody>
</table>
${pages > 1
  ? html`<nav class="pager">${list.page > 1 ? pageLink(list.page - 1, '← Newer') : ''}
  <span>Page ${list.page} of ${pages} (${list.total} files)</span>
  ${list.page < pages ? pageLink(list.page + 1, 'Older →') : ''}</nav>`
  : ''}`
}
