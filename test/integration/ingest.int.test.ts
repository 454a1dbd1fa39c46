import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { Fhir } from 'fhir';
import { manifestResourceIds } from '../../src/model/ids.js';
import { incompleteManifests, manifestIdFor } from '../../src/store/manifests.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { conflicting, fhirManifest, kos, multipart, nextVersion, provideBundle, rejectionNote } from './ingest-fixtures.js';

let t: TestApp;
before(async () => {
  t = await createTestApp();
});
after(async () => t.close());

const FIX = path.resolve(import.meta.dirname, '../fixtures/kos');

const postKos = (bytes: Buffer) => request(t.app).post('/fhir/Binary').set('Content-Type', 'application/dicom').send(bytes);

async function manifestRow(sop: string) {
  return (await t.tdb.db.raw('select * from manifest where sop_instance_uid = ?', [sop])).rows[0];
}
async function docref(id: string) {
  return (await t.tdb.db.raw('select * from document_reference where id = ?', [id])).rows[0];
}
async function count(sql: string, b: any[] = []): Promise<number> {
  return Number((await t.tdb.db.raw(`select count(*)::int as n from (${sql}) x`, b)).rows[0].n);
}

describe('POST /fhir/Binary (raw KOS)', () => {
  test('stores a manifest with docrefs, tokens, patient and imaging rows; 201 + Location', async () => {
    const k = kos('bin-1', { series: 3, perSeries: 4 });
    const res = await postKos(k.bytes).expect(201);
    const ids = manifestResourceIds(k.model.document.sopInstanceUid);
    assert.equal(res.headers.location, `http://gateway.test/fhir/Binary/${ids.binary}`);
    assert.match(res.headers.link!, new RegExp(`DocumentReference/${ids.kosDocRef}`));
    assert.equal(res.headers['x-ingest-result'], 'created');
    assert.equal(res.body.resourceType, 'OperationOutcome');
    const m = await manifestRow(k.model.document.sopInstanceUid);
    assert.equal(m.id, manifestIdFor(k.model.document.sopInstanceUid));
    assert.equal(m.status, 'current');
    assert.equal(m.native_format, 'kos');
    assert.equal(m.reference_count, 12);
    assert.deepEqual(Buffer.from(m.content), k.bytes, 'KOS stored verbatim');
    assert.equal(m.model.document.sopInstanceUid, k.model.document.sopInstanceUid);
    const kd = await docref(ids.kosDocRef);
    const fd = await docref(ids.fhirDocRef);
    assert.equal(kd.format, 'kos');
    assert.equal(fd.format, 'fhir');
    assert.equal(kd.resource.status, 'current');
    assert.equal(kd.resource.meta.versionId, '1');
    assert.equal(kd.resource.content[0].attachment.url, `http://gateway.test/fhir/Binary/${ids.binary}`);
    assert.equal(fd.resource.content[0].attachment.url, `http://gateway.test/fhir/Bundle/${ids.bundle}`);
    assert.equal(await count('select 1 from imaging_instance where manifest_id = ?', [m.id]), 12);
    assert.equal(await count('select 1 from imaging_series where manifest_id = ?', [m.id]), 3);
    const st = (await t.tdb.db.raw('select * from imaging_study where manifest_id = ?', [m.id])).rows[0];
    assert.equal(st.study_instance_uid, k.model.study.studyInstanceUid);
    assert.equal(st.number_of_instances, 12);
    const p = (await t.tdb.db.raw('select * from patient where id = ?', [m.patient_id])).rows[0];
    assert.equal(p.resource.resourceType, 'Patient');
    const pi = (await t.tdb.db.raw('select system, value from patient_identifier where patient_id = ?', [m.patient_id])).rows;
    assert.deepEqual(pi, [{ system: 'urn:oid:1.2.3.4.5.6.7', value: k.model.patient.id!.value }]);
    assert.deepEqual(await incompleteManifests(t.tdb.db), []);
  });

  test('token rows use exactly the documented codes', async () => {
    const k = kos('tok-1', { series: 2, perSeries: 2 });
    await postKos(k.bytes).expect(201);
    const id = manifestIdFor(k.model.document.sopInstanceUid);
    const rows: Array<{ code: string; system: string; value: string }> = (await t.tdb.db.raw('select code, system, value from manifest_token where manifest_id = ?', [id])).rows;
    const has = (code: string, system: string, value: string) => assert.ok(rows.some((r) => r.code === code && r.system === system && r.value === value), `${code} ${system}|${value}`);
    const sop = k.model.document.sopInstanceUid;
    const study = k.model.study.studyInstanceUid;
    has('identifier', 'urn:ietf:rfc:3986', `urn:oid:${sop}`);
    has('identifier', '', sop);
    has('study-instance-uid', 'urn:dicom:uid', `urn:oid:${study}`);
    has('study-instance-uid', '', study);
    has('patient.identifier', 'urn:oid:1.2.3.4.5.6.7', k.model.patient.id!.value);
    has('accession-number', 'urn:oid:1.2.3.4.5.6.7.9', k.model.study.accession!.value);
    for (const s of k.model.evidence[0]!.series) {
      has('modality', 'http://dicom.nema.org/resources/ontology/DCM', s.modality!);
      has('event', 'http://dicom.nema.org/resources/ontology/DCM', s.modality!);
      has('series', '', s.uid);
    }
    for (const r of k.model.study.anatomicalRegions) {
      has('anatomical-region', 'http://snomed.info/sct', r.value);
      has('event', 'http://snomed.info/sct', r.value);
    }
    has('category', 'http://loinc.org', '18748-4');
    has('type', 'http://loinc.org', '18748-4');
    has('setting', 'http://snomed.info/sct', '394914008');
    has('facility', 'http://snomed.info/sct', '79491001');
    assert.ok(rows.some((r) => r.code === 'endpoint'));
    const codes = new Set(rows.map((r) => r.code));
    for (const c of codes) assert.ok(['patient.identifier', 'identifier', 'study-instance-uid', 'accession-number', 'modality', 'anatomical-region', 'bodysite', 'event', 'category', 'type', 'setting', 'facility', 'series', 'endpoint'].includes(c), c);
    const ep = (await t.tdb.db.raw('select e.* from manifest_endpoint me join endpoint e on e.id = me.endpoint_id where me.manifest_id = ?', [id])).rows;
    assert.ok(ep.length >= 1);
    assert.equal(ep[0].resource.resourceType, 'Endpoint');
  });

  test('same SOP + same bytes → 200 duplicate, same ids; different bytes → 409', async () => {
    const k = kos('dup-1');
    const a = await postKos(k.bytes).expect(201);
    const b = await postKos(k.bytes).expect(200);
    assert.equal(b.headers['x-ingest-result'], 'duplicate');
    assert.equal(a.headers.location, b.headers.location);
    assert.equal(await count('select 1 from manifest where sop_instance_uid = ?', [k.model.document.sopInstanceUid]), 1);
    const c = await postKos(conflicting(k).bytes).expect(409);
    assert.equal(c.body.issue[0].details.coding[0].code, 'GW_MANIFEST_CONFLICT');
    assert.match(c.body.issue[0].details.text, /different content/);
  });

  test('a new manifest for a held study becomes current; the old one is superseded and re-rendered', async () => {
    const v1 = kos('rep-1');
    await postKos(v1.bytes).expect(201);
    const v2 = nextVersion(v1);
    const res = await postKos(v2.bytes).expect(201);
    assert.equal(res.headers['x-ingest-result'], 'replaced');
    const old = await manifestRow(v1.model.document.sopInstanceUid);
    const neu = await manifestRow(v2.model.document.sopInstanceUid);
    assert.equal(old.status, 'superseded');
    assert.equal(old.version_id, 2);
    assert.equal(neu.status, 'current');
    assert.equal(neu.replaces, old.id);
    const o1 = manifestResourceIds(v1.model.document.sopInstanceUid);
    const n1 = manifestResourceIds(v2.model.document.sopInstanceUid);
    for (const id of [o1.kosDocRef, o1.fhirDocRef]) {
      const d = await docref(id);
      assert.equal(d.status, 'superseded');
      assert.equal(d.resource.status, 'superseded');
      assert.equal(d.resource.meta.versionId, '2');
    }
    const nd = await docref(n1.kosDocRef);
    assert.ok(nd.resource.relatesTo.some((r: any) => r.code === 'replaces' && r.target.reference === `DocumentReference/${o1.kosDocRef}`));
    assert.equal(await count("select 1 from manifest where study_instance_uid = ? and status = 'current'", [v1.model.study.studyInstanceUid]), 1);
  });

  test('a Binary resource (JSON) wrapping a KOS is accepted too', async () => {
    const k = kos('bin-json');
    await request(t.app).post('/fhir/Binary').set('Content-Type', 'application/fhir+json').send({ resourceType: 'Binary', contentType: 'application/dicom', data: k.bytes.toString('base64') }).expect(201);
  });

  test('refusals: not DICOM, a Key Image Note, an unsupported type', async () => {
    const a = await postKos(Buffer.from('this is not dicom at all')).expect(422);
    assert.equal(a.body.issue[0].details.coding[0].code, 'GW_DICOM_UNREADABLE');
    const kin = fs.readFileSync(path.join(FIX, 'kin.dcm'));
    const b = await postKos(kin).expect(422);
    assert.equal(b.body.issue[0].details.coding[0].code, 'GW_NOT_A_MANIFEST');
    await request(t.app).post('/fhir/Binary').set('Content-Type', 'text/plain').send('x').expect(415);
    assert.equal(await count("select 1 from manifest where sop_instance_uid like '%' and model->'document'->>'title' is null"), 0);
  });

  test('the real IG example KOS (101) is accepted', async () => {
    const bytes = fs.readFileSync(path.join(FIX, 'mado-kos-101.dcm'));
    const res = await postKos(bytes);
    assert.ok([200, 201].includes(res.status), JSON.stringify(res.body));
  });
});

