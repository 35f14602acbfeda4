import { describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'

/**
 * The shape of the code, read from its own import lines: no import cycles, lower layers never
 * import upward, views take plain data. Every `.ts` file under `src/` and `views/` is read;
 * `import … from`, `export … from`, `import '…'` and `import('…')` count, type-only ones too
 * (a type import is still a dependency a reader must follow).
 */

const ROOT = resolve(import.meta.dir, '../..')

interface Arrow {
  from: string
  to: string
  line: number
  /** What `from` takes from `to`: `type X` for type-only, `*` for a namespace, `default`. */
  names: string[]
  typeOnly: boolean
}

const CLAUSE = String.raw`(?:[\w$]+\s*,\s*)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?|[\w$]+)`
const STATIC = new RegExp(String.raw`^[ \t]*(import|export)\s+(type\s+)?(${CLAUSE})\s*from\s*['"]([^'"]+)['"]`, 'gm')
const BARE = /^[ \t]*import\s*['"]([^'"]+)['"]/gm
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g

function tsFiles(root: string, dir: string): string[] {
  const full = join(root, dir)
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && statSync(join(full, name)).isFile())
    .map((name) => join(dir, name).split(sep).join('/'))
    .sort()
}

function namesOf(clause: string, typeOnly: boolean): string[] {
  const names: string[] = []
  const braces = /\{([^}]*)\}/.exec(clause)
  const outside = clause.replace(/\{[^}]*\}/, '').replace(/,/g, ' ').trim()
  if (outside.startsWith('*')) names.push('*')
  else if (outside) names.push('default')
  for (const entry of braces?.[1]?.split(',') ?? []) {
    const name = entry.trim().replace(/\s+as\s+[\w$]+$/, '')
    if (name) names.push(name.replace(/\s+/g, ' '))
  }
  return typeOnly ? names.map((n) => (n.startsWith('type ') ? n : `type ${n}`)) : names
}

/** Every arrow between the files under `dirs` (relative to `root`); imports of packages are not arrows. */
function readImports(root: string, dirs: string[]): { files: string[]; arrows: Arrow[]; unresolved: string[] } {
  const files = dirs.flatMap((dir) => tsFiles(root, dir))
  const known = new Set(files)
  const arrows: Arrow[] = []
  const unresolved: string[] = []
  for (const from of files) {
    const text = readFileSync(join(root, from), 'utf8')
    const lineAt = (index: number) => text.slice(0, index).split('\n').length
    const add = (specifier: string, index: number, names: string[], typeOnly: boolean) => {
      if (!specifier.startsWith('.')) return
      const base = relative(root, resolve(root, dirname(from), specifier)).split(sep).join('/')
      const to = [base, `${base}.ts`, `${base}/index.ts`].find((candidate) => known.has(candidate))
      if (to) arrows.push({ from, to, line: lineAt(index), names, typeOnly })
      else unresolved.push(`${from}:${lineAt(index)} imports '${specifier}', which is no .ts file under ${dirs.join(' or ')}`)
    }
    for (const m of text.matchAll(STATIC)) {
      const typeOnly = m[2] !== undefined
      const names = namesOf(m[3]!, typeOnly)
      add(m[4]!, m.index, names, names.length > 0 && names.every((n) => n.startsWith('type ')))
    }
    for (const m of text.matchAll(BARE)) add(m[1]!, m.index, ['(runs it)'], false)
    for (const m of text.matchAll(DYNAMIC)) add(m[1]!, m.index, ['import()'], false)
  }
  return { files, arrows, unresolved }
}

/** The packages a file imports (bare specifiers: `bun:sqlite`, `drizzle-orm/…`), with the line of each. */
function packagesOf(root: string, file: string): { name: string; line: number }[] {
  const text = readFileSync(join(root, file), 'utf8')
  const found: { name: string; line: number }[] = []
  for (const pattern of [STATIC, BARE, DYNAMIC]) {
    for (const m of text.matchAll(pattern)) {
      const specifier = pattern === STATIC ? m[4]! : m[1]!
      if (!specifier.startsWith('.')) found.push({ name: specifier, line: text.slice(0, m.index).split('\n').length })
    }
  }
  return found
}

