import { html, type SafeHtml } from './html.ts'

export function layout(args: { title: string; body: SafeHtml; signedIn: boolean; scripts?: string[] }): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${args.title} · Dropfold</title>
<link rel="stylesheet" href="/assets/vendor/dropzone.css">
<link rel="stylesheet" href="/assets/app.css">
<link rel="stylesheet" href="/assets/uploader.css">
<script src="/assets/vendor/htmx.min.js" defer></script>
<script src="/assets/app.js" defer></script>
${(args.scripts ?? []).map((src) => html`<script src="${src}" defer></script>`)}
</head>
<body>
<header class="top">
  <a class="brand" href="/">Dropfold</a>
  ${args.signedIn
    ? html`<nav class="main-nav">
    <a href="/">Files</a><a href="/links">Drop links</a><a href="/uploads">Uploads</a><a href="/trash">Trash</a><a href="/activity">Activity</a><a href="/account">Account</a>
    <form method="post" action="/logout"><button class="link">Sign out</button></form>
  </nav>`
    : ''}
</header>
<main>${args.body}</main>
</body>
</html>`
}
