import { open } from 'node:fs/promises'

/**
 * Makes what is written to a file durable (`data`: its bytes, fdatasync), or a directory's
 * entries (`all`: fsync), in the thread pool. Whichever descriptor wrote the data, a sync on
 * any descriptor of the same file covers it.
 */
export async function syncPath(path: string, what: 'data' | 'all') {
  const handle = await open(path, 'r')
  try {
    await (what === 'data' ? handle.datasync() : handle.sync())
  } finally {
    await handle.close()
  }
}
