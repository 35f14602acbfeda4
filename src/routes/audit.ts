import type { Server } from 'bun'
import type { AppDeps } from '../http/deps.ts'
import { logActivity } from '../db/activity.ts'
import { clientAddress } from '../http/client-address.ts'

export type Audit = (request: Request, server: Server<unknown> | null, action: string, target: string, details?: Record<string, unknown>) => void

/** Records an admin's action in the activity log, with the client's address. */
export function adminAudit(deps: AppDeps): Audit {
  return (request, server, action, target, details) =>
    logActivity(deps.db, deps.clock(), { actor: 'admin', action, target, details, clientAddress: clientAddress(request, server, deps.config.trustProxy) })
}
