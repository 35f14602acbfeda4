import type { Admission } from '../core/records.ts'

/**
 * Who is uploading, as a protocol adapter's `authorize` hook decides it: the admin (uploads go
 * where the client says) or a drop link (uploads go into its folder, within its limits).
 */
export interface UploadPrincipal {
  /** Uploads are keyed and listed by this: "admin" or "link:<id>". */
  owner: string
  /** When set, uploads always land here, whatever the client asks for. */
  folderId?: number
  /** Checked atomically with the creation of every new upload. */
  admit?: Admission
  /** Drop links need the size of a multipart upload up front (a Content-Length), and of each PATCH of a deferred tus upload. */
  sizeUpFront?: boolean
  /**
   * Keeps clients' own upload ids (Dropzone's dzuuid) apart: visitors of one drop link must not
   * reach each other's uploads by guessing an id.
   */
  clientKeyScope?: string
  /** Where this client may download a stored file, or null if it may not (default: the admin URL). */
  fileUrl?: (fileId: number) => string | null
}
