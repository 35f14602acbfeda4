import { ROOT_FOLDER_ID, type FolderChoice } from '../core/records.ts'
import { elidedPath } from '../engine/file-names.ts'

/** Names below Home as one path ("/Projects/2024"); a deep one shows its first and last few names around "…". */
export const pathText = (names: string[]) => '/' + elidedPath(names).map((name) => name ?? '…').join('/')

/**
 * Every live folder with its path, Home first, each folder followed by what is inside it (in the
 * order given: by name), from the live folders read in one query. Built in one pass, each path
 * elided when deep, so what this returns grows with the number of folders, not their depth squared.
 */
export function folderChoices(live: { id: number; parentId: number | null; name: string }[]): FolderChoice[] {
  const children = new Map<number, typeof live>()
  for (const folder of live) {
    if (folder.parentId === null) continue
    const siblings = children.get(folder.parentId)
    if (siblings) siblings.push(folder)
    else children.set(folder.parentId, [folder])
  }
  const choices: FolderChoice[] = []
  const names: string[] = []
  // Depth-first without recursion: a chain made before the depth limit may be thousands deep.
  const stack: { id: number; name: string; depth: number }[] = [{ id: ROOT_FOLDER_ID, name: '', depth: 0 }]
  while (stack.length) {
    const { id, name, depth } = stack.pop()!
    names.length = Math.max(0, depth - 1)
    if (depth > 0) names.push(name)
    choices.push({ id, path: depth === 0 ? '' : pathText(names), depth })
    const inside = children.get(id) ?? []
    for (let i = inside.length - 1; i >= 0; i--) stack.push({ id: inside[i]!.id, name: inside[i]!.name, depth: depth + 1 })
  }
  return choices
}
