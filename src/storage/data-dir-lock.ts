import { dlopen, FFIType, read } from 'bun:ffi'
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { StartupError } from '../startup-error.ts'

const LOCK_EX = 2
const LOCK_NB = 4
const LOCK_FILE = 'dropfold.lock'

const LIBC_NAMES = process.platform === 'darwin'
  ? ['/usr/lib/libSystem.B.dylib']
  : ['libc.so.6', 'libc.so', `libc.musl-${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`]

function openLibc() {
  const errno = process.platform === 'darwin' ? '__error' : '__errno_location'
  for (const name of LIBC_NAMES) {
    try {
      return dlopen(name, {
        flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        [errno]: { args: [], returns: FFIType.ptr },
      })
    } catch {}
  }
  throw new StartupError(`Could not load the C library (tried ${LIBC_NAMES.join(', ')}) to lock the data directory`)
}

let libc: ReturnType<typeof openLibc> | undefined

function lastErrno(): number {
  const symbols = libc!.symbols as Record<string, () => number | null>
  const location = (symbols.__errno_location ?? symbols.__error)!()
  return location ? read.i32(location) : 0
}

/** Another server holds the data directory. */
export class DataDirLocked extends StartupError {
  constructor(dataDir: string, holder: string) {
    super(`${dataDir} is in use by another Dropfold server (${holder}); stop it first, or use another DATA_DIR`)
    this.name = 'DataDirLocked'
  }
}

/**
 * Holds an exclusive flock(2) on DATA_DIR/dropfold.lock while the server runs. The kernel
 * releases it when the descriptor closes, including when the process dies (kill -9): a stale
 * lock file is never a reason to refuse a start. Its content (PID, host, start time) only names
 * the holder in the refusal. flock locks belong to an open file, so a second server in the same
 * process is refused too.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  const path = join(dataDir, LOCK_FILE)
  libc ??= openLibc()
  const fd = openSync(path, 'a+')
  if (libc.symbols.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = lastErrno()
    closeSync(fd)
    let holder = 'unknown process'
    try {
      holder = readFileSync(path, 'utf8').trim().replaceAll('\n', ', ') || holder
    } catch {}
    if (errno !== 0 && errno !== 11 && errno !== 35) throw new StartupError(`Could not lock ${path} (errno ${errno})`)
    throw new DataDirLocked(dataDir, holder)
  }
  ftruncateSync(fd, 0)
  writeSync(fd, `pid ${process.pid}\nhost ${hostname()}\nstarted ${new Date().toISOString()}\n`, 0)
  let released = false
  return {
    release() {
      if (released) return
      released = true
      closeSync(fd)
    },
  }
}
