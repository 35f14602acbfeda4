import type { Link as LinkRow } from '../../core/records.ts'
import { refusalOf } from '../../http/errors.ts'
import { dropPage, linkGonePage, unlockPage } from '../../../views/drop.ts'
import { htmlResponse } from '../../../views/html.ts'
import type { DropLinkAccess } from './access.ts'

/** GET /d/:token: the link's upload page, its password form, or why it is gone. */
export async function dropLinkPage(access: DropLinkAccess, request: Request, token: string) {
  const { deps, openLiveLink, isUnlocked, folderFiles, visitorCookie } = access
  const { store, config } = deps
  let link: LinkRow
  try {
    link = await openLiveLink(token)
  } catch (error) {
    const gone = refusalOf(error)
    if (gone) return htmlResponse(linkGonePage({ status: gone.status, message: gone.message }), gone.status)
    throw error
  }
  if (!(await isUnlocked(request, link))) return htmlResponse(unlockPage({ label: link.label, token }))
  const page = htmlResponse(
    dropPage({
      link: {
        id: link.id,
        label: link.label,
        maxFileBytes: link.maxFileBytes,
        maxTotalBytes: link.maxTotalBytes,
        maxFiles: link.maxFiles,
        allowedTypes: link.allowedTypes,
        expiresAt: link.expiresAt,
      },
      token,
      usage: await store.links.usage(link.id),
      chunkBytes: config.chunkBytes,
      maxFileBytes: Math.min(config.maxFileBytes, link.maxFileBytes ?? Number.POSITIVE_INFINITY),
      files: link.allowDownload ? await folderFiles(link) : null,
    }),
  )
  for (const [name, value] of Object.entries(visitorCookie(request, token))) page.headers.append(name, value)
  return page
}
