/**
 * knex factory (the only module, with the rest of src/store, that talks SQL). No global instance:
 * main and the tests create one and pass it in.
 */
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';

// Return int8 (counts) as numbers and timestamps as Date (default); numeric stays string.
pg.types.setTypeParser(20, (v) => Number(v));

export type Db = Knex;

export interface DbOptions {
  url: string;
  poolMax?: number;
  applicationName?: string;
}

export function createDb(o: DbOptions): Db {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: o.url, application_name: o.applicationName ?? 'mado-gateway' },
    pool: { min: 0, max: o.poolMax ?? 20, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: 10_000,
  });
}

/** Pool numbers for the /metrics gauges. */
export function poolStats(db: Db): { used: number; free: number; pendingAcquires: number } {
  const pool = (db.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
  if (!pool) return { used: 0, free: 0, pendingAcquires: 0 };
  return { used: pool.numUsed(), free: pool.numFree(), pendingAcquires: pool.numPendingAcquires() };
}
