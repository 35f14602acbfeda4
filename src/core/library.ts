/** Rules of the library (folders and files) that every metadata store applies alike. */

/** How deep folders may be nested: a folder in Home is at level 1. */
export const MAX_FOLDER_DEPTH = 64

const MULTI_EXTENSIONS = /\.tar\.(gz|bz2|xz|zst|lz4)$/i

/** "report.pdf" → "report (1).pdf"; "a.tar.gz" → "a (1).tar.gz"; ".env" → ".env (1)". */
export function numberedName(name: string, n: number): string {
  const multi = MULTI_EXTENSIONS.exec(name)
  const dot = multi ? multi.index : name.lastIndexOf('.')
  if (dot <= 0) return `${name} (${n})`
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`
}