describe('POST /fhir/Bundle (FHIR manifest)', () => {
  test('JSON: 201 + Location Bundle/{id}; duplicate 200', async () => {
    const f = fhirManifest('fb-1');
    const res = await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+json').send(f.json).expect(201);
    const ids = manifestResourceIds(f.model.document.sopInstanceUid);
    assert.equal(res.headers.location, `http://gateway.test/fhir/Bundle/${ids.bundle}`);
    const m = await manifestRow(f.model.document.sopInstanceUid);
    assert.equal(m.native_format, 'fhir');
    assert.equal(Buffer.from(m.content).toString('utf8'), f.json, 'FHIR JSON stored as sent');
    await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+json').send(f.json).expect(200);
  });

  test('XML body is accepted', async () => {
    const f = fhirManifest('fb-xml');
    const xml = new Fhir().objToXml(f.bundle);
    await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+xml').send(xml).expect(201);
    assert.equal((await manifestRow(f.model.document.sopInstanceUid)).status, 'current');
  });

  test('invalid FHIR → 422 with issues; nothing stored', async () => {
    const before = await count('select 1 from manifest');
    const res = await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+json').send({ resourceType: 'Bundle', type: 'document', entry: [] }).expect(422);
    assert.equal(res.body.issue[0].details.coding[0].code, 'GW_MANIFEST_INVALID');
    assert.equal(await count('select 1 from manifest'), before);
    await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+json').send('{not json').expect(400);
  });
});

describe('ITI-65 POST /fhir', () => {
  test('KOS Binary + FHIR document Bundle: transaction-response, one entry per request entry in order', async () => {
    const k = kos('iti-1');
    const f = fhirManifest('iti-2');
    const b = provideBundle([{ kos: k }, { fhir: f.bundle }]);
    const res = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(b).expect(200);
    assert.equal(res.body.resourceType, 'Bundle');
    assert.equal(res.body.type, 'transaction-response');
    assert.equal(res.body.entry.length, b.entry.length);
    const st = res.body.entry.map((e: any) => e.response.status);
    assert.deepEqual(st, ['201 Created', '201 Created', '201 Created', '201 Created', '201 Created']);
    const ki = manifestResourceIds(k.model.document.sopInstanceUid);
    const fi = manifestResourceIds(f.model.document.sopInstanceUid);
    assert.match(res.body.entry[0].response.location, /^http:\/\/gateway\.test\/fhir\/List\/ss-/);
    assert.equal(res.body.entry[1].response.location, `http://gateway.test/fhir/DocumentReference/${ki.kosDocRef}`);
    assert.equal(res.body.entry[2].response.location, `http://gateway.test/fhir/Binary/${ki.binary}`);
    assert.equal(res.body.entry[3].response.location, `http://gateway.test/fhir/DocumentReference/${fi.fhirDocRef}`);
    assert.equal(res.body.entry[4].response.location, `http://gateway.test/fhir/Bundle/${fi.bundle}`);
    const ssid = res.body.entry[0].response.location.split('/').pop();
    const ss = (await t.tdb.db.raw('select * from submission_set where id = ?', [ssid])).rows[0];
    assert.equal(ss.resource.entry.length, 2);
    assert.equal((await manifestRow(k.model.document.sopInstanceUid)).submission_set_id, ssid);
    assert.ok(await count("select 1 from submission_set_token where submission_set_id = ? and code = 'identifier'", [ssid]));
    // Re-submission: idempotent, 200 OK entries, nothing new
    const again = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(b).expect(200);
    assert.equal(again.body.entry[1].response.status, '200 OK');
  });

  test('FHIR manifest as a Binary (application/fhir+json) and an XML transaction', async () => {
    const f = fhirManifest('iti-bin-json');
    const b = provideBundle([{ fhir: f.bundle, asBinaryJson: true }]);
    const xml = new Fhir().objToXml(b);
    const res = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+xml').set('Accept', 'application/fhir+json').send(xml).expect(200);
    assert.equal(res.body.entry[1].response.status, '201 Created');
    assert.equal((await manifestRow(f.model.document.sopInstanceUid)).native_format, 'fhir');
  });

  test('replace: relatesTo replaces + PATCH superseded on the old DocumentReference', async () => {
    const v1 = kos('iti-rep-1');
    await postKos(v1.bytes).expect(201);
    const old = manifestResourceIds(v1.model.document.sopInstanceUid).kosDocRef;
    const v2 = kos('iti-rep-2'); // another study: the replace is explicit, not implied by the study
    const res = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(provideBundle([{ kos: v2, replaces: old }], { patch: old })).expect(200);
    assert.equal(res.body.entry.at(-1).response.status, '200 OK');
    assert.equal((await manifestRow(v1.model.document.sopInstanceUid)).status, 'superseded');
    const n = await manifestRow(v2.model.document.sopInstanceUid);
    assert.equal(n.status, 'current');
    assert.equal(n.replaces, manifestIdFor(v1.model.document.sopInstanceUid));
  });

  test('Patient and Folder entries: answered in order with warnings; the Patient location is the derived patient', async () => {
    const k = kos('iti-pat');
    const b = provideBundle([{ kos: k }]);
    b.entry.push({ fullUrl: 'urn:uuid:00000000-0000-4000-8000-300000000000', resource: { resourceType: 'Patient', identifier: [{ value: 'x' }] }, request: { method: 'POST', url: 'Patient' } });
    b.entry.push({ fullUrl: 'urn:uuid:00000000-0000-4000-8000-400000000000', resource: { resourceType: 'List', status: 'current', mode: 'working', code: { coding: [{ code: 'folder' }] } }, request: { method: 'POST', url: 'List' } });
    const res = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(b).expect(200);
    assert.equal(res.body.entry.length, 5);
    const pid = (await manifestRow(k.model.document.sopInstanceUid)).patient_id;
    assert.equal(res.body.entry[3].response.location, `http://gateway.test/fhir/Patient/${pid}`);
    assert.equal(res.body.entry[4].response.outcome.issue[0].details.coding[0].code, 'PartialFolderContentNotProcessed');
  });

  test('relatesTo transforms → PartialTransformContentNotProcessed warning', async () => {
    const k = kos('iti-warn');
    const b = provideBundle([{ kos: k }]);
    b.entry[1].resource.relatesTo = [{ code: 'transforms', target: { reference: 'DocumentReference/x' } }];
    const res = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(b).expect(200);
    const codes = res.body.entry[1].response.outcome.issue.map((i: any) => i.details.coding[0].code);
    assert.ok(codes.includes('PartialTransformContentNotProcessed'));
  });

  test('atomic: one bad document fails the whole transaction, nothing stored', async () => {
    const good = kos('iti-atom-good');
    const b = provideBundle([{ kos: good }, { kos: { model: good.model, bytes: Buffer.from('garbage') } }]);
    b.entry[3].resource.masterIdentifier = undefined;
    const res = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(b);
    assert.equal(res.status, 422);
    assert.equal(res.body.resourceType, 'OperationOutcome');
    assert.equal(await manifestRow(good.model.document.sopInstanceUid), undefined);
    // DB-level failure inside the transaction (conflicting second document) rolls back the first too
    const k1 = kos('iti-atom-2');
    await postKos(k1.bytes).expect(201);
    const k2 = kos('iti-atom-3');
    const res2 = await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(provideBundle([{ kos: k2 }, { kos: conflicting(k1) }])).expect(409);
    assert.equal(res2.body.issue[0].details.coding[0].code, 'GW_MANIFEST_CONFLICT');
    assert.equal(await manifestRow(k2.model.document.sopInstanceUid), undefined);
  });

  test('errors: not a transaction, no SubmissionSet, unresolved attachment, masterIdentifier mismatch, unknown replace target', async () => {
    const post = (b: unknown) => request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(b as object);
    const code = (r: request.Response) => r.body.issue[0].details.coding[0].code;
    assert.equal(code(await post({ resourceType: 'Bundle', type: 'batch', entry: [{}] }).expect(400)), 'GW_ITI65_INVALID');
    const k = kos('iti-err');
    const noSs = provideBundle([{ kos: k }]);
    noSs.entry.shift();
    assert.equal(code(await post(noSs).expect(422)), 'GW_ITI65_SUBMISSION_SET');
    const unresolved = provideBundle([{ kos: k }]);
    unresolved.entry[1].resource.content[0].attachment.url = 'urn:uuid:nowhere';
    assert.equal(code(await post(unresolved).expect(422)), 'GW_ITI65_ATTACHMENT_UNRESOLVED');
    const mismatch = provideBundle([{ kos: k }]);
    mismatch.entry[1].resource.masterIdentifier.value = 'urn:oid:1.2.3';
    assert.equal(code(await post(mismatch).expect(422)), 'GW_ITI65_IDENTIFIER_MISMATCH');
    assert.equal(code(await post(provideBundle([{ kos: k, replaces: 'kos-docref-doesnotexist' }])).expect(422)), 'GW_REPLACE_TARGET_NOT_FOUND');
    assert.equal(await manifestRow(k.model.document.sopInstanceUid), undefined);
  });
});

describe('STOW-RS POST /dicomweb/studies', () => {
  const code = (item: any, tag: string) => item[tag]?.Value?.[0];

  test('all stored → 200 with ReferencedSOPSequence and RetrieveURL on PUBLIC_BASE_URL', async () => {
    const a = kos('stow-1');
    const b = kos('stow-2');
    const mp = multipart([{ body: a.bytes }, { body: b.bytes }]);
    const res = await request(t.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body).expect(200);
    assert.match(res.headers['content-type']!, /application\/dicom\+json/);
    const ok = res.body['00081199'].Value;
    assert.equal(ok.length, 2);
    assert.equal(code(ok[0], '00081155'), a.model.document.sopInstanceUid);
    assert.equal(code(ok[0], '00081150'), '1.2.840.10008.5.1.4.1.1.88.59');
    assert.match(code(ok[0], '00081190'), new RegExp(`^http://gateway\\.test/dicomweb/studies/${a.model.study.studyInstanceUid}/series/.+/instances/${a.model.document.sopInstanceUid}$`));
    assert.equal(res.body['00081198'], undefined);
  });

  test('some failed → 202 with FailedSOPSequence and FailureReason; all failed → 409', async () => {
    const a = kos('stow-3');
    const kin = fs.readFileSync(path.join(FIX, 'kin.dcm'));
    const mp = multipart([{ body: a.bytes }, { body: kin }, { body: Buffer.from('nope') }]);
    const res = await request(t.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body).expect(202);
    assert.equal(res.body['00081199'].Value.length, 1);
    const failed = res.body['00081198'].Value;
    assert.equal(failed.length, 2);
    assert.equal(code(failed[0], '00081197'), 0x0122);
    assert.equal(code(failed[1], '00081197'), 0xc000);
    const mp2 = multipart([{ body: kin }]);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', mp2.contentType).send(mp2.body).expect(409);
    // conflicting bytes for a stored SOP → failure 0x0111
    const mp3 = multipart([{ body: conflicting(a).bytes }]);
    const r3 = await request(t.app).post('/dicomweb/studies').set('Content-Type', mp3.contentType).send(mp3.body).expect(409);
    assert.equal(code(r3.body['00081198'].Value[0], '00081197'), 0x0111);
  });

  test('/studies/{study}: an instance of another study fails with 0xA900', async () => {
    const a = kos('stow-4');
    const mp = multipart([{ body: a.bytes }]);
    const res = await request(t.app).post('/dicomweb/studies/1.2.3.4').set('Content-Type', mp.contentType).send(mp.body).expect(409);
    assert.equal(code(res.body['00081198'].Value[0], '00081197'), 0xa900);
    await request(t.app).post(`/dicomweb/studies/${a.model.study.studyInstanceUid}`).set('Content-Type', mp.contentType).send(mp.body).expect(200);
  });

  test('malformed requests: 415 wrong type, 400 no boundary / truncated / empty, unquoted boundary and LF-only accepted', async () => {
    await request(t.app).post('/dicomweb/studies').set('Content-Type', 'application/dicom').send(Buffer.from('x')).expect(415);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', 'multipart/related; type="application/dicom+json"; boundary=x').send(Buffer.from('x')).expect(415);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', 'multipart/related; type="application/dicom"').send(Buffer.from('x')).expect(400);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', 'multipart/related; type="application/dicom"; boundary=abc').send(Buffer.from('--abc\r\nContent-Type: application/dicom\r\n\r\nxxxx')).expect(400);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', 'multipart/related; type="application/dicom"; boundary=abc').send(Buffer.from('--abc--\r\n')).expect(400);
    const a = kos('stow-5');
    const body = Buffer.concat([Buffer.from('preamble\n--abc  \nContent-Type: application/dicom\n\n'), a.bytes, Buffer.from('\n--abc--')]);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', 'multipart/related; boundary=abc; type=application/dicom').send(body).expect(200);
  });
});