/** Files under `from`, and every file they import directly or through others, that import one of `packages`. */
function usesPackages(root: string, arrows: Arrow[], files: string[], from: string[], packages: RegExp): string[] {
  const seen = new Set(files.filter((f) => from.some((p) => f.startsWith(p))))
  const queue = [...seen]
  while (queue.length > 0) {
    const file = queue.shift()!
    for (const arrow of arrows) {
      if (arrow.from === file && !seen.has(arrow.to)) {
        seen.add(arrow.to)
        queue.push(arrow.to)
      }
    }
  }
  return [...seen].sort().flatMap((file) => packagesOf(root, file).filter((p) => packages.test(p.name)).map((p) => `${file}:${p.line} imports ${p.name}`))
}

const describeArrow = (a: Arrow) => `${a.from}:${a.line} → ${a.to} (${a.names.join(', ')})`

/** Each import cycle, spelled out arrow by arrow (the shortest loop through each tangle). */
function findCycles(files: string[], arrows: Arrow[]): string[] {
  const out = new Map<string, Arrow[]>(files.map((f) => [f, []]))
  for (const a of arrows) out.get(a.from)!.push(a)

  // Tarjan's strongly connected components: a cycle exists exactly where one has two files or a self-import.
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const visit = (file: string) => {
    index.set(file, index.size)
    low.set(file, index.get(file)!)
    stack.push(file)
    onStack.add(file)
    for (const { to } of out.get(file)!) {
      if (!index.has(to)) {
        visit(to)
        low.set(file, Math.min(low.get(file)!, low.get(to)!))
      } else if (onStack.has(to)) low.set(file, Math.min(low.get(file)!, index.get(to)!))
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== file)
      components.push(component)
    }
  }
  for (const file of files) if (!index.has(file)) visit(file)

  return components
    .filter((c) => c.length > 1 || out.get(c[0]!)!.some((a) => a.to === c[0]))
    .map((component) => {
      const inside = new Set(component)
      const start = component.sort()[0]!
      // Breadth-first from `start` back to it, staying inside the tangle: the shortest loop.
      const cameBy = new Map<string, Arrow>()
      const queue = [start]
      let closing: Arrow | undefined
      while (queue.length > 0 && !closing) {
        for (const arrow of out.get(queue.shift()!)!) {
          if (!inside.has(arrow.to)) continue
          if (arrow.to === start) {
            closing = arrow
            break
          }
          if (!cameBy.has(arrow.to)) {
            cameBy.set(arrow.to, arrow)
            queue.push(arrow.to)
          }
        }
      }
      const loop = [closing!]
      while (loop[0]!.from !== start) loop.unshift(cameBy.get(loop[0]!.from)!)
      const others = component.length > loop.length ? ` (the tangle holds ${component.length} files: ${component.join(', ')})` : ''
      return `import cycle${others}:\n  ${loop.map(describeArrow).join('\n  ')}`
    })
}

/** Files under `from` that import, directly or through other files, one under `to`, with the path. */
function reaches(arrows: Arrow[], from: string[], to: string[]): string[] {
  const under = (file: string, places: string[]) => places.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p))
  const out = new Map<string, Arrow[]>()
  for (const a of arrows) out.set(a.from, [...(out.get(a.from) ?? []), a])
  const found: string[] = []
  for (const start of new Set(arrows.map((a) => a.from))) {
    if (!under(start, from)) continue
    const cameBy = new Map<string, Arrow>()
    const queue = [start]
    while (queue.length > 0) {
      for (const arrow of out.get(queue.shift()!) ?? []) {
        if (arrow.to === start || cameBy.has(arrow.to)) continue
        cameBy.set(arrow.to, arrow)
        if (!under(arrow.to, to)) {
          queue.push(arrow.to)
          continue
        }
        const path = [arrow]
        while (path[0]!.from !== start) path.unshift(cameBy.get(path[0]!.from)!)
        found.push(`${start} reaches ${arrow.to}:\n  ${path.map(describeArrow).join('\n  ')}`)
      }
    }
  }
  return found
}

