/**
 * Per-file test database on the run's embedded PostgreSQL (TEST_DATABASE_URL, set by
 * scripts/run-tests.ts). Run alone (`node --import tsx --test file`), a file starts its own cluster.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createDb, type Db } from '../../src/store/db.js';
import { startEmbeddedPg, type EmbeddedPg } from '../../src/store/embedded-pg.js';
import { migrateLatest } from '../../src/store/migrate.js';

let own: Promise<EmbeddedPg> | undefined;

async function adminUrl(): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
  own ??= (async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-test-pg-'));
    fs.chmodSync(base, 0o755);
    const e = await startEmbeddedPg({ baseDir: base, ephemeral: true });
    process.once('exit', () => {
      try {
        // synchronous best effort: pg_ctl stop is async; the temp cluster dies with the fast kill below
        fs.rmSync(base, { recursive: true, force: true });
      } catch {
        /* ignore */
      }
    });
    return e;
  })();
  return (await own).url('postgres');
}

export interface TestDb {
  db: Db;
  url: string;
  name: string;
  drop: () => Promise<void>;
}

/** A fresh, migrated database for one test file. */
export async function createTestDb(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const admin = await adminUrl();
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const url = u.toString();
  const db = createDb({ url, poolMax: 10 });
  if (opts.migrate !== false) await migrateLatest(db);
  return {
    db,
    url,
    name,
    drop: async () => {
      await db.destroy();
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
      if (own) await (await own).stop();
    },
  };
}
