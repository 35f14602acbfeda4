import type { FileSort, SortDirection } from '../src/core/records.ts'
import { elidedPath } from '../src/engine/file-names.ts'
import { formatBytes, formatDate } from './format.ts'
import { html, type SafeHtml } from './html.ts'
import { layout } from './layout.ts'

/** A folder as its page names it and links to it (never its password hash). */
export interface Folder {
  id: number
  name: string
  /** `null` for Home, the root. */
  parentId: number | null
}

/** A file as a folder's listing shows it. */
export interface ListedFile {
  id: number
  name: string
  sizeBytes: number
  mimeType: string
  sha256: string
  createdAt: number
}

export interface FolderListing {
  folder: Folder
  /** Root first, this folder last. */
  path: Folder[]
  subfolders: Folder[]
  files: ListedFile[]
  total: number
  page: number
  pageSize: number
  sort: FileSort
  direction: SortDirection
  filter: string
  /** Every live folder, for "move to". */
  folderChoices: FolderChoice[]
}

export type FolderChoice = { id: number; path: string }

export interface Flash {
  kind: 'notice' | 'error'
  text: string
}

export const folderName = (folder: Pick<Folder, 'name' | 'parentId'>) => (folder.parentId === null ? 'Home' : folder.name)

/** Query string for a listing with some parameters changed. */
export function listingQuery(l: Pick<FolderListing, 'sort' | 'direction' | 'filter' | 'page'>, change: Partial<Record<'sort' | 'dir' | 'q' | 'page', string | number>> = {}) {
  const params = new URLSearchParams({ sort: l.sort, dir: l.direction, q: l.filter, page: String(l.page) })
  for (const [key, value] of Object.entries(change)) params.set(key, String(value))
  if (!params.get('q')) params.delete('q')
  if (params.get('page') === '1') params.delete('page')
  return params.toString()
}

export function flashBox(flash: Flash | null, outOfBand = false): SafeHtml {
  return html`<div id="flash" class="flash ${flash?.kind ?? ''}" role="${flash?.kind === 'error' ? 'alert' : 'status'}"${outOfBand ? html` hx-swap-oob="true"` : ''}>${flash?.text ?? ''}</div>`
}

/** Home to this folder; a deep one shows its first and last few folders around "…". */
function breadcrumbs(path: Folder[]) {
  const shown = elidedPath(path)
  return html`<nav class="crumbs" aria-label="Folder path">${shown.map((f, i) =>
    f === null
      ? html`<span class="elided" title="${path.length - shown.length + 1} folders">…</span><span class="sep">/</span>`
      : i === shown.length - 1
        ? html`<span aria-current="page">${folderName(f)}</span>`
        : html`<a href="/folders/${f.id}">${folderName(f)}</a><span class="sep">/</span>`,
  )}</nav>`
}

/** A form that posts with htmx when it can and as a plain form when it cannot. */
function actionForm(action: string, body: SafeHtml, extra: SafeHtml = html``) {
  return html`<form method="post" action="${action}" hx-post="${action}" hx-target="#file-area" hx-swap="outerHTML" ${extra}>${body}</form>`
}

function folderActions(l: FolderListing, targets: FolderChoice[]) {
  const { folder } = l
  const isRoot = folder.parentId === null
  return html`<div class="actions">
  ${actionForm(
    `/folders/${folder.id}/folders`,
    html`<input name="name" placeholder="New folder name" required aria-label="New folder name"> <button>New folder</button>`,
    // Once the folder exists, clear the name (a refusal keeps it, to be corrected): public/app.js.
    html`data-reset-on-success`,
  )}
  <a class="button secondary" href="/links?folder=${folder.id}#new-link">Share…</a>
  ${isRoot
    ? ''
    : html`${actionForm(`/folders/${folder.id}/rename`, html`<input name="name" value="${folder.name}" required aria-label="Folder name"> <button>Rename</button>`)}
  ${actionForm(`/folders/${folder.id}/move`, html`<select name="target" aria-label="Move folder to">${targets.map((c) => html`<option value="${c.id}">${c.path || '/'}</option>`)}</select> <button${targets.length ? '' : ' disabled'}>Move</button>`)}
  ${actionForm(`/folders/${folder.id}/delete`, html`<button class="danger">Delete folder</button>`, html`hx-confirm="Move “${folder.name}” and everything in it to the trash?"`)}`}
  </div>`
}

function sortLink(l: FolderListing, sort: FileSort, label: string) {
  const active = l.sort === sort
  const dir = active && l.direction === 'asc' ? 'desc' : active ? 'asc' : sort === 'name' ? 'asc' : 'desc'
  const query = listingQuery(l, { sort, dir, page: 1 })
  const arrow = active ? (l.direction === 'asc' ? ' ▲' : ' ▼') : ''
  return html`<a href="/folders/${l.folder.id}?${query}" hx-get="/folders/${l.folder.id}/view?${query}" hx-target="#file-area" hx-swap="outerHTML" hx-push-url="/folders/${l.folder.id}?${query}" aria-sort="${active ? (l.direction === 'asc' ? 'ascending' : 'descending') : 'none'}">${label}${arrow}</a>`
}

