/**
 * kill -9 of the real server process during a large ingest: after a restart, no partial manifest
 * exists — every manifest row has both docrefs, its tokens, its study row and exactly
 * reference_count instance rows (each submission is one transaction).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { incompleteManifests } from '../../src/store/manifests.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startGateway } from '../helpers/gateway-process.js';
import { kos } from './ingest-fixtures.js';

let tdb: TestDb;
before(async () => {
  tdb = await createTestDb();
});
after(async () => tdb.drop());

test('kill -9 mid-ingest leaves no partial manifest; the restarted server keeps ingesting', { timeout: 240_000 }, async () => {
  const env = { DATABASE_URL: tdb.url, PUBLIC_BASE_URL: 'http://gateway.test', LOG_LEVEL: 'warn' };
  const g = await startGateway(env);
  const big = Array.from({ length: 6 }, (_, i) => kos(`crash-big-${i}`, { series: 10, perSeries: 1000 }));
  const small = Array.from({ length: 40 }, (_, i) => kos(`crash-small-${i}`, { series: 3, perSeries: 100 }));
  const all = [...big, ...small];
  const results: Array<number | string> = [];
  const sending = Promise.all(
    all.map(async (k) => {
      try {
        const r = await fetch(`${g.url}/fhir/Binary`, { method: 'POST', headers: { 'Content-Type': 'application/dicom' }, body: new Uint8Array(k.bytes) });
        results.push(r.status);
      } catch {
        results.push('connection lost');
      }
    }),
  );
  // Kill once the first manifests are in, while the rest are in flight.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const n = (await tdb.db.raw('select count(*)::int n from manifest')).rows[0].n;
    if (n >= 2 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  g.proc.kill('SIGKILL');
  await g.exited;
  await sending;
  assert.ok(results.some((r) => r === 'connection lost'), 'some requests were in flight at the kill');
  assert.deepEqual(await incompleteManifests(tdb.db), [], 'no partial manifest after kill -9');
  const before = (await tdb.db.raw('select count(*)::int n from manifest')).rows[0].n;
  assert.ok(before < all.length, 'the kill interrupted the ingest');

  const g2 = await startGateway(env);
  try {
    for (const k of all) {
      const r = await fetch(`${g2.url}/fhir/Binary`, { method: 'POST', headers: { 'Content-Type': 'application/dicom' }, body: new Uint8Array(k.bytes) });
      assert.ok([200, 201].includes(r.status), `re-submission after restart: ${r.status}`);
    }
    const n = (await tdb.db.raw('select count(*)::int n from manifest')).rows[0].n;
    assert.equal(n, all.length);
    assert.deepEqual(await incompleteManifests(tdb.db), []);
    const refs = (await tdb.db.raw('select sum(reference_count)::int n from manifest')).rows[0].n;
    assert.equal(refs, 6 * 10_000 + 40 * 300);
  } finally {
    g2.proc.kill('SIGTERM');
    await g2.exited;
  }
});