describe('IOCM rejection notes', () => {
  test('rejecting some instances re-versions the manifest without them; rejecting the rest supersedes it without successor', async () => {
    const k = kos('iocm-1', { series: 2, perSeries: 3 });
    await postKos(k.bytes).expect(201);
    const first = k.model.evidence[0]!.series[0]!.instances[0]!.sopInstanceUid;
    const note = rejectionNote(k.model, (_s, i) => i === 0);
    const mp = multipart([{ body: note.bytes }]);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body).expect(200);
    assert.equal(await count('select 1 from rejected_instance where sop_instance_uid = ?', [first]), 1);
    const old = await manifestRow(k.model.document.sopInstanceUid);
    assert.equal(old.status, 'superseded');
    const cur = (await t.tdb.db.raw("select * from manifest where study_instance_uid = ? and status = 'current'", [k.model.study.studyInstanceUid])).rows;
    assert.equal(cur.length, 1);
    assert.equal(cur[0].replaces, old.id);
    assert.equal(cur[0].reference_count, 5);
    assert.equal(cur[0].native_format, 'kos');
    assert.equal(await count('select 1 from imaging_instance where manifest_id = ? and sop_instance_uid = ?', [cur[0].id, first]), 0);
    // the same note again: no-op
    await request(t.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body).expect(200);
    assert.equal(await count('select 1 from manifest where study_instance_uid = ?', [k.model.study.studyInstanceUid]), 2);
    // reject everything left (via POST /fhir/Binary)
    const all = rejectionNote(k.model, () => true);
    const r = await postKos(all.bytes).expect(200);
    assert.equal(r.headers['x-ingest-result'], 'rejection-applied');
    assert.equal(await count("select 1 from manifest where study_instance_uid = ? and status = 'current'", [k.model.study.studyInstanceUid]), 0);
    assert.equal(await count('select 1 from rejected_instance where study_instance_uid = ?', [k.model.study.studyInstanceUid]), 6);
    assert.deepEqual(await incompleteManifests(t.tdb.db), []);
  });
});

