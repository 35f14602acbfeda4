import { formatBytes, formatDate } from './format.ts'
import { flashBox, type Flash } from './folder.ts'
import { html } from './html.ts'
import { layout } from './layout.ts'

/** An upload as the uploads page lists it. */
export interface ListedUpload {
  id: string
  fileName: string
  owner: string
  protocol: string
  clientAddress: string | null
  /** `receiving`, `finalizing`, `complete`, `failed`, … */
  state: string
  /** Set on the parts and the final upload of a parallel tus upload. */
  concat: 'partial' | 'final' | null
  totalBytes: number
  /** The length is not known yet (tus Upload-Defer-Length). */
  lengthDeferred: boolean
  receivedBytes: number
  chunkCount: number
  receivedChunks: number
  updatedAt: number
  /** Why it failed or stopped. */
  error: string | null
}

export interface UploadLine {
  upload: ListedUpload
  folderPath: string
  /** receiving uploads with no activity for a while show as stalled; finished parts as waiting (for their final upload). */
  shownState: string
  bytesPerSecond: number
}

export interface Storage {
  storedBytes: number
  logicalBytes: number
  stagedBytes: number
  /** Null where staging has no free-space limit (an object store). */
  freeBytes: number | null
  fileCount: number
}

/** A finished part of a parallel tus upload, whose bytes wait for the final upload that joins the parts. */
export const isWaitingPart = (upload: Pick<ListedUpload, 'concat' | 'state'>) => upload.concat === 'partial' && upload.state === 'complete'

function source(upload: ListedUpload) {
  const who = upload.owner === 'admin' ? 'admin' : upload.owner
  return html`${who} · ${upload.protocol}${upload.clientAddress ? html` · ${upload.clientAddress}` : ''}`
}

export function uploadsTable(lines: UploadLine[], now: number) {
  const ago = (ms: number) => {
    const s = Math.max(0, Math.round((now - ms) / 1000))
    return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : formatDate(ms)
  }
  return html`<div id="uploads-table" hx-get="/uploads/table" hx-trigger="every 2s" hx-swap="outerHTML">
${lines.length === 0
  ? html`<p class="empty">No uploads in progress, failed or stopped.</p>`
  : html`<table class="files">
  <thead><tr><th>File</th><th>Folder</th><th>Received</th><th>Chunks</th><th class="num">Speed</th><th>Last activity</th><th>State</th><th>Source</th><th></th></tr></thead>
  <tbody>${lines.map(({ upload, folderPath, shownState, bytesPerSecond }) => {
    const percent = upload.totalBytes > 0 ? Math.floor((100 * upload.receivedBytes) / upload.totalBytes) : 0
    return html`<tr>
    <td class="name">${upload.fileName}${upload.concat === 'partial' ? html` <span class="badge" title="Part of a parallel upload: joined into the file by a final upload">part</span>` : ''}</td>
    <td>${folderPath}</td>
    <td><div class="progress" title="${percent}%"><span style="width: ${percent}%"></span></div>
      ${formatBytes(upload.receivedBytes)} of ${upload.lengthDeferred ? 'unknown' : formatBytes(upload.totalBytes)}</td>
    <td>${upload.chunkCount > 0 ? `${upload.receivedChunks} / ${upload.chunkCount}` : '—'}</td>
    <td class="num">${bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : '—'}</td>
    <td>${ago(upload.updatedAt)}</td>
    <td><span class="state ${shownState}" title="${upload.error ?? ''}">${shownState}</span></td>
    <td>${source(upload)}</td>
    <td>${upload.state === 'receiving' || isWaitingPart(upload)
      ? html`<form method="post" action="/uploads/${upload.id}/cancel" hx-post="/uploads/${upload.id}/cancel" hx-target="#uploads-table" hx-swap="outerHTML" hx-confirm="Cancel this upload and delete what it received?"><button class="danger">Cancel</button></form>`
      : upload.state === 'finalizing'
        ? ''
        : html`<form method="post" action="/uploads/${upload.id}/dismiss" hx-post="/uploads/${upload.id}/dismiss" hx-target="#uploads-table" hx-swap="outerHTML"><button class="secondary">Remove</button></form>`}</td>
  </tr>`
  })}</tbody>
</table>`}
</div>`
}

export function storageSummary(s: Storage) {
  return html`<div class="stats" id="storage">
  <div><b>${formatBytes(s.storedBytes)}</b>stored on disk</div>
  <div><b>${formatBytes(Math.max(0, s.logicalBytes - s.storedBytes))}</b>saved by deduplication</div>
  <div><b>${formatBytes(s.stagedBytes)}</b>in uploads in progress</div>
  ${s.freeBytes === null ? '' : html`<div><b>${formatBytes(s.freeBytes)}</b>free on the data volume</div>`}
  <div><b>${s.fileCount}</b>${s.fileCount === 1 ? 'file' : 'files'} (trash included)</div>
</div>`
}

export function uploadsPage(args: { lines: UploadLine[]; storage: Storage; now: number; flash: Flash | null }) {
  return layout({
    title: 'Uploads',
    signedIn: true,
    body: html`${flashBox(args.flash)}
<section class="card"><h1>Storage</h1>${storageSummary(args.storage)}</section>
<section class="card">
  <h2>Uploads in progress, failed or stopped</h2>
  <p class="hint">Updates every two seconds. An upload with no activity for a minute shows as stalled; unfinished uploads expire after their time-to-live and free their space. Parts of a parallel (tus) upload wait for the final upload that joins them, and expire like unfinished uploads if none does.</p>
  ${uploadsTable(args.lines, args.now)}
</section>`,
  })
}
