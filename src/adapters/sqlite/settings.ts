import { eq } from 'drizzle-orm'
import { settings } from './schema.ts'
import type { Db } from './types.ts'

export const getSetting = (db: Db, key: string): string | null => db.select().from(settings).where(eq(settings.key, key)).get()?.value ?? null

export function setSetting(db: Db, key: string, value: string) {
  db.insert(settings).values({ key, value }).onConflictDoUpdate({ target: settings.key, set: { value } }).run()
}

/** Stores `value` unless `key` has one already; returns the value in force. */
export function setSettingIfAbsent(db: Db, key: string, value: string): string {
  db.insert(settings).values({ key, value }).onConflictDoNothing().run()
  return getSetting(db, key)!
}
