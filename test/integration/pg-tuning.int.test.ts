/**
 * The embedded PostgreSQL runs with the memory settings sized from the machine (or the memory it
 * is told), as the server reports them (SHOW / current_setting), and the gateway logs them at start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { startEmbeddedPg } from '../../src/store/embedded-pg.js';
import { pgMemorySettings, type PgMemorySettings } from '../../src/store/pg-tuning.js';
import { createTestDb } from '../helpers/db.js';

const NAMES = ['shared_buffers', 'effective_cache_size', 'work_mem', 'maintenance_work_mem', 'max_wal_size'] as const;

/** What the server says each setting is, in MB (SHOW's text through pg_size_bytes). */
async function shown(url: string): Promise<PgMemorySettings> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, number> = {};
    for (const n of NAMES) {
      const shownText = (await c.query(`SHOW ${n}`)).rows[0][n] as string;
      out[n] = Number((await c.query('SELECT pg_size_bytes($1)::bigint AS b', [shownText])).rows[0].b) / 2 ** 20;
    }
    return out as unknown as PgMemorySettings;
  } finally {
    await c.end();
  }
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('a cluster started for 2 GiB of memory reports the sized settings', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-pg-tuning-'));
  dirs.push(base);
  const e = await startEmbeddedPg({ baseDir: base, ephemeral: true, memoryBytes: 2 * 2 ** 30 });
  try {
    const want = pgMemorySettings(2 * 2 ** 30);
    assert.deepEqual(e.settings, want);
    assert.deepEqual(await shown(e.url('postgres')), want);
  } finally {
    await e.stop();
  }
});

test('the test run\'s own embedded cluster is sized from this machine\'s memory', async () => {
  const tdb = await createTestDb({ migrate: false });
  try {
    assert.deepEqual(await shown(tdb.url), pgMemorySettings(os.totalmem()));
  } finally {
    await tdb.drop();
  }
});
