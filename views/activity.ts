import type { ActivityRecord as ActivityRow } from '../src/core/records.ts'
import { formatDate } from './format.ts'
import { html } from './html.ts'
import { layout } from './layout.ts'

export interface ActivityFilters {
  action: string
  actor: string
  text: string
}

function describe(details: string | null): string {
  if (!details) return ''
  try {
    const value = JSON.parse(details) as Record<string, unknown>
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' · ')
  } catch {
    return details
  }
}

export function activityList(rows: ActivityRow[], filters: ActivityFilters, pageSize: number) {
  const older = rows.length === pageSize ? String(new URLSearchParams({ action: filters.action, actor: filters.actor, q: filters.text, before: String(rows[rows.length - 1]!.id) })) : null
  return html`<div id="activity-list">
${rows.length === 0
  ? html`<p class="empty">Nothing recorded${filters.action || filters.actor || filters.text ? ' that matches' : ' yet'}.</p>`
  : html`<table class="files">
  <thead><tr><th>When</th><th>Who</th><th>Action</th><th>What</th><th>Details</th><th>From</th></tr></thead>
  <tbody>${rows.map(
    (r) => html`<tr>
    <td>${formatDate(r.at)}</td><td>${r.actor}</td><td><code>${r.action}</code></td>
    <td class="name">${r.target ?? ''}</td><td>${describe(r.details)}</td><td>${r.clientAddress ?? ''}</td>
  </tr>`,
  )}</tbody>
</table>`}
${older ? html`<nav class="pager"><a href="/activity?${older}" hx-get="/activity/list?${older}" hx-target="#activity-list" hx-swap="outerHTML">Older →</a></nav>` : ''}
</div>`
}

export function activityPage(args: { rows: ActivityRow[]; filters: ActivityFilters; actions: string[]; pageSize: number }) {
  const f = args.filters
  return layout({
    title: 'Activity',
    signedIn: true,
    body: html`<section class="card">
  <h1>Activity</h1>
  <form method="get" action="/activity" class="inline filters" hx-get="/activity/list" hx-target="#activity-list" hx-swap="outerHTML" hx-trigger="change, input changed delay:300ms from:find input, submit">
    <select name="action" aria-label="Action"><option value="">All actions</option>${args.actions.map((a) => html`<option value="${a}"${a === f.action ? ' selected' : ''}>${a}</option>`)}</select>
    <input name="actor" value="${f.actor}" placeholder="Who (admin, link:…)" aria-label="Who">
    <input type="search" name="q" value="${f.text}" placeholder="Search names and details" aria-label="Search">
    <button>Filter</button>
  </form>
  ${activityList(args.rows, f, args.pageSize)}
</section>`,
  })
}
