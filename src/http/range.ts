export type ByteRange = { start: number; end: number } // end exclusive

/**
 * Reads a Range header for a resource of `size` bytes. Returns null to serve the whole resource
 * (no header, a form we do not serve such as several ranges, or a malformed one, as RFC 9110
 * allows), or 'unsatisfiable' for a 416.
 */
export function parseRange(header: string | null, size: number): ByteRange | null | 'unsatisfiable' {
  if (!header) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size }
  }
  const start = Number(m[1])
  // A last position before the first is malformed (served whole); an open range from the end or past it is not.
  if (m[2] !== '' && Number(m[2]) < start) return null
  if (start >= size) return 'unsatisfiable'
  const last = m[2] === '' ? size - 1 : Number(m[2])
  return { start, end: Math.min(last, size - 1) + 1 }
}