describe('status updates (entered-in-error)', () => {
  test('PATCH JSON Patch and PUT set entered-in-error; kept, re-rendered, version bumped', async () => {
    const k = kos('eie-1');
    await postKos(k.bytes).expect(201);
    const ids = manifestResourceIds(k.model.document.sopInstanceUid);
    const res = await request(t.app).patch(`/fhir/DocumentReference/${ids.kosDocRef}`).set('Content-Type', 'application/json-patch+json').set('If-Match', 'W/"1"')
      .send(JSON.stringify([{ op: 'replace', path: '/status', value: 'entered-in-error' }])).expect(200);
    assert.equal(res.body.status, 'entered-in-error');
    assert.equal(res.body.meta.versionId, '2');
    assert.equal(res.headers.etag, 'W/"2"');
    const fd = await docref(ids.fhirDocRef);
    assert.equal(fd.resource.status, 'entered-in-error');
    assert.equal(fd.status, 'entered-in-error');
    assert.equal((await manifestRow(k.model.document.sopInstanceUid)).status, 'entered-in-error');
    // stale If-Match → 412; cannot be made current again → 422
    await request(t.app).patch(`/fhir/DocumentReference/${ids.kosDocRef}`).set('Content-Type', 'application/json-patch+json').set('If-Match', 'W/"1"')
      .send(JSON.stringify([{ op: 'replace', path: '/status', value: 'entered-in-error' }])).expect(412);
    const back = { ...res.body, status: 'current' };
    await request(t.app).put(`/fhir/DocumentReference/${ids.kosDocRef}`).set('Content-Type', 'application/fhir+json').send(back).expect(422);
    await request(t.app).patch(`/fhir/DocumentReference/${ids.kosDocRef}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'remove', path: '/subject' }])).expect(422);
    await request(t.app).patch('/fhir/DocumentReference/nope').set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/status', value: 'entered-in-error' }])).expect(404);

    const k2 = kos('eie-2');
    await postKos(k2.bytes).expect(201);
    const id2 = manifestResourceIds(k2.model.document.sopInstanceUid).fhirDocRef;
    const body = { ...(await docref(id2)).resource, status: 'entered-in-error' };
    const put = await request(t.app).put(`/fhir/DocumentReference/${id2}`).set('Content-Type', 'application/fhir+json').send(body).expect(200);
    assert.equal(put.body.status, 'entered-in-error');
    assert.equal(await count('select 1 from manifest where sop_instance_uid = ?', [k2.model.document.sopInstanceUid]), 1, 'kept');
  });
});

describe('capability and audit', () => {
  test('CapabilityStatement lists transaction and Binary/Bundle create', async () => {
    const cs = (await request(t.app).get('/fhir/metadata').expect(200)).body;
    const rest = cs.rest[0];
    assert.ok(rest.interaction.some((i: any) => i.code === 'transaction'));
    const bin = rest.resource.find((r: any) => r.type === 'Binary');
    assert.ok(bin.interaction.some((i: any) => i.code === 'create'));
    // merged with the read/search feature's definition, not replaced
    const dr = rest.resource.find((r: any) => r.type === 'DocumentReference');
    const codes = dr.interaction.map((i: any) => i.code);
    assert.ok(codes.includes('patch') && codes.includes('update'), codes.join());
    assert.ok(codes.includes('read') && codes.includes('search-type'), codes.join());
  });

  test('logs carry no UIDs or patient ids from ingested manifests', async () => {
    const before = t.logs.length;
    const k = kos('log-1');
    await postKos(k.bytes).expect(201);
    await postKos(conflicting(k).bytes).expect(409);
    const mp = multipart([{ body: k.bytes }]);
    await request(t.app).post(`/dicomweb/studies/${k.model.study.studyInstanceUid}`).set('Content-Type', mp.contentType).send(mp.body);
    for (const l of t.logs.slice(before)) {
      assert.ok(!l.includes(k.model.study.studyInstanceUid), 'study uid in log');
      assert.ok(!l.includes(k.model.patient.id!.value), 'patient id in log');
      assert.ok(!l.includes(k.model.document.sopInstanceUid), 'sop uid in log');
    }
  });
});
