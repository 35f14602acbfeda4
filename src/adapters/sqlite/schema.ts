import { sql } from 'drizzle-orm'
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex, type AnySQLiteColumn } from 'drizzle-orm/sqlite-core'

/** Milliseconds since the epoch; every timestamp is stored this way. */
const timestamp = (name: string) => integer(name, { mode: 'number' })

export const folders = sqliteTable(
  'folders',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** Null only for the root folder. */
    parentId: integer('parent_id').references((): AnySQLiteColumn => folders.id),
    name: text('name').notNull(),
    createdAt: timestamp('created_at').notNull(),
    /** Set while the folder is in the trash (with everything inside it). */
    deletedAt: timestamp('deleted_at'),
    /** argon2id hash; visitors must give the password of the nearest protected folder. */
    passwordHash: text('password_hash'),
    /** The name as people sort it: case-folded, digit runs padded (file2 before file10); set by the app. */
    sortName: text('sort_name'),
  },
  (t) => [uniqueIndex('folders_parent_name_live').on(t.parentId, t.name).where(sql`deleted_at is null`)],
)

/** Content-addressed bytes; one row per distinct SHA-256, shared by every file with that content. */
export const blobs = sqliteTable('blobs', {
  sha256: text('sha256').primaryKey(),
  sizeBytes: integer('size_bytes').notNull(),
  refCount: integer('ref_count').notNull(),
  createdAt: timestamp('created_at').notNull(),
})

export const files = sqliteTable(
  'files',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    folderId: integer('folder_id')
      .notNull()
      .references(() => folders.id),
    name: text('name').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    sha256: text('sha256')
      .notNull()
      .references(() => blobs.sha256),
    mimeType: text('mime_type').notNull(),
    uploadId: text('upload_id'),
    createdAt: timestamp('created_at').notNull(),
    /** Set while the file is in the trash. */
    deletedAt: timestamp('deleted_at'),
    /** The name as people sort it: case-folded, digit runs padded (file2 before file10); set by the app. */
    sortName: text('sort_name'),
    /** The drop link whose visitor uploaded this file; null for the admin's uploads. */
    linkId: integer('link_id'),
  },
  (t) => [
    // Names are unique among the live files of a folder; the trash may hold namesakes.
    uniqueIndex('files_folder_name_live').on(t.folderId, t.name).where(sql`deleted_at is null`),
    index('files_folder_created').on(t.folderId, t.createdAt),
    index('files_folder_size').on(t.folderId, t.sizeBytes),
    index('files_folder_sort_name').on(t.folderId, t.sortName),
    index('files_link').on(t.linkId),
    index('files_sha256').on(t.sha256),
    index('files_deleted').on(t.deletedAt),
  ],
)

export const UPLOAD_STATES = ['receiving', 'finalizing', 'complete', 'failed', 'expired', 'cancelled'] as const
export type UploadState = (typeof UPLOAD_STATES)[number]

export const uploads = sqliteTable(
  'uploads',
  {
    /** Server-chosen id; also names the staging file, so it never comes from a client. */
    id: text('id').primaryKey(),
    protocol: text('protocol', { enum: ['dropzone', 'plain', 'tus'] }).notNull(),
    /** Who may touch this upload: "admin" now, a drop link later. */
    owner: text('owner').notNull(),
    /** The client's own id for the upload (Dropzone's dzuuid), unique per owner. */
    clientKey: text('client_key'),
    folderId: integer('folder_id')
      .notNull()
      .references(() => folders.id),
    fileName: text('file_name').notNull(),
    mimeType: text('mime_type').notNull(),
    totalBytes: integer('total_bytes').notNull(),
    chunkBytes: integer('chunk_bytes').notNull(),
    chunkCount: integer('chunk_count').notNull(),
    /** Streamed uploads (tus) may start before their length is known. */
    lengthDeferred: integer('length_deferred', { mode: 'boolean' }).notNull().default(false),
    /** tus concatenation: a partial upload, or the final upload assembled from partials. */
    concat: text('concat', { enum: ['partial', 'final'] }),
    /** For a final upload: the ids of its partial uploads, in order (JSON array). */
    partIds: text('part_ids'),
    /** The client's metadata as sent (tus Upload-Metadata), echoed back on request. */
    metadata: text('metadata'),
    receivedChunks: integer('received_chunks').notNull().default(0),
    receivedBytes: integer('received_bytes').notNull().default(0),
    state: text('state', { enum: UPLOAD_STATES }).notNull(),
    /** Set once the content hash is known, before the bytes move into the blob store. */
    sha256: text('sha256'),
    fileId: integer('file_id').references(() => files.id),
    error: text('error'),
    clientAddress: text('client_address'),
    createdAt: timestamp('created_at').notNull(),
    updatedAt: timestamp('updated_at').notNull(),
    completedAt: timestamp('completed_at'),
    /** The engine instance running this upload's finalisation, while it runs (a lease). */
    leaseOwner: text('lease_owner'),
    /** When that lease lapses unless renewed: after it, another instance may take over. */
    leaseExpiresAt: timestamp('lease_expires_at'),
  },
  (t) => [
    uniqueIndex('uploads_owner_client_key').on(t.owner, t.clientKey),
    index('uploads_owner_state').on(t.owner, t.state),
    index('uploads_state_updated').on(t.state, t.updatedAt),
  ],
)

