import { expect, test } from 'bun:test'
import { html, raw } from '../../views/html.ts'
import { fileArea } from '../../views/folder.ts'

test('interpolated values are escaped unless marked raw', () => {
  const name = `<img src=x onerror="alert('x')">&`
  expect(html`<td>${name}</td>`.value).toBe('<td>&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;</td>')
  expect(html`<td>${raw('<b>ok</b>')}</td>`.value).toBe('<td><b>ok</b></td>')
  expect(html`${[html`<i>${'<'}</i>`, '>']}`.value).toBe('<i>&lt;</i>&gt;')
})

test('a file list shows hostile file names as text', () => {
  const name = '"><script>alert(1)</script>'
  const file = { id: 1, folderId: 1, name, sizeBytes: 1, sha256: 'a'.repeat(64), mimeType: 'text/plain', uploadId: null, createdAt: 0, deletedAt: null }
  const folder = { id: 2, parentId: 1, name, createdAt: 0, deletedAt: null, passwordHash: null }
  const out = fileArea({
    folder,
    path: [folder],
    subfolders: [folder],
    files: [file],
    total: 1,
    page: 1,
    pageSize: 100,
    sort: 'name',
    direction: 'asc',
    filter: name,
    folderChoices: [{ id: 1, path: '' }, { id: 3, path: `/${name}` }],
  }).value
  expect(out).not.toContain('<script>')
  expect(out).toContain('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
})