/**
 * What views may take from `src/`: plain types and pure helpers, nothing else. No database row
 * type (`typeof table.$inferSelect`): each view declares the plain data it shows, next to it.
 */
const VIEWS_MAY_TAKE: Record<string, string[]> = {
  'src/core/records.ts': ['type FileSort', 'type SortDirection', 'type TrashEntry', 'type LinkUsage'],
  'src/engine/file-names.ts': ['elidedPath'],
  'src/auth/link-passwords.ts': ['LINK_PASSWORD_MIN_LENGTH', 'LINK_PASSWORD_RULE'],
}

function viewImportsBeyond(arrows: Arrow[], allowed: Record<string, string[]>): string[] {
  return arrows
    .filter((a) => a.from.startsWith('views/') && !a.to.startsWith('views/'))
    .flatMap((a) =>
      a.names
        .filter((name) => !allowed[a.to]?.includes(name))
        .map((name) => `${a.from}:${a.line} takes ${name} from ${a.to}`),
    )
}

const LOWER = ['src/core/', 'src/ports/', 'src/adapters/', 'src/storage/', 'src/engine/', 'src/platform/']
const UPPER = ['src/http/', 'src/routes/', 'src/protocols/', 'src/app.ts', 'src/server.ts', 'src/main.ts']

/** What only the database adapters may import. */
const DATABASE_PACKAGES = /^(bun:sqlite|drizzle-orm|drizzle-kit|postgres|pg)(\/|$)/

describe('the import structure', () => {
  const { files, arrows, unresolved } = readImports(ROOT, ['src', 'views'])
  const has = (from: string, to: string, name: string) =>
    arrows.some((a) => a.from === from && a.to === to && a.names.includes(name))

  test('the reader sees every import a reader sees, type-only ones too, and every relative import names a file', () => {
    expect(files).toContain('src/app.ts')
    expect(files).toContain('views/layout.ts')
    expect(has('src/app.ts', 'src/routes/drop.ts', 'dropRoutes')).toBe(true)
    expect(has('src/routes/drop.ts', 'src/http/deps.ts', 'type AppDeps')).toBe(true)
    expect(has('src/adapters/sqlite/open.ts', 'src/adapters/sqlite/schema.ts', '*')).toBe(true)
    expect(has('views/trash.ts', 'src/core/records.ts', 'type TrashEntry')).toBe(true)
    expect(unresolved).toEqual([])
  })

  test('has no import cycle', () => {
    expect(findCycles(files, arrows).join('\n\n')).toBe('')
  })

  test('src/core, src/ports, src/adapters, src/storage, src/engine and src/platform never import from the HTTP layer, directly or through others', () => {
    expect(reaches(arrows, LOWER, UPPER).join('\n\n')).toBe('')
  })

  test('ports, the core and the engine never import an adapter: adapters are chosen in server.ts', () => {
    expect(files.some((f) => f.startsWith('src/adapters/'))).toBe(true)
    expect(reaches(arrows, ['src/ports/', 'src/core/', 'src/engine/'], ['src/adapters/']).join('\n\n')).toBe('')
  })

  test('the core, the ports and the engine use no database driver or ORM, directly or through the files they import', () => {
    expect(usesPackages(ROOT, arrows, files, ['src/core/', 'src/ports/', 'src/engine/'], DATABASE_PACKAGES).join('\n')).toBe('')
  })

  test('the SQLite adapter and the local-disk storage never import each other: what both need (file handles, group sync) is in src/platform', () => {
    expect(reaches(arrows, ['src/adapters/sqlite/'], ['src/storage/', 'src/adapters/local-disk/']).join('\n\n')).toBe('')
    expect(reaches(arrows, ['src/storage/', 'src/adapters/local-disk/'], ['src/adapters/sqlite/']).join('\n\n')).toBe('')
  })

  test('views take from src/ only plain types and pure helpers, never a database row type or a domain record: each view declares the plain data it shows', () => {
    expect(viewImportsBeyond(arrows, VIEWS_MAY_TAKE).join('\n')).toBe('')
  })
})

