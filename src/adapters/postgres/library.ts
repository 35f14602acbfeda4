import { and, asc, count, desc, eq, inArray, isNotNull, isNull, lt, or, sql, type SQL } from 'drizzle-orm'
import { DomainError } from '../../core/errors.ts'
import { ROOT_FOLDER_ID, type FileRecord, type Folder, type TrashEntry } from '../../core/records.ts'
import { MAX_FOLDER_DEPTH, numberedName } from '../../core/library.ts'
import { folderChoices, pathText } from '../folder-choices.ts'
import type { Library } from '../../ports/metadata.ts'
import { bytewise, isUniqueViolation, likePattern, recordColumns, rows, xactLock, type Q } from './queries.ts'
import { blobs, files, folders, links, uploads } from './schema.ts'

const FOLDER = recordColumns(folders)

/**
 * Changes to the tree of folders and files run one at a time across the cluster (a
 * transaction-level advisory lock), as they do in SQLite: two moves at once cannot make a cycle,
 * nor two renames take one name. They are people's clicks, not the hot path.
 */
const LIBRARY_LOCK = 'dropfold:library'

/** `work` in a transaction holding the library lock; a name another transaction took first is a conflict. */
async function changing<T>(q: Q, work: (tx: Q) => Promise<T>): Promise<T> {
  try {
    return await q.transaction(async (tx) => {
      await xactLock(tx, LIBRARY_LOCK)
      return work(tx)
    })
  } catch (error) {
    if (isUniqueViolation(error)) throw new DomainError('conflict', 'That name is taken here')
    throw error
  }
}

const liveFile = (folderId: number) => and(eq(files.folderId, folderId), isNull(files.deletedAt))
const nameFilter = (filter: string): SQL | undefined => (filter ? sql`${files.name} ilike ${likePattern(filter)}` : undefined)

/** The folder and its ancestors, root first. */
async function folderPath(q: Q, folderId: number): Promise<Folder[]> {
  return rows<Folder>(
    q,
    sql`with recursive chain as (
          select folders.*, 0 as depth from folders where id = ${folderId}
          union all
          select f.*, chain.depth + 1 from folders f join chain on f.id = chain.parent_id
        )
        select ${FOLDER} from chain order by depth desc`,
  )
}

const isInTrash = async (q: Q, folderId: number) => (await folderPath(q, folderId)).some((f) => f.deletedAt !== null)

const allFolderPaths = async (q: Q) =>
  folderChoices(await q.select({ id: folders.id, parentId: folders.parentId, name: folders.name }).from(folders).where(isNull(folders.deletedAt)).orderBy(asc(bytewise(folders.name))))

/** A folder (depth 0) and every folder below it, in the trash or not, with its depth below it. */
const subtreeDepths = (q: Q, id: number) =>
  rows<{ id: number; depth: number }>(
    q,
    sql`with recursive tree(id, depth) as (select ${id}::int, 0 union all select f.id, tree.depth + 1 from folders f join tree on f.parent_id = tree.id)
        select id, depth from tree`,
  )

const heightOf = (subtree: { depth: number }[]) => subtree.reduce((deepest, f) => Math.max(deepest, f.depth), 0)

const findFolder = async (q: Q, id: number) => (await q.select().from(folders).where(eq(folders.id, id)))[0]

async function liveFolder(q: Q, id: number): Promise<Folder> {
  const folder = await findFolder(q, id)
  if (!folder || (await isInTrash(q, id))) throw new DomainError('not-found', `Folder ${id} does not exist`)
  return folder
}

async function liveFileRow(q: Q, id: number): Promise<FileRecord> {
  const [file] = await q.select().from(files).where(and(eq(files.id, id), isNull(files.deletedAt)))
  // A file inside a folder in the trash is in the trash too.
  if (!file || (await isInTrash(q, file.folderId))) throw new DomainError('not-found', `File ${id} does not exist`)
  return file
}

async function folderNameTaken(q: Q, parentId: number, name: string, except?: number) {
  const [row] = await q
    .select({ id: folders.id })
    .from(folders)
    .where(and(eq(folders.parentId, parentId), eq(folders.name, name), isNull(folders.deletedAt)))
  return row !== undefined && row.id !== except
}

