/**
 * Forward-only migrations under a PostgreSQL advisory lock, so any number of replicas starting at
 * the same moment run them exactly once (contract: "migrations take an advisory lock").
 * knex's own lock table would make the losers fail with "Migration table is already locked".
 */
import type { Knex } from 'knex';
import { migrations } from '../../migrations/index.js';

/** Arbitrary constant: pg_advisory_lock key for "mado-gateway migrations". */
const MIGRATION_LOCK_KEY = 0x6d61646f; // 'mado'

const source: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name],
};

export async function migrateLatest(db: Knex): Promise<{ applied: string[] }> {
  // The lock must be held on one session for the whole run: take a dedicated connection.
  const conn = await db.client.acquireConnection();
  try {
    await db.raw('select pg_advisory_lock(?)', [MIGRATION_LOCK_KEY]).connection(conn);
    try {
      const [, applied] = (await db.migrate.latest({ migrationSource: source })) as [number, string[]];
      return { applied };
    } finally {
      await db.raw('select pg_advisory_unlock(?)', [MIGRATION_LOCK_KEY]).connection(conn);
    }
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/** True when every known migration has been applied (for /readyz). */
export async function migrationsComplete(db: Knex): Promise<boolean> {
  const exists = await db.schema.hasTable('knex_migrations');
  if (!exists) return false;
  const rows = (await db('knex_migrations').select('name')) as Array<{ name: string }>;
  const done = new Set(rows.map((r) => r.name));
  return Object.keys(migrations).every((n) => done.has(n));
}
