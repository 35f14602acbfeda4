// `bun bench/compare.ts old-1.md old-2.md -- new-1.md new-2.md`: compares Dropfold's rows of
// `npm run bench` tables from two revisions run alternately in one session (bench/README.md,
// "Comparing two revisions"). Per row: the median over each side's files of the server's
// CPU s/GiB (ms/request for the listing) and of the throughput, and new ÷ old for both (the
// median of the pairs' ratios when the files pair up, old i with new i). CPU is
// the steady figure on a shared machine; a row whose CPU is more than 10% above the old one's
// is marked.

export {}

const MARGIN = 0.1

interface Cells {
  throughput: number
  /** ms rows (the listing): lower is better. */
  lowerIsBetter: boolean
  cpu: number
}

function parse(text: string): Map<string, Cells> {
  const rows = new Map<string, Cells>()
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim())
    // | row | server | throughput | × ceiling | × naive | × tus | × Flask | peak RSS | CPU | check |
    if (cells.length !== 12 || cells[2] !== '**Dropfold**') continue
    const throughput = Number.parseFloat(cells[3]!)
    const cpu = Number.parseFloat(cells[9]!)
    if (!Number.isFinite(throughput)) continue
    rows.set(cells[1]!, { throughput, lowerIsBetter: / ms /.test(` ${cells[3]} `), cpu })
  }
  return rows
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s.length % 2 ? s[s.length >> 1]! : (s[(s.length >> 1) - 1]! + s[s.length >> 1]!) / 2
}
const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '—')

const args = process.argv.slice(2)
const split = args.indexOf('--')
if (split < 1 || split === args.length - 1) {
  console.error('usage: bun bench/compare.ts OLD.md... -- NEW.md...')
  process.exit(2)
}
const read = async (paths: string[]) => Promise.all(paths.map(async (path) => parse(await Bun.file(path).text())))
const olds = await read(args.slice(0, split))
const news = await read(args.slice(split + 1))

// With as many old tables as new ones, old i and new i are a pair (run back to back): the ratio
// is the median of the pairs' ratios, each pair's shown; otherwise the ratio of the medians.
const paired = olds.length === news.length
console.log(`| row | old CPU | new CPU | new ÷ old CPU${paired ? ' (per pair)' : ''} | old throughput | new throughput | new ÷ old throughput${paired ? ' (per pair)' : ''} | within ${MARGIN * 100}% |`)
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
for (const label of new Set([...olds, ...news].flatMap((m) => [...m.keys()]))) {
  const side = (maps: Map<string, Cells>[]) => maps.map((m) => m.get(label)).filter((c): c is Cells => c !== undefined)
  const [o, n] = [side(olds), side(news)]
  if (o.length === 0 || n.length === 0) continue
  const cpu = [median(o.map((c) => c.cpu)), median(n.map((c) => c.cpu))] as const
  const tp = [median(o.map((c) => c.throughput)), median(n.map((c) => c.throughput))] as const
  // Throughput as "how much better": for ms rows old ÷ new, so > 1 is better on every row.
  const better = (oldTp: number, newTp: number) => (o[0]!.lowerIsBetter ? oldTp / newTp : newTp / oldTp)
  const pairs = paired && o.length === olds.length && n.length === news.length ? o.map((old, i) => ({ cpu: n[i]!.cpu / old.cpu, tp: better(old.throughput, n[i]!.throughput) })) : null
  const cpuRatio = pairs ? median(pairs.map((x) => x.cpu)) : cpu[1] / cpu[0]
  const tpRatio = pairs ? median(pairs.map((x) => x.tp)) : better(tp[0], tp[1])
  const each = (xs: number[]) => (pairs ? ` (${xs.map((x) => fmt(x)).join(', ')})` : '')
  const verdict = !Number.isFinite(cpuRatio) ? '—' : cpuRatio <= 1 + MARGIN ? 'yes' : `**no** (CPU +${fmt((cpuRatio - 1) * 100, 0)}%)`
  console.log(
    `| ${label} | ${fmt(cpu[0])} | ${fmt(cpu[1])} | ${fmt(cpuRatio)}×${each(pairs?.map((x) => x.cpu) ?? [])} | ${fmt(tp[0], 1)} | ${fmt(tp[1], 1)} | ${fmt(tpRatio)}×${each(pairs?.map((x) => x.tp) ?? [])} | ${verdict} |`,
  )
}
console.log(`\n${olds.length} old and ${news.length} new tables; CPU and throughput columns: medians per side; ratios: ${paired ? 'median of the pairs (old i, new i)' : 'of the medians'}. CPU: server CPU s/GiB (ms per request for the listing), lower is better; throughput ratio > 1 is better (for the listing, old ms ÷ new ms).`)
