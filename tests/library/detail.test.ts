import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { randomData, sha256 } from '../helpers/data.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { dropzoneUpload, makeFolder, post, uploadFile } from './helpers.ts'

let server: TestServer
beforeEach(async () => {
  server = await startTestServer()
})
afterEach(async () => {
  await server.stop()
})

/** The 1×1 transparent PNG. */
const PNG = Uint8Array.from(
  atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII='),
  (c) => c.charCodeAt(0),
)
const SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
const HTML = '<!doctype html><script>fetch("/trash/empty", {method: "POST"})</script><b>bold</b> & "quoted"'

describe('file detail page', () => {
  test('shows size, SHA-256, type, folder and who uploaded it (Dropzone)', async () => {
    const folder = await makeFolder(server, 1, 'Reports')
    const data = randomData(12_345)
    const file = await dropzoneUpload(server, 'data.bin', data, folder)
    const response = await server.fetch(`/files/${file.id}`)
    expect(response.status).toBe(200)
    const page = await response.text()
    expect(page).toContain('<title>data.bin · Dropfold</title>')
    expect(page).toContain('<h1 class="file-name">data.bin</h1>')
    expect(page).toContain('<dt>Size</dt><dd>12 KB (12,345 bytes)</dd>')
    expect(page).toContain('<dt>Type</dt><dd>application/octet-stream</dd>')
    expect(page).toContain(`<dt>SHA-256</dt><dd><code>${sha256(data)}</code></dd>`)
    expect(page).toContain(`<dt>Folder</dt><dd><a href="/folders/${folder}">/Reports</a></dd>`)
    expect(page).toMatch(/<dt>Uploaded<\/dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d UTC by the admin, through the upload page \(Dropzone\), from 127\.0\.0\.1<\/dd>/)
    expect(page).toContain(`<a class="button" href="/files/${file.id}/download" download>Download</a>`)
    expect(page).toContain('<p class="empty">No preview for this type of file.</p>')
    // Move choices leave out the folder it is in.
    expect(page).toContain('<option value="1">/</option>')
    expect(page).not.toContain(`<option value="${folder}">`)
    expect((await server.fetch(`/files/${file.id}/preview`)).status).toBe(404)
  })

  test('a plain form upload is described as such', async () => {
    const file = await uploadFile(server, 'form.bin', randomData(10))
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    expect(page).toContain('by the admin, through a form upload, from 127.0.0.1</dd>')
  })

  test('a .txt file’s content is shown escaped in <pre>', async () => {
    const text = '<script>alert(1)</script>\n& "quotes" \'apos\' Ünïcödé 🎉'
    const file = await dropzoneUpload(server, 'notes.txt', text)
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    expect(page).toContain('<dt>Type</dt><dd>text/plain</dd>')
    expect(page).toContain('<pre>&lt;script&gt;alert(1)&lt;/script&gt;\n&amp; &quot;quotes&quot; &#39;apos&#39; Ünïcödé 🎉</pre>')
    expect(page).not.toContain('<script>alert(1)')
    expect(page).not.toContain('Only the beginning is shown.')
    // Text is never served inline.
    expect((await server.fetch(`/files/${file.id}/preview`)).status).toBe(404)
  })

  test('a long text file shows only its beginning', async () => {
    const text = 'line of text\n'.repeat(30_000)
    const file = await uploadFile(server, 'long.log', text)
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    const shown = /<pre>([\s\S]*?)<\/pre>/.exec(page)![1]!
    expect(shown.length).toBe(256 * 1024)
    expect(page).toContain('<p class="hint">Only the beginning is shown.</p>')
  })

  test('an uploaded .html file: no inline preview (404), its source shown escaped; download is a sandboxed attachment', async () => {
    const file = await dropzoneUpload(server, 'page.html', HTML)
    const preview = await server.fetch(`/files/${file.id}/preview`)
    expect(preview.status).toBe(404)
    expect(await preview.text()).toContain('This file has no preview')
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    expect(page).toContain('<dt>Type</dt><dd>text/html</dd>')
    expect(page).toContain('<pre>&lt;!doctype html&gt;&lt;script&gt;fetch(&quot;/trash/empty&quot;, {method: &quot;POST&quot;})&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;</pre>')
    expect(page).not.toContain('<script>fetch')
    expect(page).not.toContain('<b>bold</b>')
    const download = await server.fetch(`/files/${file.id}/download`)
    expect(download.status).toBe(200)
    expect(download.headers.get('content-disposition')).toStartWith('attachment')
    expect(download.headers.get('content-security-policy')).toBe('sandbox')
    expect(download.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await download.text()).toBe(HTML)
  })

  test('a .png preview is served inline, sandboxed and nosniff; the page embeds it', async () => {
    const file = await dropzoneUpload(server, 'pixel.png', PNG)
    const preview = await server.fetch(`/files/${file.id}/preview`)
    expect(preview.status).toBe(200)
    expect(preview.headers.get('content-type')).toBe('image/png')
    expect(preview.headers.get('content-security-policy')).toBe('sandbox')
    expect(preview.headers.get('x-content-type-options')).toBe('nosniff')
    expect(preview.headers.get('content-disposition')).toStartWith('inline')
    expect(new Uint8Array(await preview.arrayBuffer())).toEqual(PNG)
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    expect(page).toContain(`<img src="/files/${file.id}/preview" alt="pixel.png">`)
  })

  test('an .svg preview (which can carry script) is sandboxed too', async () => {
    const file = await dropzoneUpload(server, 'logo.svg', SVG)
    const preview = await server.fetch(`/files/${file.id}/preview`)
    expect(preview.status).toBe(200)
    expect(preview.headers.get('content-type')).toBe('image/svg+xml')
    expect(preview.headers.get('content-security-policy')).toBe('sandbox')
    expect(preview.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await preview.text()).toBe(SVG)
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    expect(page).toContain(`<img src="/files/${file.id}/preview" alt="logo.svg">`)
    expect(page).not.toContain('<script>alert(document.cookie)')
  })

  test('a PDF preview is inline with a CSP that forbids loading anything; video and audio get players', async () => {
    const pdf = await uploadFile(server, 'doc.pdf', '%PDF-1.4\n%%EOF\n')
    const preview = await server.fetch(`/files/${pdf.id}/preview`)
    expect(preview.status).toBe(200)
    expect(preview.headers.get('content-type')).toBe('application/pdf')
    expect(preview.headers.get('content-security-policy')).toBe("default-src 'none'")
    expect(preview.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await (await server.fetch(`/files/${pdf.id}`)).text()).toContain(`<iframe src="/files/${pdf.id}/preview/doc.pdf" title="doc.pdf"></iframe>`)
    // The name after /preview/ is only for the viewer's title: the same response whatever it says.
    const named = await server.fetch(`/files/${pdf.id}/preview/other%20name.pdf`)
    expect(named.status).toBe(200)
    expect(named.headers.get('content-security-policy')).toBe("default-src 'none'")
    expect(await named.text()).toBe('%PDF-1.4\n%%EOF\n')
    expect((await server.fetch(`/files/${pdf.id}/preview/doc.pdf`, { method: 'HEAD' })).status).toBe(200)
    // Markup, a query or a fragment in the name stay inside one encoded path segment.
    const sly = await uploadFile(server, '<b>x?y#z&.pdf', '%PDF-1.4\n%%EOF\n')
    expect(await (await server.fetch(`/files/${sly.id}`)).text()).toContain(
      `<iframe src="/files/${sly.id}/preview/%3Cb%3Ex%3Fy%23z%26.pdf" title="&lt;b&gt;x?y#z&amp;.pdf"></iframe>`,
    )
    expect((await server.fetch(`/files/${sly.id}/preview/%3Cb%3Ex%3Fy%23z%26.pdf`)).status).toBe(200)
    const video = await uploadFile(server, 'clip.mp4', randomData(100))
    expect(await (await server.fetch(`/files/${video.id}`)).text()).toContain(`<video src="/files/${video.id}/preview" controls`)
    const audio = await uploadFile(server, 'song.mp3', randomData(100))
    expect(await (await server.fetch(`/files/${audio.id}`)).text()).toContain(`<audio src="/files/${audio.id}/preview" controls`)
  })

  test('a file name with markup is escaped on the detail page and in its attributes', async () => {
    const file = await dropzoneUpload(server, '"><img src=x onerror=alert(1)>.png', PNG)
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    const escaped = '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.png'
    expect(page).toContain(`<h1 class="file-name">${escaped}</h1>`)
    expect(page).toContain(`alt="${escaped}"`)
    expect(page).toContain(`<input name="name" value="${escaped}"`)
    expect(page).not.toContain('<img src=x')
  })

  test('files in the trash, in a trashed folder, unknown or non-numeric have no page (404)', async () => {
    const a = await uploadFile(server, 'a.txt', 'a')
    await post(server, `/files/${a.id}/delete`)
    const folder = await makeFolder(server, 1, 'F')
    const b = await uploadFile(server, 'b.txt', 'b', folder)
    await post(server, `/folders/${folder}/delete`)
    for (const path of [`/files/${a.id}`, `/files/${b.id}`, '/files/999', '/files/abc', '/files/999/preview', '/files/abc/preview']) {
      expect((await server.fetch(path)).status).toBe(404)
    }
  })

  test('without a session the page redirects to sign in and the preview is 401', async () => {
    const file = await dropzoneUpload(server, 'pixel.png', PNG)
    const page = await fetch(`${server.url}/files/${file.id}`, { headers: { accept: 'text/html' }, redirect: 'manual' })
    expect(page.status).toBe(303)
    expect(page.headers.get('location')).toBe(`/login?next=${encodeURIComponent(`/files/${file.id}`)}`)
    expect((await fetch(`${server.url}/files/${file.id}/preview`)).status).toBe(401)
  })

  test('the text shown is the stored bytes, also after a rename to another extension', async () => {
    const file = await uploadFile(server, 'config.json', '{"a": "<b>"}')
    const page = await (await server.fetch(`/files/${file.id}`)).text()
    expect(page).toContain('<pre>{&quot;a&quot;: &quot;&lt;b&gt;&quot;}</pre>')
    // The type was fixed at upload; a rename does not make it previewable as something else.
    await post(server, `/files/${file.id}/rename`, { name: 'config.html' })
    const after = await (await server.fetch(`/files/${file.id}`)).text()
    expect(after).toContain('<dt>Type</dt><dd>application/json</dd>')
    expect((await server.fetch(`/files/${file.id}/preview`)).status).toBe(404)
  })
})