/** Subfolders, the page of files with bulk actions, and paging: what actions re-render. */
export function fileArea(l: FolderListing): SafeHtml {
  const pages = Math.max(1, Math.ceil(l.total / l.pageSize))
  const pageLink = (page: number, label: string) => {
    const query = listingQuery(l, { page })
    return html`<a href="/folders/${l.folder.id}?${query}" hx-get="/folders/${l.folder.id}/view?${query}" hx-target="#file-area" hx-swap="outerHTML" hx-push-url="/folders/${l.folder.id}?${query}">${label}</a>`
  }
  const moveTargets = l.folderChoices.filter((c) => c.id !== l.folder.id)
  const refresh = `/folders/${l.folder.id}/view?${listingQuery(l)}`
  return html`<div id="file-area" hx-get="${refresh}" hx-trigger="dropfold:uploaded from:body" hx-target="this" hx-swap="outerHTML">
  ${l.subfolders.length
    ? html`<ul class="folders">${l.subfolders.map((f) => html`<li><a href="/folders/${f.id}">📁 ${f.name}</a></li>`)}</ul>`
    : ''}
  ${l.total === 0
    ? html`<p class="empty">${l.filter ? html`No files match “${l.filter}”.` : 'No files yet.'}</p>`
    : html`<form id="bulk" method="post" action="/files/bulk" hx-post="/files/bulk" hx-target="#file-area" hx-swap="outerHTML">
  <input type="hidden" name="folder" value="${l.folder.id}">
  <input type="hidden" name="return" value="${listingQuery(l)}">
  <table class="files">
  <thead><tr><th class="pick"><input type="checkbox" aria-label="Select all" data-select-all="ids"></th>
    <th>${sortLink(l, 'name', 'Name')}</th><th class="num">${sortLink(l, 'size', 'Size')}</th><th>Type</th><th>${sortLink(l, 'date', 'Uploaded')}</th><th></th></tr></thead>
  <tbody>
  ${l.files.map(
    (file) => html`<tr>
    <td class="pick"><input type="checkbox" name="ids" value="${file.id}" aria-label="Select ${file.name}"></td>
    <td class="name" title="SHA-256 ${file.sha256}"><a href="/files/${file.id}">${file.name}</a></td>
    <td class="num" title="${file.sizeBytes} bytes">${formatBytes(file.sizeBytes)}</td>
    <td class="type">${file.mimeType}</td>
    <td>${formatDate(file.createdAt)}</td>
    <td><a href="/files/${file.id}/download" download>Download</a></td>
  </tr>`,
  )}
  </tbody>
  </table>
  <div class="bulk">With selected:
    <select name="target" aria-label="Move selected to">${moveTargets.map((c) => html`<option value="${c.id}">${c.path || '/'}</option>`)}</select>
    <button name="action" value="move"${moveTargets.length ? '' : ' disabled'}>Move</button>
    <button name="action" value="delete" class="danger">Delete</button>
  </div>
</form>
${pages > 1
  ? html`<nav class="pager">${l.page > 1 ? pageLink(l.page - 1, '← Previous') : ''}
  <span>Page ${l.page} of ${pages} · ${l.total} files</span>
  ${l.page < pages ? pageLink(l.page + 1, 'Next →') : ''}</nav>`
  : html`<p class="count">${l.total} ${l.total === 1 ? 'file' : 'files'}</p>`}`}
</div>`
}

/** `folderTargets`: where this folder may be moved. */
export function folderPage(args: { listing: FolderListing; folderTargets: FolderChoice[]; flash: Flash | null; chunkBytes: number; maxFileBytes: number }) {
  const l = args.listing
  const { folder } = l
  return layout({
    title: folderName(folder),
    signedIn: true,
    scripts: ['/assets/vendor/dropzone-min.js', '/assets/upload.js'],
    body: html`${breadcrumbs(l.path)}
${flashBox(args.flash)}
<section class="card">
  <div class="folder-head">
    <h1>${folderName(folder)}</h1>
    ${folderActions(l, args.folderTargets)}
  </div>
  <form id="dropzone" class="dropzone" action="/upload" method="post" enctype="multipart/form-data"
        data-folder="${folder.id}" data-chunk-size="${args.chunkBytes}" data-max-file-size="${args.maxFileBytes}">
    <div class="dz-message">
      <strong>Drop files here</strong> or click to choose.
      <span class="hint">Large files are sent in ${formatBytes(args.chunkBytes)} chunks, several at a time; an interrupted upload resumes when you drop the file again.</span>
    </div>
    <noscript>
      <input type="hidden" name="folder" value="${folder.id}">
      <input type="file" name="file" multiple> <button type="submit">Upload</button>
    </noscript>
  </form>
  <p id="upload-summary" class="summary" aria-live="polite"></p>
</section>
<section class="card">
  <div class="list-head">
    <h2>Contents</h2>
    <form method="get" action="/folders/${folder.id}" class="filter" role="search">
      <input type="hidden" name="sort" value="${l.sort}"><input type="hidden" name="dir" value="${l.direction}">
      <input type="search" name="q" value="${l.filter}" placeholder="Filter by name" aria-label="Filter by name"
             hx-get="/folders/${folder.id}/view" hx-trigger="input changed delay:300ms, search" hx-target="#file-area" hx-swap="outerHTML"
             hx-include="closest form">
      <noscript><button>Filter</button></noscript>
    </form>
  </div>
  ${fileArea(l)}
</section>`,
  })
}
