import { readFileSync } from 'node:fs'

/** Clock ticks per second, the unit of the CPU times in /proc. */
export const CLK_TCK = Number(Bun.spawnSync(['getconf', 'CLK_TCK']).stdout.toString().trim()) || 100

/** A process's CPU time so far, in clock ticks: user and kernel (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuTicks(pid: number): { user: number; kernel: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // After the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]), kernel: Number(fields[12]) }
}
