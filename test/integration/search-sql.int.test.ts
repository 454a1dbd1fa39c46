/**
 * The compiled search SQL, judged by what PostgreSQL returns (not by its text): keyset paging with
 * mixed sort directions returns every row once in the requested order, identifier:not excludes
 * exactly what it names, the patient filter keeps exactly its patients whether the list is bound
 * value by value or as one array, and hostile values stay values.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { benchEntryUuid, bulkLoadManifests } from '../helpers/search-bulk-load.js';
import { syntheticManifest } from '../../src/dicom/index.js';
import { manifestToDocumentReferences } from '../../src/fhir/mapping/index.js';
import { parseQueryString } from '../../src/fhir/search/parse.js';
import { planSearch } from '../../src/fhir/search/plan.js';
import { mappingContext } from '../../src/ingest/service.js';
import type { PatientFilter } from '../../src/model/access.js';
import { compileCount, compileSearch, type SqlPlan } from '../../src/store/search-sql.js';

const N = 30; // manifests 0..29, 3 per patient (patient-b0 .. patient-b9), two docrefs each
let t: TestApp;
const O = { strict: false, defaultCount: 20, maxCount: 100 };
const ALL: PatientFilter = { all: true };

before(async () => {
  t = await createTestApp();
  const m = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: 'sqltpl' });
  const d = manifestToDocumentReferences(m, mappingContext(t.config), { status: 'current', nativeFormat: 'kos' });
  await bulkLoadManifests(t.tdb.db, 0, N, 3, { model: m, kosDocRef: d.kos, fhirDocRef: d.fhir, patient: { resourceType: 'Patient' } });
  // Ties in the first sort key (three dates), so the second key and the id decide within a date.
  await t.tdb.db.raw(`UPDATE document_reference SET date = timestamptz '2024-01-01' + make_interval(days => substring(id from '[0-9]+$')::int % 3)`);
});

after(async () => {
  await t?.close();
});

type Row = { id: string; patient_id: string; sort_key: string[] };

async function run(plan: SqlPlan, pf: PatientFilter = ALL): Promise<Row[]> {
  const q = compileSearch(plan, pf);
  return (await t.tdb.db.raw(q.sql, q.bindings as never[])).rows as Row[];
}

const planOf = (qs: string) => planSearch('DocumentReference', parseQueryString(qs), O);

test('keyset paging with -date,creation returns every row once, in (date desc, creation asc, id asc) order', async () => {
  const p = planOf('_sort=-date,creation');
  const all = await run({ table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: 1000 });
  assert.equal(all.length, 2 * N);
  const cols = (await t.tdb.db.raw('SELECT id, date, creation FROM document_reference')).rows as Array<{ id: string; date: Date; creation: Date }>;
  const expected = [...cols].sort((a, b) => b.date.getTime() - a.date.getTime() || a.creation.getTime() - b.creation.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((r) => r.id);
  assert.deepEqual(all.map((r) => r.id), expected);

  const paged: string[] = [];
  let cursor: SqlPlan['cursor'];
  for (let guard = 0; guard < 20; guard++) {
    const page = await run({ table: 'DocumentReference', conds: p.conds, sort: p.sort, cursor, limit: 7 });
    const shown = page.slice(0, 7);
    paged.push(...shown.map((r) => r.id));
    if (page.length <= 7) break;
    const last = shown.at(-1)!;
    cursor = { v: last.sort_key, id: last.id };
  }
  assert.deepEqual(paged, expected);
});

test('identifier:not excludes the manifest named by its UID and the docref named by its entryUUID, nothing else', async () => {
  const uid = `2.25.8${String(5).padStart(9, '0')}`;
  const p = planOf(`identifier:not=${uid},urn:uuid:${benchEntryUuid('kos-docref-b6')}`);
  const rows = await run({ table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: 1000 });
  const ids = new Set(rows.map((r) => r.id));
  for (const gone of ['kos-docref-b5', 'fhir-docref-b5', 'kos-docref-b6']) assert.ok(!ids.has(gone), gone);
  assert.ok(ids.has('fhir-docref-b6'));
  assert.equal(rows.length, 2 * N - 3);
});

test('patient filter: two ids, seventeen ids and none give exactly the permitted rows; status lists likewise', async () => {
  const p = planOf('status=current,superseded');
  const plan = { table: 'DocumentReference' as const, conds: p.conds, sort: p.sort, limit: 1000 };
  const two = await run(plan, { all: false, patientIds: ['patient-b1', 'patient-b2'] });
  assert.deepEqual([...new Set(two.map((r) => r.patient_id))].sort(), ['patient-b1', 'patient-b2']);
  assert.equal(two.length, 2 * 2 * 3);
  const many = [...Array.from({ length: 10 }, (_, i) => `patient-b${i}`), ...Array.from({ length: 7 }, (_, i) => `absent-${i}`)];
  assert.equal((await run(plan, { all: false, patientIds: many })).length, 2 * N);
  assert.equal((await run(plan, { all: false, patientIds: many.slice(0, 9) })).length, 2 * N - 6, 'patient-b9 left out');
  assert.equal((await run(plan, { all: false, patientIds: [] })).length, 0);
  const superseded = planOf('status=superseded');
  assert.equal((await run({ ...plan, conds: superseded.conds })).length, 0);
});

test('hostile values stay values: the query runs, matches nothing, and the count agrees', async () => {
  const p = planOf("patient.identifier=urn:oid:1.2|M1'; drop table document_reference;--&status=current");
  const plan = { table: 'DocumentReference' as const, conds: p.conds, sort: p.sort, limit: 20 };
  assert.equal((await run(plan, { all: false, patientIds: ['patient-b1'] })).length, 0);
  const c = compileCount(plan, ALL);
  assert.equal((await t.tdb.db.raw(c.sql, c.bindings as never[])).rows[0].n, 0);
  assert.equal(Number((await t.tdb.db.raw('SELECT count(*) FROM document_reference')).rows[0].count), 2 * N);
});
