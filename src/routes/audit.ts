import type { Server } from 'bun'
import type { AppDeps } from '../http/deps.ts'
import { clientAddress } from '../http/client-address.ts'

export type Audit = (request: Request, server: Server<unknown> | null, action: string, target: string, details?: Record<string, unknown>) => Promise<void>

/** Records an admin's action in the activity log, with the client's address. */
export function adminAudit(deps: AppDeps): Audit {
  return (request, server, action, target, details) =>
    deps.store.activity.log(deps.clock(), { actor: 'admin', action, target, details, clientAddress: clientAddress(request, server, deps.config.trustProxy) })
}