describe('the checks themselves', () => {
  /** A throwaway tree of files, so each check is seen to catch what it is for. */
  function tree(files: Record<string, string>) {
    const root = mkdtempSync(join(tmpdir(), 'dropfold-imports-'))
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true })
      writeFileSync(join(root, path), text)
    }
    return { root, [Symbol.dispose]: () => rmSync(root, { recursive: true, force: true }) }
  }

  test('a cycle is spelled out arrow by arrow, whether its imports are type-only, multi-line or re-exports', () => {
    using t = tree({
      'src/a.ts': "import type { B } from './b.ts'\nexport const a = 1\n",
      'src/b.ts': "import {\n  c,\n  type C,\n} from './c'\nexport type B = number\n",
      'src/c.ts': "export * from './a.ts'\nexport const c = 1\nexport type C = string\n",
      'src/d.ts': "import { a } from './a.ts'\n",
    })
    const { files, arrows, unresolved } = readImports(t.root, ['src'])
    expect(unresolved).toEqual([])
    expect(findCycles(files, arrows)).toEqual([
      'import cycle:\n' +
        '  src/a.ts:1 → src/b.ts (type B)\n' +
        '  src/b.ts:1 → src/c.ts (c, type C)\n' +
        '  src/c.ts:1 → src/a.ts (*)',
    ])
  })

  test('a database package reached from the engine through another file is caught', () => {
    using t = tree({
      'src/engine/e.ts': "import { m } from '../middle.ts'\n",
      'src/middle.ts': "import { Database } from 'bun:sqlite'\nimport { eq } from 'drizzle-orm'\nexport const m = 1\n",
      'src/core/c.ts': "import type { SQL } from 'drizzle-orm/sql'\n",
      'src/other.ts': "import { Database } from 'bun:sqlite'\n",
    })
    const { files, arrows } = readImports(t.root, ['src'])
    expect(usesPackages(t.root, arrows, files, ['src/core/', 'src/engine/'], DATABASE_PACKAGES)).toEqual([
      'src/core/c.ts:1 imports drizzle-orm/sql',
      'src/middle.ts:1 imports bun:sqlite',
      'src/middle.ts:2 imports drizzle-orm',
    ])
  })

  test('a lower layer reaching the HTTP layer through another file is caught with its path', () => {
    using t = tree({
      'src/engine/e.ts': "import { m } from '../middle.ts'\n",
      'src/middle.ts': "import type { Deps } from './http/deps.ts'\nexport const m = 1\n",
      'src/http/deps.ts': 'export type Deps = {}\n',
    })
    const { arrows } = readImports(t.root, ['src'])
    expect(reaches(arrows, LOWER, UPPER)).toEqual([
      'src/engine/e.ts reaches src/http/deps.ts:\n' +
        '  src/engine/e.ts:1 → src/middle.ts (m)\n' +
        '  src/middle.ts:1 → src/http/deps.ts (type Deps)',
    ])
  })

  test('a view taking a database row type, a value, or a type not listed, from src/ is caught', () => {
    using t = tree({
      'views/v.ts': "import { type FileRow, listFiles } from '../src/adapters/sqlite/files.ts'\nimport type { Db } from '../src/adapters/sqlite/types.ts'\n",
      'src/adapters/sqlite/files.ts': 'export type FileRow = {}\nexport const listFiles = 1\n',
      'src/adapters/sqlite/types.ts': 'export type Db = {}\n',
    })
    const { arrows } = readImports(t.root, ['src', 'views'])
    expect(viewImportsBeyond(arrows, VIEWS_MAY_TAKE)).toEqual([
      'views/v.ts:1 takes type FileRow from src/adapters/sqlite/files.ts',
      'views/v.ts:1 takes listFiles from src/adapters/sqlite/files.ts',
      'views/v.ts:2 takes type Db from src/adapters/sqlite/types.ts',
    ])
  })
})
