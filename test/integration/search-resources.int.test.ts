/**
 * ImagingStudy, Patient, Endpoint and List (ITI-66) search/read; authorisation inside the SQL;
 * keyset paging under concurrent inserts; EXPLAIN of the benchmarked queries uses the indexes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import express from 'express';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { ingestFhir, ingestKos, makeManifest } from '../helpers/query-data.js';
import { IngestService, type IngestResult } from '../../src/ingest/service.js';
import { createFhirRouter } from '../../src/fhir/routes.js';
import { queryModules } from '../../src/fhir/resources/index.js';
import { errorHandler } from '../../src/http/errors.js';
import { createLogger } from '../../src/log.js';
import type { PatientFilter, Principal } from '../../src/auth/principal.js';
import { insertSubmissionSet, runInTransaction } from '../../src/store/manifests.js';
import { kos as kosFixture, provideBundle } from './ingest-fixtures.js';
import { type SearchTable } from '../../src/store/search-sql.js';
import { explainSearch, searchPlanCacheUse } from '../helpers/search-explain.js';
import { planSearch } from '../../src/fhir/search/plan.js';
import { parseQueryString } from '../../src/fhir/search/parse.js';
import { analyzeSearchTables, benchEntryUuid, benchStudyUid, bulkLoadManifests, BENCH_ISSUER } from '../helpers/search-bulk-load.js';
import { syntheticManifest } from '../../src/dicom/index.js';
import { manifestToDocumentReferences } from '../../src/fhir/mapping/index.js';
import { mappingContext } from '../../src/ingest/service.js';

let t: TestApp;
const ISS = 'urn:oid:1.2.3.4.5.6.7';
let A: IngestResult, B: IngestResult, C: IngestResult, X: IngestResult;

before(async () => {
  t = await createTestApp();
  A = await ingestKos(t, makeManifest({ seed: 'IA', patientId: 'Q1', studyDate: '20240115', studyTime: '101010', modality: 'CT' }));
  B = await ingestFhir(t, makeManifest({ seed: 'IB', patientId: 'Q1', studyDate: '20230601', studyTime: '080000', modality: 'MR' }));
  C = await ingestKos(t, makeManifest({ seed: 'IC', patientId: 'Q2', studyDate: '20220101', studyTime: '080000', modality: 'US' }));
  X = await ingestKos(t, makeManifest({ seed: 'IX', patientId: 'Q1', studyDate: '20200101', studyTime: '080000', modality: 'CT' }));
  await new IngestService({ db: t.tdb.db, config: t.config }).updateStatus(X.stored.kosDocRefId, 'entered-in-error');
});
after(async () => t.close());

const studyId = (r: IngestResult) => `study-${r.stored.binaryId.slice(4)}`;
const matches = (res: request.Response, type?: string) => (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match' && (!type || e.resource.resourceType === type)).map((e: any) => e.resource.id).sort();
async function q(path: string, status = 200) {
  const res = await request(t.app).get(`/fhir/${path}`);
  assert.equal(res.status, status, `${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return res;
}

test('ImagingStudy: identifier (urn:oid:, bare, system|value), patient, patient.identifier, status', async () => {
  const st = A.stored.studyInstanceUid;
  for (const v of [`urn:dicom:uid|urn:oid:${st}`, `urn:oid:${st}`, st, `urn:dicom:uid|${st}`]) {
    assert.deepEqual(matches(await q(`ImagingStudy?identifier=${v}`)), [studyId(A)], v);
  }
  assert.deepEqual(matches(await q(`ImagingStudy?identifier=urn:oid:1.2.3.999`)), []);
  assert.deepEqual(matches(await q(`ImagingStudy?patient.identifier=${ISS}|Q1`)), [studyId(A), studyId(B)].sort());
  assert.deepEqual(matches(await q(`ImagingStudy?patient=Patient/${A.stored.patientId}`)), [studyId(A), studyId(B)].sort());
  assert.deepEqual(matches(await q(`ImagingStudy?patient.identifier=${ISS}|Q1&status=entered-in-error`)), [studyId(X)]);
  assert.deepEqual(matches(await q(`ImagingStudy?patient.identifier=${ISS}|Q1&status=available`)), [studyId(A), studyId(B)].sort());
  await q('ImagingStudy?patient.identifier=Q1', 400);
  const r = await q(`ImagingStudy?identifier=${st}`);
  const s = r.body.entry[0].resource;
  assert.equal(s.resourceType, 'ImagingStudy');
  assert.equal(s.subject.reference, `Patient/${A.stored.patientId}`);
  assert.ok(s.series[0].endpoint[0].reference.startsWith('Endpoint/'));
});

test('ImagingStudy: started prefixes, modality, bodysite, series, endpoint, _id, _lastUpdated, _sort=started', async () => {
  const P = `patient.identifier=${ISS}|Q1`;
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&started=2024-01-15`)), [studyId(A)]);
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&started=lt2024`)), [studyId(B)]);
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&started=ge2023-06-01T07:00:00Z`)), [studyId(A), studyId(B)].sort());
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&started=gt2023-06-01`)), [studyId(A)]);
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&modality=MR`)), [studyId(B)]);
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&modality=http://dicom.nema.org/resources/ontology/DCM|CT`)), [studyId(A)]);
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&bodysite=69536005`)), [studyId(A), studyId(B)].sort());
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&bodysite=1`)), []);
  const model = (await t.tdb.db.raw('select model from manifest where sop_instance_uid = ?', [A.stored.sopInstanceUid])).rows[0].model;
  const series = model.evidence[0].series[0].uid;
  assert.deepEqual(matches(await q(`ImagingStudy?series=${series}`)), [studyId(A)]);
  const read = await q(`ImagingStudy/${studyId(A)}`);
  const ep = read.body.series[0].endpoint[0].reference;
  assert.ok(matches(await q(`ImagingStudy?${P}&endpoint=${ep}`)).includes(studyId(A)));
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&endpoint=Endpoint/none`)), []);
  assert.deepEqual(matches(await q(`ImagingStudy?_id=${studyId(A)}`)), [studyId(A)]);
  assert.deepEqual(matches(await q(`ImagingStudy?_id=nope`)), []);
  assert.deepEqual(matches(await q(`ImagingStudy?${P}&_lastUpdated=gt2000`)), [studyId(A), studyId(B)].sort());
  const sorted = (await q(`ImagingStudy?${P}&_sort=started`)).body.entry.map((e: any) => e.resource.id);
  assert.deepEqual(sorted, [studyId(B), studyId(A)]);
  const desc = (await q(`ImagingStudy?${P}&_sort=-started`)).body.entry.map((e: any) => e.resource.id);
  assert.deepEqual(desc, [studyId(A), studyId(B)]);
});

test('ImagingStudy: _include patient and endpoint; read with ETag/304; superseded → 404', async () => {
  const res = await q(`ImagingStudy?identifier=${A.stored.studyInstanceUid}&_include=ImagingStudy:patient&_include=ImagingStudy:endpoint`);
  const inc = res.body.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.resourceType).sort();
  assert.ok(inc.includes('Patient'));
  assert.ok(inc.includes('Endpoint'));
  const r = await q(`ImagingStudy/${studyId(A)}`);
  assert.equal(r.headers.etag, `W/"${r.body.meta.versionId}"`);
  await request(t.app).get(`/fhir/ImagingStudy/${studyId(A)}`).set('If-None-Match', r.headers.etag!).expect(304);
  await q('ImagingStudy/nope', 404);
  const A2 = await ingestKos(t, makeManifest({ seed: 'IA2', patientId: 'Q1', studyDate: '20240115', studyTime: '101010', modality: 'CT', studyUid: A.stored.studyInstanceUid }));
  await q(`ImagingStudy/${studyId(A)}`, 404);
  await q(`ImagingStudy/${studyId(A2)}`);
  assert.deepEqual(matches(await q(`ImagingStudy?identifier=${A.stored.studyInstanceUid}`)), [studyId(A2)]);
  A = A2;
});

test('Patient: read, identifier (issuer-aware), name, birthdate, _revinclude', async () => {
  const pid = B.stored.patientId;
  const r = await q(`Patient/${pid}`);
  assert.equal(r.body.resourceType, 'Patient');
  assert.ok(r.headers.etag);
  await request(t.app).get(`/fhir/Patient/${pid}`).set('If-None-Match', r.headers.etag!).expect(304);
  assert.deepEqual(matches(await q(`Patient?identifier=${ISS}|Q1`)), [pid]);
  await q(`Patient?identifier=Q1`, 400);
  assert.deepEqual(matches(await q(`Patient?identifier=|Q1`)), []);
  assert.deepEqual(matches(await q(`Patient?identifier=urn:oid:9|Q1`)), []);
  assert.deepEqual(matches(await q(`Patient?name=synth&identifier=${ISS}|Q1`)), [pid]);
  assert.deepEqual(matches(await q(`Patient?name=patienti&identifier=${ISS}|Q1`)), [pid]);
  assert.deepEqual(matches(await q(`Patient?name:exact=synth&identifier=${ISS}|Q1`)), []);
  assert.deepEqual(matches(await q(`Patient?name=zzz`)), []);
  assert.deepEqual(matches(await q(`Patient?birthdate=1970-01-01&identifier=${ISS}|Q1`)), [pid]);
  assert.deepEqual(matches(await q(`Patient?birthdate=gt1970&identifier=${ISS}|Q1`)), []);
  const rev = await q(`Patient?_id=${pid}&_revinclude=DocumentReference:subject&_revinclude=ImagingStudy:subject`);
  const types = rev.body.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.resourceType);
  assert.equal(types.filter((x: string) => x === 'DocumentReference').length, 6); // A (superseded), A2, B; not X (entered-in-error)
  assert.equal(types.filter((x: string) => x === 'ImagingStudy').length, 2);
  await q('Patient/nobody', 404);
});

test('Endpoint: search by connection-type, read', async () => {
  const all = matches(await q('Endpoint?connection-type=dicom-wado-rs'));
  assert.ok(all.length >= 1);
  assert.deepEqual(matches(await q('Endpoint?connection-type=nope')), []);
  const r = await q(`Endpoint/${all[0]}`);
  assert.equal(r.body.resourceType, 'Endpoint');
  assert.ok(r.headers.etag);
  await q('Endpoint/nope', 404);
});

test('List (ITI-66): code, status, patient, patient.identifier, date, identifier, designationType, sourceId', async () => {
  const pid = B.stored.patientId;
  await runInTransaction(t.tdb.db, (tx) =>
    insertSubmissionSet(tx, {
      id: 'ss-1',
      resource: { resourceType: 'List', id: 'ss-1', status: 'current', mode: 'working', code: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', code: 'submissionset' }] }, subject: { reference: `Patient/${pid}` } },
      status: 'current',
      patientId: pid,
      date: '2024-05-01T10:00:00Z',
      tokens: [
        { code: 'code', system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', value: 'submissionset' },
        { code: 'patient.identifier', system: ISS, value: 'Q1' },
        { code: 'identifier', system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.77' },
        { code: 'source-id', system: '', value: 'urn:oid:1.2.3.88' },
        { code: 'designation-type', system: 'http://loinc.org', value: '1234-5' },
        { code: 'status', system: '', value: 'current' },
      ],
    } as never),
  );
  const P = `patient.identifier=${ISS}|Q1`;
  assert.deepEqual(matches(await q(`List?${P}&code=submissionset&status=current`)), ['ss-1']);
  assert.deepEqual(matches(await q(`List?patient=${pid}&code=folder`)), []);
  assert.deepEqual(matches(await q(`List?${P}&status=retired`)), []);
  assert.deepEqual(matches(await q(`List?${P}&date=2024-05`)), ['ss-1']);
  assert.deepEqual(matches(await q(`List?${P}&date=lt2024`)), []);
  assert.deepEqual(matches(await q(`List?identifier=1.2.3.77`)), ['ss-1']);
  assert.deepEqual(matches(await q(`List?designationType=http://loinc.org|1234-5&${P}`)), ['ss-1']);
  assert.deepEqual(matches(await q(`List?designationType=http://loinc.org|9&${P}`)), []);
  assert.deepEqual(matches(await q(`List?sourceId=1.2.3.88`)), ['ss-1']);
  const r = await q('List/ss-1');
  assert.equal(r.body.resourceType, 'List');
  await q('List/none', 404);
});

test('List (ITI-66) source.given / source.family: contained person authors of SubmissionSets stored by ITI-65; _sort=date pages Lists without a date', async () => {
  const ss = (uid: string, contained: unknown[], source: unknown) => {
    const b = provideBundle([{ kos: kosFixture(`src-${uid}`) }], { ssUid: uid });
    Object.assign(b.entry[0].resource, { contained, source });
    return b;
  };
  const post = async (b: unknown) => request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(JSON.stringify(b)).expect(200);
  await post(ss('1.2.3.901', [{ resourceType: 'Practitioner', id: 'auth', name: [{ family: 'Müller-Lüdenscheidt', given: ['Anna', 'Lena'] }] }], { reference: '#auth' }));
  // non-matching: a Device source, with a Practitioner contained that the source does not point at
  await post(ss('1.2.3.902', [{ resourceType: 'Device', id: 'dev' }, { resourceType: 'Practitioner', id: 'other', name: [{ family: 'Mueller', given: ['Anna'] }] }], { reference: '#dev' }));
  // non-matching: a literal reference to a Practitioner the gateway does not hold
  await post(ss('1.2.3.903', [], { reference: 'Practitioner/anna', display: 'Anna Muller' }));
  const ids = async (qs: string) => {
    const res = await q(`List?${qs}`);
    return (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.identifier?.[0]?.value).sort();
  };
  const one = ['urn:oid:1.2.3.901'];
  assert.deepEqual(await ids('source.family=muller'), one);
  assert.deepEqual(await ids(`source.family=${encodeURIComponent('MÜLLER-L')}`), one);
  assert.deepEqual(await ids('source.family=mueller'), []);
  assert.deepEqual(await ids('source.family=ludenscheidt'), []); // starts-with, not contains
  assert.deepEqual(await ids('source.given=ann'), one);
  assert.deepEqual(await ids('source.given=lena'), one);
  assert.deepEqual(await ids('source.given=anna&source.family=mu'), one);
  assert.deepEqual(await ids('source.given=anna&source.family=x'), []);
  assert.deepEqual(await ids('source.given=zz,lena'), one);
  assert.deepEqual(await ids(`source.family:exact=${encodeURIComponent('Müller-Lüdenscheidt')}`), one);
  assert.deepEqual(await ids('source.family:exact=Muller-Ludenscheidt'), []);
  assert.deepEqual(await ids('source.given:exact=anna'), []);
  assert.deepEqual(await ids('source.given=anna&identifier=urn:oid:1.2.3.902'), []);
  await q('List?source.given:contains=ann', 400);

  // A List without a date sorts as the earliest instant: paging by date reaches it (no skip, no repeat).
  const pid = B.stored.patientId;
  await runInTransaction(t.tdb.db, (tx) => insertSubmissionSet(tx, { id: 'ss-nodate', resource: { resourceType: 'List', id: 'ss-nodate', status: 'current', mode: 'working' }, status: 'current', patientId: pid, tokens: [] } as never));
  const all = (await q('List?_count=100')).body.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();
  assert.ok(all.includes('ss-nodate') && all.length >= 5, all.join(' '));
  for (const sort of ['date', '-date', '-date,_lastUpdated']) {
    let res = await q(`List?_sort=${sort}&_count=1`);
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) {
      seen.push(...res.body.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id));
      const next = res.body.link.find((l: any) => l.relation === 'next');
      if (!next) break;
      res = await q(next.url.slice('http://gateway.test/fhir/'.length));
    }
    assert.deepEqual([...seen].sort(), all, sort);
    assert.equal(seen[sort === 'date' ? 0 : seen.length - 1], 'ss-nodate', sort);
  }
});

test('multi-key _sort: lexicographic with mixed directions, id tiebreak; keyset pages of any size never skip or repeat, also under concurrent inserts', async () => {
  const mk = (seed: string, date: string) => ingestKos(t, makeManifest({ seed, patientId: 'MS', studyDate: date, studyTime: '120000' }));
  const m1 = await mk('ms1', '20240101');
  const m2 = await mk('ms2', '20230101');
  const m3 = await mk('ms3', '20240101');
  const m4 = await mk('ms4', '20230101');
  const pair = (r: IngestResult) => [r.stored.fhirDocRefId, r.stored.kosDocRefId].sort(); // equal keys: id ascending
  const P = `DocumentReference?patient.identifier=${ISS}|MS`;
  const page = (res: request.Response) => res.body.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id) as string[];
  const order = async (sort: string) => page(await q(`${P}&_sort=${sort}&_count=100`));
  assert.deepEqual(await order('-creation,_lastUpdated'), [m1, m3, m2, m4].flatMap(pair));
  assert.deepEqual(await order('-creation,-_lastUpdated'), [m3, m1, m4, m2].flatMap(pair));
  assert.deepEqual(await order('creation,-date'), [m4, m2, m3, m1].flatMap(pair));
  assert.deepEqual(await order('_lastUpdated,-creation'), [m1, m2, m3, m4].flatMap(pair)); // the first key decides
  const walk = async (first: string) => {
    let res = await q(first);
    const seen: string[] = [];
    for (let i = 0; i < 50; i++) {
      seen.push(...page(res));
      const next = res.body.link.find((l: any) => l.relation === 'next');
      if (!next) break;
      assert.match(next.url, /_sort=/);
      res = await q(next.url.slice('http://gateway.test/fhir/'.length));
    }
    return seen;
  };
  for (const sort of ['-creation,_lastUpdated', 'creation,-date', '-date,creation,_lastUpdated', '-creation,-_lastUpdated']) {
    const all = await order(sort);
    for (const count of [1, 3]) assert.deepEqual(await walk(`${P}&_sort=${sort}&_count=${count}`), all, `${sort} _count=${count}`);
  }
  // a cursor of one sort is refused by another
  const first = await q(`${P}&_sort=-creation,_lastUpdated&_count=2`);
  const cursor = new URL(first.body.link.find((l: any) => l.relation === 'next').url).searchParams.get('_cursor')!;
  const wrong = await q(`${P}&_sort=-creation,-_lastUpdated&_cursor=${cursor}`, 400);
  assert.deepEqual(wrong.body.issue[0].expression, ['_cursor']);
  // concurrent inserts sorting before, between and after the cursor
  const before = [m1, m2, m3, m4].flatMap(pair);
  let res = await q(`${P}&_sort=-creation,_lastUpdated&_count=3`);
  const seen: string[] = [];
  const dates = ['20250101', '20240101', '20230101', '20220101'];
  for (let n = 0; ; n++) {
    seen.push(...page(res));
    const next = res.body.link.find((l: any) => l.relation === 'next');
    if (!next) break;
    const [p] = await Promise.all([request(t.app).get(next.url.slice('http://gateway.test'.length)), mk(`msnew${n}`, dates[n % dates.length]!)]);
    assert.equal(p.status, 200);
    res = p;
  }
  assert.equal(new Set(seen).size, seen.length, 'no document repeated');
  for (const id of before) assert.ok(seen.includes(id), `pre-existing ${id} not lost`);
});

function limitedApp(patientIds: string[]) {
  const principal: Principal = { kind: 'user', subject: 'u1', roles: ['referring'], scopes: ['patient/*.read'], patientIds, breakGlass: false };
  const app = express();
  app.use((req, _res, next) => {
    (req as any).requestId = 'test';
    (req as any).log = createLogger('silent');
    req.principal = principal;
    next();
  });
  app.use('/fhir', createFhirRouter({ config: t.config, db: t.tdb.db, log: createLogger('silent'), version: 'test' }, queryModules));
  app.use(errorHandler());
  return app;
}

test('authorisation: patientFilter inside SQL — totals, reads, retrieve, includes of other patients hidden', async () => {
  const app = limitedApp([C.stored.patientId]);
  const r = await request(app).get(`/fhir/DocumentReference?patient.identifier=${ISS}|Q1&_total=accurate`).expect(200);
  assert.equal(r.body.total, 0);
  assert.equal(r.body.entry, undefined);
  const own = await request(app).get(`/fhir/DocumentReference?patient.identifier=${ISS}|Q2&_total=accurate`).expect(200);
  assert.equal(own.body.total, 2);
  await request(app).get(`/fhir/DocumentReference/${B.stored.kosDocRefId}`).expect(404);
  await request(app).get(`/fhir/DocumentReference/${C.stored.kosDocRefId}`).expect(200);
  await request(app).get(`/fhir/Binary/${B.stored.binaryId}`).expect(404);
  await request(app).get(`/fhir/Bundle/${B.stored.bundleId}`).expect(404);
  await request(app).get(`/fhir/Binary/${C.stored.binaryId}`).expect(200);
  await request(app).get(`/fhir/ImagingStudy/${studyId(B)}`).expect(404);
  await request(app).get(`/fhir/Patient/${B.stored.patientId}`).expect(404);
  assert.equal((await request(app).get(`/fhir/ImagingStudy?_summary=count`).expect(200)).body.total, 1);
  assert.equal((await request(app).get(`/fhir/Patient?_summary=count`).expect(200)).body.total, 1);
  assert.equal((await request(app).get(`/fhir/List?_summary=count`).expect(200)).body.total, 0);
  const none = limitedApp([]);
  assert.equal((await request(none).get(`/fhir/DocumentReference?_summary=count`).expect(200)).body.total, 0);
  assert.equal((await request(none).get(`/fhir/Endpoint?_summary=count`).expect(200)).body.total, 0);
});

test('audit annotation: subtype, action, patients, entities, raw query, count', async () => {
  const seen: any[] = [];
  const app = express();
  app.use((req, res, next) => {
    (req as any).log = createLogger('silent');
    res.on('finish', () => seen.push(res.locals.audit));
    next();
  });
  app.use('/fhir', createFhirRouter({ config: t.config, db: t.tdb.db, log: createLogger('silent'), version: 'test' }, queryModules));
  app.use(errorHandler());
  await request(app).get(`/fhir/DocumentReference?patient.identifier=${ISS}|Q2`).expect(200);
  await request(app).get(`/fhir/Binary/${C.stored.binaryId}`).expect(200);
  await request(app).get(`/fhir/ImagingStudy?patient.identifier=${ISS}|Q2`).expect(200);
  await request(app).get(`/fhir/List?code=submissionset`).expect(200);
  assert.equal(seen[0].subtype, 'ITI-67');
  assert.equal(seen[0].action, 'E');
  assert.equal(seen[0].query, `patient.identifier=${ISS}|Q2`);
  assert.equal(seen[0].count, 2);
  assert.deepEqual(seen[0].patientIds, [C.stored.patientId]);
  assert.equal(seen[0].entities.length, 2);
  assert.equal(seen[1].subtype, 'ITI-68');
  assert.equal(seen[1].action, 'R');
  assert.deepEqual(seen[1].patientIds, [C.stored.patientId]);
  assert.equal(seen[2].subtype, 'search');
  assert.equal(seen[3].subtype, 'ITI-66');
});

test('keyset paging under concurrent inserts: nothing lost, nothing repeated (default and _sort=date)', async () => {
  const before: IngestResult[] = [];
  for (let i = 0; i < 12; i++) before.push(await ingestKos(t, makeManifest({ seed: `pg${i}`, patientId: 'PG' })));
  const expected = before.flatMap((r) => [r.stored.kosDocRefId, r.stored.fhirDocRefId]).sort();
  for (const sort of ['', '&_sort=date']) {
    let res = await q(`DocumentReference?patient.identifier=${ISS}|PG&_count=3${sort}`);
    const seen: string[] = [];
    let n = 0;
    for (;;) {
      seen.push(...matches(res));
      const next = res.body.link.find((l: any) => l.relation === 'next');
      if (!next) break;
      // Insert while the client is between pages, and concurrently with the next page request.
      const [page] = await Promise.all([
        request(t.app).get(next.url.slice('http://gateway.test'.length)),
        ingestKos(t, makeManifest({ seed: `pgnew${sort}${n++}`, patientId: 'PG' })),
      ]);
      assert.equal(page.status, 200);
      res = page;
    }
    assert.equal(new Set(seen).size, seen.length, 'no document repeated');
    for (const id of expected) assert.ok(seen.includes(id), `pre-existing ${id} not lost (${sort || 'default sort'})`);
  }
});

test('EXPLAIN of the benchmarked queries uses the indexes (realistic stats after ANALYZE)', async () => {
  const m = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: 'tpl' });
  const d = manifestToDocumentReferences(m, mappingContext(t.config), { status: 'current', nativeFormat: 'kos' });
  await bulkLoadManifests(t.tdb.db, 0, 20000, 4, { model: m, kosDocRef: d.kos, fhirDocRef: d.fhir, patient: { resourceType: 'Patient' } });
  await analyzeSearchTables(t.tdb.db);
  const plans = {
    docrefByPatient: `patient.identifier=${BENCH_ISSUER}|BMRN123&status=current`,
    docrefByStudy: `study-instance-uid=urn:oid:${benchStudyUid(4242)}`,
  };
  for (const [name, qs] of Object.entries(plans)) {
    const p = planSearch('DocumentReference', parseQueryString(qs), { strict: true, defaultCount: 20, maxCount: 100 });
    const text = await explainSearch(t.tdb.db, { table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: p.count }, { all: true });
    assert.match(text, /Index (Only )?Scan using manifest_token_lookup|Bitmap Index Scan on manifest_token_lookup/, `${name}: token index\n${text}`);
    assert.match(text, /Index Scan using docref_manifest|Bitmap Index Scan on docref_manifest|Index Scan using docref_patient_status/, `${name}: docref index\n${text}`);
    assert.doesNotMatch(text, /Seq Scan on (manifest_token|document_reference)/, `${name}\n${text}`);
  }
  // identifier (uniqueId tokens, entryUUID column), author names (generated terms, migration 0005), related, multi-key sort.
  const more: Record<string, { qs: string; uses: RegExp }> = {
    docrefByEntryUuid: { qs: `identifier=urn:uuid:${benchEntryUuid('kos-docref-b4242')}`, uses: /Index Scan using docref_entry_uuid|Bitmap Index Scan on docref_entry_uuid/ },
    docrefByUniqueId: { qs: 'identifier=urn:ietf:rfc:3986|urn:oid:2.25.8000004242', uses: /manifest_token_lookup[\s\S]*docref_manifest/ },
    docrefByAuthor: { qs: 'author.family=smith&author.given:exact=John', uses: /Bitmap Index Scan on docref_author_terms/ },
    docrefRelated: { qs: 'related=ImagingStudy/study-b4242', uses: /imaging_study_resource_id[\s\S]*docref_manifest|docref_manifest[\s\S]*imaging_study_resource_id/ },
    docrefMultiSort: { qs: `patient.identifier=${BENCH_ISSUER}|BMRN123&status=current&_sort=-date,_lastUpdated`, uses: /manifest_token_lookup/ },
  };
  for (const [name, { qs, uses }] of Object.entries(more)) {
    const p = planSearch('DocumentReference', parseQueryString(qs), { strict: true, defaultCount: 20, maxCount: 100 });
    const text = await explainSearch(t.tdb.db, { table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: p.count }, { all: true });
    assert.match(text, uses, `${name}\n${text}`);
    assert.doesNotMatch(text, /Seq Scan on (manifest_token|document_reference|manifest )/, `${name}\n${text}`);
  }
  assert.deepEqual(matches(await q(`DocumentReference?identifier=${benchEntryUuid('kos-docref-b4242')}`)), ['kos-docref-b4242']);
  assert.deepEqual(matches(await q('DocumentReference?related=ImagingStudy/study-b4242')), ['fhir-docref-b4242', 'kos-docref-b4242']);

  const p = planSearch('ImagingStudy', parseQueryString(`identifier=urn:oid:${benchStudyUid(4242)}`), { strict: true, defaultCount: 20, maxCount: 100 });
  const text = await explainSearch(t.tdb.db, { table: 'ImagingStudy', conds: p.conds, sort: p.sort, limit: p.count }, { all: true });
  assert.match(text, /manifest_token_lookup/, text);
  assert.doesNotMatch(text, /Seq Scan on (manifest_token|manifest|imaging_study)/, text);
  // The cached generic plans (what rawPrepared runs after five executions) keep the index plans,
  // and PostgreSQL does switch to them: short value lists are bound one by one (search-sql anyOf),
  // so the generic estimate is not worse than a custom plan's.
  const bench: Array<[SearchTable, string, PatientFilter]> = [
    ['DocumentReference', `patient.identifier=${BENCH_ISSUER}|BMRN123&status=current`, { all: true }],
    ['DocumentReference', `study-instance-uid=urn:oid:${benchStudyUid(4242)}`, { all: true }],
    ['ImagingStudy', `identifier=urn:dicom:uid|urn:oid:${benchStudyUid(4242)}`, { all: true }],
    ['DocumentReference', `patient.identifier=${BENCH_ISSUER}|BMRN123&status=current`, { all: false, patientIds: ['pb-1', 'pb-2'] }],
  ];
  for (const [type, qs, pf] of bench) {
    const bp = planSearch(type, parseQueryString(qs), { strict: true, defaultCount: 20, maxCount: 100 });
    const sp = { table: type, conds: bp.conds, sort: bp.sort, limit: bp.count };
    const generic = await explainSearch(t.tdb.db, sp, pf, { generic: true });
    assert.match(generic, /manifest_token_lookup/, `${type}?${qs} generic\n${generic}`);
    assert.doesNotMatch(generic, /Seq Scan on (manifest_token|document_reference|manifest |imaging_study)/, `${type}?${qs} generic\n${generic}`);
    const use = await searchPlanCacheUse(t.tdb.db, sp, pf, 8);
    assert.ok(use.generic >= 1, `${type}?${qs}: PostgreSQL keeps re-planning (${JSON.stringify(use)})`);
  }
  // And the bulk rows answer through the API.
  const r = await q(`DocumentReference?patient.identifier=${BENCH_ISSUER}|BMRN123&status=current&_total=accurate`);
  assert.equal(r.body.total, 8);
  assert.equal(matches(await q(`ImagingStudy?identifier=${benchStudyUid(4242)}`)).length, 1);
});