async function fileNameTaken(q: Q, folderId: number, name: string, except?: number) {
  const [row] = await q.select({ id: files.id }).from(files).where(and(liveFile(folderId), eq(files.name, name)))
  return row !== undefined && row.id !== except
}

const one = <T>(found: T[]) => found[0]!

export function library(q: Q): Library {
  const folderPathText = async (folderId: number) => pathText((await folderPath(q, folderId)).slice(1).map((f) => f.name))
  return {
    folder: (id) => findFolder(q, id),
    file: async (id) => (await q.select().from(files).where(eq(files.id, id)))[0],
    blobIsReferenced: async (sha256) => (await q.select({ one: sql`1` }).from(blobs).where(eq(blobs.sha256, sha256))).length > 0,
    filePage: async (p) => {
      const column = { name: bytewise(files.name), size: files.sizeBytes, date: files.createdAt }[p.sort]
      const order = p.direction === 'asc' ? asc : desc
      return q
        .select()
        .from(files)
        .where(and(liveFile(p.folderId), nameFilter(p.filter)))
        .orderBy(order(column), order(files.id))
        .limit(p.limit)
        .offset(p.offset)
    },
    countLiveFiles: async (folderId, filter = '') => one(await q.select({ n: count() }).from(files).where(and(liveFile(folderId), nameFilter(filter)))).n,
    liveSubfolders: (parentId) =>
      q
        .select()
        .from(folders)
        .where(and(eq(folders.parentId, parentId), isNull(folders.deletedAt)))
        .orderBy(asc(bytewise(folders.name))),
    folderPath: (folderId) => folderPath(q, folderId),
    folderPathText,
    isInTrash: (folderId) => isInTrash(q, folderId),
    allFolderPaths: () => allFolderPaths(q),
    async folderMoveTargets(id) {
      const folder = await findFolder(q, id)
      if (!folder) return []
      const inside = await subtreeDepths(q, id)
      const height = heightOf(inside)
      const below = new Set(inside.map((f) => f.id))
      return (await allFolderPaths(q)).filter((c) => !below.has(c.id) && c.id !== folder.parentId && c.depth + 1 + height <= MAX_FOLDER_DEPTH)
    },
    createFolder: (parentId, name, now) =>
      changing(q, async (tx) => {
        await liveFolder(tx, parentId)
        const depth = (await folderPath(tx, parentId)).length
        if (depth > MAX_FOLDER_DEPTH) throw new DomainError('invalid', `Folders can be at most ${MAX_FOLDER_DEPTH} levels deep; "${name}" would be at level ${depth}`)
        if (await folderNameTaken(tx, parentId, name)) throw new DomainError('conflict', `A folder named "${name}" already exists here`)
        return one(await tx.insert(folders).values({ parentId, name, createdAt: now }).returning())
      }),
    renameFolder: (id, name) =>
      changing(q, async (tx) => {
        if (id === ROOT_FOLDER_ID) throw new DomainError('invalid', 'The home folder cannot be renamed')
        const folder = await liveFolder(tx, id)
        if (await folderNameTaken(tx, folder.parentId!, name, id)) throw new DomainError('conflict', `A folder named "${name}" already exists here`)
        return one(await tx.update(folders).set({ name }).where(eq(folders.id, id)).returning())
      }),
    moveFolder: (id, targetId) =>
      changing(q, async (tx) => {
        if (id === ROOT_FOLDER_ID) throw new DomainError('invalid', 'The home folder cannot be moved')
        const folder = await liveFolder(tx, id)
        await liveFolder(tx, targetId)
        const targetPath = await folderPath(tx, targetId)
        if (targetPath.some((f) => f.id === id)) throw new DomainError('invalid', `"${folder.name}" cannot be moved into itself or one of its subfolders`)
        // Counting what is inside it in the trash too, which may come back where it was.
        const deepest = targetPath.length + heightOf(await subtreeDepths(tx, id))
        if (deepest > MAX_FOLDER_DEPTH) {
          throw new DomainError('invalid', `Folders can be at most ${MAX_FOLDER_DEPTH} levels deep; moving "${folder.name}" there would put folders at level ${deepest}`)
        }
        if (await folderNameTaken(tx, targetId, folder.name, id)) throw new DomainError('conflict', `A folder named "${folder.name}" already exists there`)
        return one(await tx.update(folders).set({ parentId: targetId }).where(eq(folders.id, id)).returning())
      }),
    trashFolder: (id, now) =>
      changing(q, async (tx) => {
        if (id === ROOT_FOLDER_ID) throw new DomainError('invalid', 'The home folder cannot be deleted')
        await liveFolder(tx, id)
        return one(await tx.update(folders).set({ deletedAt: now }).where(eq(folders.id, id)).returning())
      }),
    renameFile: (id, name) =>
      changing(q, async (tx) => {
        const file = await liveFileRow(tx, id)
        if (await fileNameTaken(tx, file.folderId, name, id)) throw new DomainError('conflict', `A file named "${name}" already exists here`)
        return one(await tx.update(files).set({ name }).where(eq(files.id, id)).returning())
      }),
    moveFiles: (ids, targetId) =>
      changing(q, async (tx) => {
        await liveFolder(tx, targetId)
        const moving: FileRecord[] = []
        for (const id of ids) moving.push(await liveFileRow(tx, id))
        const names = new Set<string>()
        for (const file of moving) {
          if (file.folderId === targetId) continue
          if (names.has(file.name) || (await fileNameTaken(tx, targetId, file.name))) throw new DomainError('conflict', `A file named "${file.name}" already exists there`)
          names.add(file.name)
        }
        const moved: FileRecord[] = []
        for (const file of moving) moved.push(one(await tx.update(files).set({ folderId: targetId }).where(eq(files.id, file.id)).returning()))
        return moved
      }),
    trashFiles: (ids, now) =>
      changing(q, async (tx) => {
        const trashing: FileRecord[] = []
        for (const id of ids) trashing.push(await liveFileRow(tx, id))
        const trashed: FileRecord[] = []
        for (const file of trashing) trashed.push(one(await tx.update(files).set({ deletedAt: now }).where(eq(files.id, file.id)).returning()))
        return trashed
      }),
    async trashEntries() {
      const paths = new Map((await allFolderPaths(q)).map((f) => [f.id, f.path || '/']))
      const where = (folderId: number | null) => (folderId === null ? '' : (paths.get(folderId) ?? '(deleted folder)'))
      const trashedFolders = await q.select().from(folders).where(isNotNull(folders.deletedAt))
      const trashedFiles = await q.select().from(files).where(isNotNull(files.deletedAt))
      const entries: TrashEntry[] = [
        ...trashedFolders.map((f) => ({ kind: 'folder' as const, id: f.id, name: f.name, from: where(f.parentId), sizeBytes: null, deletedAt: f.deletedAt! })),
        ...trashedFiles.map((f) => ({ kind: 'file' as const, id: f.id, name: f.name, from: where(f.folderId), sizeBytes: f.sizeBytes, deletedAt: f.deletedAt! })),
      ]
      return entries.sort((a, b) => b.deletedAt - a.deletedAt)
    },
    restoreFile: (id) =>
      changing(q, async (tx) => {
        const [file] = await tx.select().from(files).where(and(eq(files.id, id), isNotNull(files.deletedAt)))
        if (!file) throw new DomainError('not-found', `File ${id} is not in the trash`)
        const folderId = (await isInTrash(tx, file.folderId)) ? ROOT_FOLDER_ID : file.folderId
        let name = file.name
        for (let n = 1; await fileNameTaken(tx, folderId, name); n++) name = numberedName(file.name, n)
        return one(await tx.update(files).set({ deletedAt: null, folderId, name }).where(eq(files.id, id)).returning())
      }),
    restoreFolder: (id) =>
      changing(q, async (tx) => {
        const [folder] = await tx.select().from(folders).where(and(eq(folders.id, id), isNotNull(folders.deletedAt)))
        if (!folder) throw new DomainError('not-found', `Folder ${id} is not in the trash`)
        const parentId = (await isInTrash(tx, folder.parentId!)) ? ROOT_FOLDER_ID : folder.parentId!
        let name = folder.name
        for (let n = 1; await folderNameTaken(tx, parentId, name); n++) name = `${folder.name} (${n})`
        return one(await tx.update(folders).set({ deletedAt: null, parentId, name }).where(eq(folders.id, id)).returning())
      }),
    purgeTrash: (olderThan = Number.POSITIVE_INFINITY) =>
      changing(q, async (tx) => {
        const cutoff = Number.isFinite(olderThan) ? olderThan : Number.MAX_SAFE_INTEGER
        const trashedFolders = await tx.select({ id: folders.id }).from(folders).where(lt(folders.deletedAt, cutoff))
        const folderIds: number[] = []
        for (const f of trashedFolders) folderIds.push(...(await subtreeDepths(tx, f.id)).map((r) => r.id))
        const purgedFolders = [...new Set(folderIds)]
        const inPurged = purgedFolders.length ? inArray(files.folderId, purgedFolders) : sql`false`
        const doomed = await tx
          .select({ id: files.id, sha256: files.sha256 })
          .from(files)
          .where(or(lt(files.deletedAt, cutoff), inPurged))
        // Uploads still aimed at a purged folder land in the home folder instead. First, as a
        // completion locks its upload before its blob: a purge never holds a blob an upload's completion waits for.
        const rehomedUploads = purgedFolders.length
          ? await tx.update(uploads).set({ folderId: ROOT_FOLDER_ID }).where(inArray(uploads.folderId, purgedFolders)).returning({ id: uploads.id, owner: uploads.owner })
          : []
        const doomedIds = doomed.map((f) => f.id)
        let unusedBlobs: string[] = []
        if (doomedIds.length) {
          await tx.update(uploads).set({ fileId: null }).where(inArray(uploads.fileId, doomedIds))
          await tx.delete(files).where(inArray(files.id, doomedIds))
          // Each blob loses one reference per purged file.
          const perBlob = new Map<string, number>()
          for (const file of doomed) perBlob.set(file.sha256, (perBlob.get(file.sha256) ?? 0) + 1)
          for (const [sha256, n] of perBlob) {
            await tx.update(blobs).set({ refCount: sql`${blobs.refCount} - ${n}` }).where(eq(blobs.sha256, sha256))
          }
          const gone = await tx
            .delete(blobs)
            .where(and(inArray(blobs.sha256, [...perBlob.keys()]), sql`${blobs.refCount} <= 0`))
            .returning({ sha256: blobs.sha256 })
          unusedBlobs = gone.map((b) => b.sha256)
        }
        if (purgedFolders.length) {
          // Links into purged folders have nothing left to share.
          await tx.delete(links).where(inArray(links.folderId, purgedFolders))
          // Children first, so no folder is deleted while another still points at it.
          for (const id of [...purgedFolders].reverse()) await tx.delete(folders).where(eq(folders.id, id))
        }
        return { files: doomed.length, folders: purgedFolders.length, unusedBlobs, rehomedUploads }
      }),
    async storageSummary() {
      const [stored] = await q.select({ bytes: sql<number>`coalesce(sum(${blobs.sizeBytes}), 0)::float8`, n: count() }).from(blobs)
      const [logical] = await q.select({ bytes: sql<number>`coalesce(sum(${files.sizeBytes}), 0)::float8`, n: count() }).from(files)
      return { storedBytes: stored!.bytes, blobCount: stored!.n, logicalBytes: logical!.bytes, fileCount: logical!.n }
    },
    async folderPasswordHash(folderId) {
      const [row] = await rows<{ hash: string }>(
        q,
        sql`with recursive chain(id, parent_id, password_hash, depth) as (
              select id, parent_id, password_hash, 0 from folders where id = ${folderId}
              union all
              select f.id, f.parent_id, f.password_hash, chain.depth + 1 from folders f join chain on f.id = chain.parent_id
            )
            select password_hash as hash from chain where password_hash is not null order by depth limit 1`,
      )
      return row?.hash ?? null
    },
    setFolderPassword: async (folderId, passwordHash) => (await q.update(folders).set({ passwordHash }).where(eq(folders.id, folderId)).returning())[0],
    protectedFolders: () => q.select({ id: folders.id }).from(folders).where(isNotNull(folders.passwordHash)),
  }
}
