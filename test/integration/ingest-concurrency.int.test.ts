/**
 * 50 concurrent submissions over real HTTP for overlapping studies (new versions, identical
 * re-submissions, conflicting bytes, through Binary, STOW-RS and ITI-65): every client gets a
 * definite answer (2xx or 409), exactly one current manifest per study, no duplicate rows.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { incompleteManifests } from '../../src/store/manifests.js';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { conflicting, kos, multipart, nextVersion, provideBundle, type Kos } from './ingest-fixtures.js';

let t: TestApp;
let base: string;
let close: () => void;
before(async () => {
  t = await createTestApp();
  ({ base, close } = await listenTestApp(t));
});
after(async () => {
  close();
  await t.close();
});

test('50 concurrent submissions of overlapping studies', async () => {
  const studies = Array.from({ length: 5 }, (_, i) => kos(`conc-${i}`, { series: 3, perSeries: 20 }));
  const jobs: Array<() => Promise<{ status: number; kind: string }>> = [];
  const send = (k: Kos, i: number) => {
    const how = i % 3;
    if (how === 0) return async () => ({ kind: 'binary', status: (await fetch(`${base}/fhir/Binary`, { method: 'POST', headers: { 'Content-Type': 'application/dicom' }, body: new Uint8Array(k.bytes) })).status });
    if (how === 1) {
      const mp = multipart([{ body: k.bytes }]);
      return async () => {
        const r = await fetch(`${base}/dicomweb/studies`, { method: 'POST', headers: { 'Content-Type': mp.contentType }, body: new Uint8Array(mp.body) });
        return { kind: 'stow', status: r.status };
      };
    }
    return async () => ({ kind: 'iti65', status: (await fetch(`${base}/fhir`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(provideBundle([{ kos: k }])) })).status });
  };
  let i = 0;
  for (const s of studies) {
    const versions = [s, nextVersion(s, 'v2'), nextVersion(s, 'v3'), nextVersion(s, 'v4')];
    for (const v of versions) jobs.push(send(v, i++)); // 4 distinct versions
    for (let d = 0; d < 4; d++) jobs.push(send(versions[d % 2]!, i++)); // 4 identical re-submissions
    jobs.push(send(conflicting(versions[0]!), i++)); // 1 conflicting
    jobs.push(send(conflicting(versions[2]!), i++)); // 1 conflicting
  }
  assert.equal(jobs.length, 50);
  const results = await Promise.all(jobs.map((j) => j()));
  for (const r of results) assert.ok([200, 201, 202, 409].includes(r.status), `definite answer, got ${r.status} (${r.kind})`);
  // 20 distinct manifests; conflicting ones may win the race against their original, so 20 rows total
  const n = (await t.tdb.db.raw('select count(*)::int n from manifest')).rows[0].n;
  assert.equal(n, 20);
  for (const s of studies) {
    const cur = (await t.tdb.db.raw("select count(*)::int n from manifest where study_instance_uid = ? and status = 'current'", [s.model.study.studyInstanceUid])).rows[0].n;
    assert.equal(cur, 1, 'exactly one current manifest per study');
  }
  const dupInst = (await t.tdb.db.raw(`select count(*)::int n from (select m.study_instance_uid, i.sop_instance_uid from imaging_instance i join manifest m on m.id = i.manifest_id
    where m.status = 'current' group by 1, 2 having count(*) > 1) x`)).rows[0].n;
  assert.equal(dupInst, 0, 'no instance indexed twice among current manifests');
  const dupSop = (await t.tdb.db.raw('select count(*)::int n from (select sop_instance_uid from manifest group by 1 having count(*) > 1) x')).rows[0].n;
  assert.equal(dupSop, 0);
  const docrefs = (await t.tdb.db.raw('select count(*)::int n from document_reference')).rows[0].n;
  assert.equal(docrefs, 40);
  assert.deepEqual(await incompleteManifests(t.tdb.db), []);
  // superseded chain: every non-current manifest of a study is superseded
  const bad = (await t.tdb.db.raw("select count(*)::int n from manifest where status not in ('current', 'superseded')")).rows[0].n;
  assert.equal(bad, 0);
});