/** One row per chunk whose bytes are durable in the staging file. */
export const uploadChunks = sqliteTable(
  'upload_chunks',
  {
    uploadId: text('upload_id')
      .notNull()
      .references(() => uploads.id, { onDelete: 'cascade' }),
    chunkIndex: integer('chunk_index').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    receivedAt: timestamp('received_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.uploadId, t.chunkIndex] })],
)

/** Shared drop links: outsiders upload into a folder (and maybe see it) without an account. */
export const links = sqliteTable(
  'links',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** SHA-256 of the secret in the URL (/d/<token>); the token itself is shown once, at creation, and never stored. */
    tokenHash: text('token_hash').notNull(),
    /** The token's last characters: enough for the admin to tell links apart, far too few to guess it. */
    tokenHint: text('token_hint').notNull().default(''),
    folderId: integer('folder_id')
      .notNull()
      .references(() => folders.id),
    label: text('label').notNull(),
    /** argon2id hash; replaces the folder's password for this link. */
    passwordHash: text('password_hash'),
    expiresAt: timestamp('expires_at'),
    maxFileBytes: integer('max_file_bytes'),
    maxTotalBytes: integer('max_total_bytes'),
    maxFiles: integer('max_files'),
    /** Comma-separated extensions (.jpg) and media types (image/*); empty: anything. */
    allowedTypes: text('allowed_types'),
    allowDownload: integer('allow_download', { mode: 'boolean' }).notNull().default(false),
    /** Visitors who may see the folder see all of it (true) or only the files this link received (false). */
    showWholeFolder: integer('show_whole_folder', { mode: 'boolean' }).notNull().default(false),
    /** The limits as the admin typed them ("5M", "7 days"), JSON, to show them back the same way. */
    enteredLimits: text('entered_limits'),
    disabled: integer('disabled', { mode: 'boolean' }).notNull().default(false),
    createdAt: timestamp('created_at').notNull(),
  },
  (t) => [uniqueIndex('links_token_hash').on(t.tokenHash), index('links_folder').on(t.folderId)],
)

/** Who did what, when: every management action and every sign-in attempt. */
export const activity = sqliteTable(
  'activity',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: timestamp('at').notNull(),
    /** "admin", "link:<id>", or "anonymous" for failed sign-ins. */
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    /** What it was done to, for people: a path, a file name, a link label. */
    target: text('target'),
    details: text('details'),
    clientAddress: text('client_address'),
  },
  (t) => [index('activity_at').on(t.at), index('activity_action_at').on(t.action, t.at)],
)

export const sessions = sqliteTable('sessions', {
  /** SHA-256 of the cookie value: a stolen database does not yield live sessions. */
  idHash: text('id_hash').primaryKey(),
  createdAt: timestamp('created_at').notNull(),
  expiresAt: timestamp('expires_at').notNull(),
  clientAddress: text('client_address'),
})

/** Password attempts per key (a client, a client on a link, a link): failures and the wait they earned. */
export const attempts = sqliteTable(
  'attempts',
  {
    key: text('key').primaryKey(),
    failures: integer('failures').notNull(),
    blockedUntil: timestamp('blocked_until').notNull(),
    lastAt: timestamp('last_at').notNull(),
  },
  (t) => [index('attempts_last_at').on(t.lastAt)],
)

export const settings = sqliteTable('settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
})

export const ROOT_FOLDER_ID = 1
