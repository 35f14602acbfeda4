import { expect, test } from 'bun:test'
import { html, raw } from '../../views/html.ts'
import { fileList } from '../../views/folder.ts'

test('interpolated values are escaped unless marked raw', () => {
  const name = `<img src=x onerror="alert('x')">&`
  expect(html`<td>${name}</td>`.value).toBe('<td>&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;</td>')
  expect(html`<td>${raw('<b>ok</b>')}</td>`.value).toBe('<td><b>ok</b></td>')
  expect(html`${[html`<i>${'<'}</i>`, '>']}`.value).toBe('<i>&lt;</i>&gt;')
})

test('a file list shows hostile file names as text', () => {
  const file = { id: 1, folderId: 1, name: '"><script>alert(1)</script>', sizeBytes: 1, sha256: 'a'.repeat(64), mimeType: 'text/plain', uploadId: null, createdAt: 0 }
  const out = fileList({ folderId: 1, files: [file], total: 1, page: 1, pageSize: 100 }).value
  expect(out).not.toContain('<script>')
  expect(out).toContain('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
})
