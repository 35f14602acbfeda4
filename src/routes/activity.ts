import { Elysia } from 'elysia'
import type { AppDeps } from '../http/deps.ts'
import { htmlResponse } from '../../views/html.ts'
import { activityList, activityPage, type ActivityFilters } from '../../views/activity.ts'

const PAGE_SIZE = 100

export function activityRoutes(deps: AppDeps) {
  const { store } = deps
  const read = async (query: Record<string, string | undefined>) => {
    const filters: ActivityFilters = {
      action: (query.action ?? '').slice(0, 100),
      actor: (query.actor ?? '').trim().slice(0, 100),
      text: (query.q ?? '').trim().slice(0, 200),
    }
    const before = /^\d{1,15}$/.test(query.before ?? '') ? Number(query.before) : undefined
    const rows = await store.activity.list({ action: filters.action, actor: filters.actor, text: filters.text, beforeId: before, limit: PAGE_SIZE })
    return { filters, rows }
  }
  return new Elysia({ name: 'activity' })
    .get('/activity', async ({ query }) => {
      const { filters, rows } = await read(query)
      return htmlResponse(activityPage({ rows, filters, actions: await store.activity.actions(), pageSize: PAGE_SIZE }))
    })
    .get('/activity/list', async ({ query }) => {
      const { filters, rows } = await read(query)
      return htmlResponse(activityList(rows, filters, PAGE_SIZE))
    })
}
