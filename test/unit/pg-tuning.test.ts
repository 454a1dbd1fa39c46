/** Embedded PostgreSQL memory settings sized from the machine's memory (src/store/pg-tuning.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pgMemorySettings, pgSettingArgs } from '../../src/store/pg-tuning.js';

const GiB = 2 ** 30;

test('a 24 GiB machine: a quarter for shared_buffers, half as cache hint, 1/8 WAL, capped maintenance', () => {
  assert.deepEqual(pgMemorySettings(24 * GiB), { shared_buffers: 6144, effective_cache_size: 12288, work_mem: 46, maintenance_work_mem: 1024, max_wal_size: 3072 });
});

test('a small machine never goes below PostgreSQL\'s own defaults', () => {
  assert.deepEqual(pgMemorySettings(256 * 2 ** 20), { shared_buffers: 128, effective_cache_size: 512, work_mem: 4, maintenance_work_mem: 64, max_wal_size: 1024 });
  assert.deepEqual(pgMemorySettings(0), pgMemorySettings(256 * 2 ** 20));
  assert.deepEqual(pgMemorySettings(-1), pgMemorySettings(0));
});

test('a large machine: shared_buffers, work_mem, maintenance_work_mem and max_wal_size are capped', () => {
  const s = pgMemorySettings(512 * GiB);
  assert.equal(s.shared_buffers, 8192);
  assert.equal(s.effective_cache_size, 256 * 1024);
  assert.equal(s.work_mem, 64);
  assert.equal(s.maintenance_work_mem, 1024);
  assert.equal(s.max_wal_size, 16384);
});

test('settings grow with memory and are whole megabytes', () => {
  let prev = pgMemorySettings(0);
  for (let g = 1; g <= 128; g *= 2) {
    const s = pgMemorySettings(g * GiB);
    for (const k of Object.keys(s) as Array<keyof typeof s>) {
      assert.ok(Number.isInteger(s[k]), `${k} at ${g} GiB`);
      assert.ok(s[k] >= prev[k], `${k} shrinks at ${g} GiB`);
    }
    assert.ok(s.shared_buffers <= (g * 1024) / 4 || s.shared_buffers === 128);
    prev = s;
  }
});

test('pg_ctl arguments name every setting in MB', () => {
  assert.deepEqual(pgSettingArgs(pgMemorySettings(4 * GiB)), ['-c shared_buffers=1024MB', '-c effective_cache_size=2048MB', '-c work_mem=8MB', '-c maintenance_work_mem=256MB', '-c max_wal_size=1024MB']);
});
