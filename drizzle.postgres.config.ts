import { defineConfig } from 'drizzle-kit'

/** PostgreSQL's migrations, generated from its own schema into their own folder (`npm run db:generate:postgres`). */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/adapters/postgres/schema.ts',
  out: './drizzle/postgres',
})
