/**
 * Start-up, shutdown and crash recovery of the real process:
 * non-loopback refusal, embedded PostgreSQL reuse and kill -9 recovery, concurrent start-up of
 * two replicas on one DATABASE_URL with migrations run once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { migrations } from '../../migrations/index.js';
import { pgMemorySettings } from '../../src/store/pg-tuning.js';
import { createTestDb } from '../helpers/db.js';
import { spawnGateway, startGateway } from '../helpers/gateway-process.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function get(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  const text = await r.text();
  return { status: r.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

test('HOST=0.0.0.0 without authentication exits non-zero with a one-line explanation', async () => {
  const g = spawnGateway({ HOST: '0.0.0.0', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
  const code = await g.exited;
  assert.equal(code, 2);
  const lines = g.output().trim().split('\n');
  assert.equal(lines.length, 1, g.output());
  assert.match(lines[0]!, /HOST.*0\.0\.0\.0.*authentication/);
});

test('embedded PostgreSQL: data kept across restarts, recovery after kill -9, clean SIGTERM shutdown', { timeout: 120_000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-data-'));
  fs.chmodSync(dataDir, 0o755);
  try {
    const first = await startGateway({ DATA_DIR: dataDir });
    assert.equal((await get(`${first.url}/readyz`)).status, 200);
    const meta = await get(`${first.url}/fhir/metadata`);
    assert.equal(meta.status, 200);
    assert.equal(meta.body.fhirVersion, '4.0.1');

    // Leave a marker row, then crash hard: postgres is orphaned and keeps the data dir.
    const pidFile = path.join(dataDir, 'pg/data/postmaster.pid');
    const [pgPid, , , pgPort] = fs.readFileSync(pidFile, 'utf8').split('\n');
    const password = fs.readFileSync(path.join(dataDir, 'pg/password'), 'utf8').trim();
    const c = new pg.Client({ host: '127.0.0.1', port: Number(pgPort), user: 'postgres', password, database: 'postgres' });
    await c.connect();
    // Memory settings sized from this machine (store/pg-tuning.ts): logged at start, in effect.
    const started = first.output().split('\n').filter((l) => l.includes('embedded PostgreSQL started')).map((l) => JSON.parse(l) as { settingsMB?: unknown });
    assert.equal(started.length, 1, first.output());
    const sized = pgMemorySettings(os.totalmem());
    assert.deepEqual(started[0]!.settingsMB, sized);
    const shownMb = (await c.query("SELECT pg_size_bytes(current_setting('shared_buffers'))::bigint / 1048576 AS mb")).rows[0].mb;
    assert.equal(Number(shownMb), sized.shared_buffers);
    await c.query('create table if not exists test_marker (v text)');
    await c.query("insert into test_marker values ('kept')");
    await c.end();
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok(alive(Number(pgPid)), 'postgres is orphaned after kill -9 (the situation to recover from)');

    const second = await startGateway({ DATA_DIR: dataDir });
    assert.equal((await get(`${second.url}/readyz`)).status, 200);
    assert.ok(!alive(Number(pgPid)), 'the orphaned postgres was shut down');
    assert.doesNotMatch(second.output(), /migrations applied/, 'migrations are not re-applied on a kept data dir');
    const [, , , port2] = fs.readFileSync(pidFile, 'utf8').split('\n');
    const c2 = new pg.Client({ host: '127.0.0.1', port: Number(port2), user: 'postgres', password, database: 'postgres' });
    await c2.connect();
    const { rows } = await c2.query('select v from test_marker');
    await c2.end();
    assert.deepEqual(rows, [{ v: 'kept' }], 'data kept across restarts');

    second.proc.kill('SIGTERM');
    assert.equal(await second.exited, 0, 'graceful shutdown exits 0');
    assert.ok(!fs.existsSync(pidFile), 'embedded postgres stopped on SIGTERM');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('two gateways started at the same moment on one DATABASE_URL both come up; migrations ran once', { timeout: 120_000 }, async () => {
  const tdb = await createTestDb({ migrate: false });
  try {
    const a = spawnGateway({ DATABASE_URL: tdb.url });
    const b = spawnGateway({ DATABASE_URL: tdb.url });
    const [ua, ub] = await Promise.all([a.ready, b.ready]);
    assert.equal((await get(`${ua}/readyz`)).status, 200);
    assert.equal((await get(`${ub}/readyz`)).status, 200);
    const rows = await tdb.db('knex_migrations').select('name');
    assert.deepEqual(rows.map((r: { name: string }) => r.name).sort(), Object.keys(migrations).sort(), 'each migration recorded exactly once');
    const appliedBy = [a.output(), b.output()].filter((o) => /migrations applied/.test(o));
    assert.equal(appliedBy.length, 1, 'exactly one replica applied the migrations');
    a.proc.kill('SIGTERM');
    b.proc.kill('SIGTERM');
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0]);
  } finally {
    await tdb.drop();
  }
});
