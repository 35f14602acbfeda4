import { PositionalFile } from './positional-file.ts'

/**
 * Makes what is written to a file durable (`data`: its bytes, fdatasync), or a directory's
 * entries (`all`: fsync), in the thread pool. Whichever descriptor wrote the data, a sync on
 * any descriptor of the same file covers it.
 */
export async function syncPath(path: string, what: 'data' | 'all') {
  const file = PositionalFile.open(path, 'r')
  try {
    await (what === 'data' ? file.datasync() : file.sync())
  } finally {
    file.close()
  }
}

/** Makes a directory's entries durable: a new name, a link, a removal. */
export const syncDirectory = (dir: string) => syncPath(dir, 'all')
