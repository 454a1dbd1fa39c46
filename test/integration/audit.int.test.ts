/**
 * The audit trail: BALP-shaped AuditEvents for every request (one per patient) with the right
 * type, subtype, action and outcome; no token stored; searchable by
 * administrators; survives a restart (a new app on the same database sees old events).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { buildApp, closeApp } from '../../src/app.js';
import { syntheticManifest, writeKos } from '../../src/dicom/index.js';
import { validateR4 } from '../../src/fhir/validate.js';
import { createLogger } from '../../src/log.js';
import type { Manifest } from '../../src/model/manifest.js';
import { auditFor, auditEvents, waitForAudit } from '../helpers/audit.js';
import { createAuthTestApp, fakeArchive, jwtConfig, makeKeys, mint, type Keys } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';

let t: TestApp;
let keys: Keys;
let archive: http.Server;
let m: Manifest;
let patientId: string;
let identifier: string;
const tok: Record<string, string> = {};

const as = (who: string) => ({
  get: (p: string) => request(t.app).get(p).set('Authorization', `Bearer ${tok[who]}`),
  post: (p: string) => request(t.app).post(p).set('Authorization', `Bearer ${tok[who]}`),
});

before(async () => {
  keys = await makeKeys('a1');
  archive = http.createServer(fakeArchive(() => [m]));
  await new Promise<void>((r) => archive.listen(0, '127.0.0.1', r));
  const archiveUrl = `http://127.0.0.1:${(archive.address() as AddressInfo).port}/dicom-web`;
  t = await createAuthTestApp({ auth: { jwt: jwtConfig([keys.publicJwk]) } }, { DICOMWEB_UPSTREAM_URL: archiveUrl });
  tok.tech = await mint({ sub: 'tech-1', client_id: 'ris', roles: ['technologist'], scope: 'user/*.cruds RAD-107' }, { keys });
  tok.rad = await mint({ sub: 'rad-1', client_id: 'viewer', roles: ['radiologist'], scope: 'user/*.rs RAD-107', purpose_of_use: 'TREAT' }, { keys });
  tok.admin = await mint({ sub: 'admin-1', roles: ['administrator'], scope: 'user/AuditEvent.rs' }, { keys });
  tok.ref = await mint({ sub: 'ref-1', roles: ['referring'], scope: 'user/*.rs' }, { keys });
  m = syntheticManifest({ series: 2, instancesPerSeries: 2, seed: 'audit-1' });
  const res = await as('tech').post('/fhir/Binary').set('Content-Type', 'application/dicom').send(Buffer.from(writeKos(m)));
  assert.ok(res.status === 201 || res.status === 200, res.text);
  const row = (await t.tdb.db('patient_identifier').where({ value: m.patient.id!.value }).first()) as { patient_id: string; system: string };
  patientId = row.patient_id;
  identifier = `${row.system}|${m.patient.id!.value}`;
});

after(async () => {
  await closeApp(t.app);
  await t.close();
  archive.closeAllConnections();
  archive.close();
});

const codes = (cs?: Array<{ code?: string }>) => (cs ?? []).map((c) => c.code);

describe('one AuditEvent per request, shaped after BALP', () => {
  test('ITI-65 create (POST /fhir/Binary): DCM 110107 Import, action C', async () => {
    const k = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: 'audit-create' });
    const res = await as('tech').post('/fhir/Binary').set('Content-Type', 'application/dicom').send(Buffer.from(writeKos(k)));
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, '110107');
    assert.equal(ev.subtype_code, 'ITI-65');
    assert.equal(ev.action, 'C');
    assert.equal(ev.outcome, '0');
    assert.equal(ev.agent_who, 'tech-1');
    const client = ev.resource.agent!.find((a) => codes(a.type?.coding).includes('110153'))!;
    assert.equal(client.who?.identifier?.value, 'ris', 'client agent = OAuth client_id');
    assert.equal(client.network?.address, ev.resource.agent![0]!.network?.address);
  });

  test('ITI-67 search: rest, search-type + ITI-67 + DCM 110112, action E, base64 raw query, patient entity', async () => {
    const q = `patient.identifier=${encodeURIComponent(identifier)}`;
    const res = await as('rad').get(`/fhir/DocumentReference?${q}`).set('User-Agent', 'viewer/1.0');
    assert.equal(res.status, 200);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, 'rest');
    assert.deepEqual(codes(ev.resource.subtype), ['search-type', 'ITI-67', '110112']);
    assert.equal(ev.subtype_code, 'ITI-67');
    assert.equal(ev.action, 'E');
    assert.equal(ev.outcome, '0');
    assert.deepEqual(ev.resource.meta?.profile, ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.FindDocumentReferences.Audit.Responder']);
    const query = ev.resource.entity!.find((e) => e.role?.code === '24')!;
    assert.equal(query.what, undefined);
    assert.ok(Buffer.from(query.query!, 'base64').toString('utf8').endsWith(`/fhir/DocumentReference?${q}`), 'BALP: base64 of the raw request');
    const patient = ev.resource.entity!.find((e) => e.role?.code === '1');
    assert.equal(patient?.what?.reference, `Patient/${patientId}`);
    assert.ok(ev.entity_refs.includes(`Patient/${patientId}`));
    const user = ev.resource.agent!.find((a) => codes(a.type?.coding).includes('IRCP'))!;
    assert.equal(user.who?.identifier?.value, 'rad-1');
    assert.equal(user.who?.identifier?.system, 'https://idp.test');
    assert.equal(user.requestor, true);
    assert.match(user.policy![0]!, /^urn:ietf:params:oauth:jti:jti-/);
    assert.deepEqual(codes(user.role?.[0]?.coding), ['radiologist']);
    assert.deepEqual(codes(user.purposeOfUse?.[0]?.coding), ['TREAT']);
    const client = ev.resource.agent!.find((a) => codes(a.type?.coding).includes('110153'))!;
    assert.equal(client.extension?.[0]?.valueString, 'viewer/1.0', 'user agent recorded');
    assert.equal(client.network?.type, '2');
  });

  test('ITI-68 retrieve (GET /fhir/Binary): rest, read + ITI-68, action R', async () => {
    const dr = await as('rad').get(`/fhir/DocumentReference?patient=${patientId}`);
    const url: string = dr.body.entry.flatMap((e: { resource: { content: Array<{ attachment: { url: string } }> } }) => e.resource.content.map((c) => c.attachment.url)).find((u: string) => /\/Binary\//.test(u));
    const res = await as('rad').get(`/fhir/Binary/${url.split('/Binary/')[1]}`).set('Accept', 'application/dicom');
    assert.equal(res.status, 200);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, 'rest');
    assert.deepEqual(codes(ev.resource.subtype), ['read', 'ITI-68', '110106']);
    assert.equal(ev.action, 'R');
    const client = ev.resource.agent!.find((a) => a.who?.identifier?.value === 'viewer')!;
    assert.deepEqual(codes(client.type?.coding), ['110152'], 'client receives data: Destination Role ID');
  });

  test('RAD-107 WADO-RS: DCM 110104, study UID as entity.what.identifier (DCM 110180)', async () => {
    const se = m.evidence[0]!.series[0]!;
    const res = await as('rad').get(`/dicomweb/studies/${m.study.studyInstanceUid}/series/${se.uid}`);
    assert.equal(res.status, 200, res.text);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, '110104');
    assert.equal(ev.subtype_code, 'RAD-107');
    assert.equal(ev.action, 'R');
    assert.equal(ev.outcome, '0');
    const study = ev.resource.entity!.find((e) => codes(e.what?.identifier?.type?.coding).includes('110180'));
    assert.equal(study?.what?.identifier?.value, m.study.studyInstanceUid);
    assert.ok(ev.entity_refs.includes(`Patient/${patientId}`));
    const missing = await as('rad').get(`/dicomweb/studies/1.2.3.999/series/1.2.3.998`);
    assert.equal(missing.status, 404);
    const ev404 = await auditFor(t.tdb.db, missing.headers['x-request-id']!);
    assert.equal(ev404.type_code, '110104');
    assert.equal(ev404.outcome, '4');
  });

  test('QIDO-RS: DCM 110112 Query, RAD-129, action E', async () => {
    const res = await as('rad').get(`/dicomweb/studies?StudyInstanceUID=${m.study.studyInstanceUid}`);
    assert.equal(res.status, 200);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, '110112');
    assert.equal(ev.subtype_code, 'RAD-129');
    assert.equal(ev.action, 'E');
    assert.ok(!JSON.stringify(ev.resource).includes(`StudyInstanceUID=${m.study.studyInstanceUid}`), 'raw query not stored');
  });

  test('STOW-RS: DCM 110107 Import, STOW-RS', async () => {
    const k = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: 'audit-stow' });
    const b = 'stowb';
    const body = Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(writeKos(k)), Buffer.from(`\r\n--${b}--\r\n`)]);
    const res = await as('tech').post('/dicomweb/studies').set('Content-Type', `multipart/related; type="application/dicom"; boundary=${b}`).send(body);
    assert.ok(res.status < 300, `${res.status} ${res.text.slice(0, 200)}`);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, '110107');
    assert.equal(ev.subtype_code, 'STOW-RS');
    assert.equal(ev.action, 'C');
  });

  test('access denied: 401 and 403 are Security Alerts (DCM 110113), outcome 4', async () => {
    const anon = await request(t.app).get('/fhir/DocumentReference?patient=x');
    const ev1 = await auditFor(t.tdb.db, anon.headers['x-request-id']!);
    assert.equal(ev1.type_code, '110113');
    assert.equal(ev1.subtype_code, 'ITI-67', 'names the attempted transaction');
    assert.equal(ev1.outcome, '4');
    assert.equal(ev1.resource.outcomeDesc, 'HTTP 401');
    const denied = await as('ref').post('/fhir/Binary').set('Content-Type', 'application/dicom').send(Buffer.from('x'));
    assert.equal(denied.status, 403);
    const ev2 = await auditFor(t.tdb.db, denied.headers['x-request-id']!);
    assert.equal(ev2.type_code, '110113');
    assert.equal(ev2.agent_who, 'ref-1');
    assert.equal(ev2.action, 'C');
  });

  test('unannotated requests still get a generic event (rest / interaction), errors outcome 4', async () => {
    const res = await as('rad').get('/fhir/Observation');
    assert.equal(res.status, 404);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, 'rest');
    assert.equal(ev.outcome, '4');
    assert.equal(ev.subtype_code, 'search-type');
    const meta = await request(t.app).get('/fhir/metadata');
    const evm = await auditFor(t.tdb.db, meta.headers['x-request-id']!);
    assert.equal(evm.subtype_code, 'capabilities');
    assert.equal(evm.outcome, '0');
  });

  test('the audit queue is visible in /metrics', async () => {
    const m = await request(t.app).get('/metrics');
    assert.match(m.text, /^audit_queue_length \d+$/m);
    assert.match(m.text, /^audit_events_written [1-9]\d*$/m);
    assert.match(m.text, /^audit_events_dropped 0$/m);
  });

  test('probes and preflight are not audited; every other request exactly once', async () => {
    const before = (await auditEvents(t.tdb.db)).length;
    await request(t.app).get('/healthz');
    await request(t.app).get('/metrics');
    await request(t.app).options('/fhir/DocumentReference').set('Origin', 'https://x.example').set('Access-Control-Request-Method', 'GET');
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await as('rad').get(`/fhir/DocumentReference?patient=${patientId}&_count=${i + 1}`)).headers['x-request-id']!);
    const rows = await waitForAudit(t.tdb.db, before + 25);
    assert.equal(rows.length, before + 25);
    for (const id of ids) await auditFor(t.tdb.db, id); // throws on duplicates
  });
});

describe('AuditEvent search (administrators)', () => {
  test('by patient, agent, type, subtype, outcome, action, entity, date; paging never loses or repeats', async () => {
    await waitForAudit(t.tdb.db, 5);
    const s = async (q: string) => {
      const res = await as('admin').get(`/fhir/AuditEvent?${q}`);
      assert.equal(res.status, 200, res.text);
      return res.body as { total: number; entry?: Array<{ resource: { id: string; subtype?: Array<{ code: string }>; agent: unknown[]; type: { code: string }; outcome: string; recorded: string } }>; link: Array<{ relation: string; url: string }> };
    };
    const all = await s('_count=1000');
    assert.ok(all.total >= 10);
    const byPatient = await s(`patient=${patientId}&_count=1000`);
    assert.ok(byPatient.total > 0 && byPatient.total < all.total);
    const byAgent = await s('agent=rad-1&_count=1000');
    assert.ok(byAgent.entry!.every((e) => JSON.stringify(e.resource.agent).includes('rad-1')));
    const wado = await s('type=http://dicom.nema.org/resources/ontology/DCM|110104');
    assert.ok(wado.total >= 2 && wado.entry!.every((e) => e.resource.type.code === '110104'));
    const iti67 = await s('subtype=urn:ihe:event-type-code|ITI-67&outcome=0');
    assert.ok(iti67.total > 0 && iti67.entry!.every((e) => e.resource.subtype!.some((c) => c.code === 'ITI-67') && e.resource.outcome === '0'));
    const denied = await s('outcome=4&action=C');
    assert.ok(denied.total >= 1);
    const study = await s(`entity=study:${m.study.studyInstanceUid}`);
    assert.ok(study.total >= 1);
    const today = new Date().toISOString().slice(0, 10);
    assert.ok((await s(`date=${today}&_count=0`)).total >= all.total, 'searches are audited too: only more');
    assert.equal((await s(`date=lt2000-01-01`)).total, 0);
    assert.ok((await s(`date=ge${today}&date=le${today}&_count=0`)).total >= all.total);
    assert.equal((await s(`date=gt${today}&_count=0`)).total, 0);
    // keyset paging
    const seen: string[] = [];
    let url: string | undefined = '/fhir/AuditEvent?_count=7';
    while (url) {
      const page = await as('admin').get(url.replace('http://gateway.test', ''));
      assert.equal(page.status, 200);
      for (const e of page.body.entry ?? []) seen.push(e.resource.id);
      url = page.body.link.find((l: { relation: string }) => l.relation === 'next')?.url;
    }
    assert.ok(seen.length >= all.total, 'paging saw every event present at the start');
    assert.equal(new Set(seen).size, seen.length, 'no event on two pages');
    // read
    const one = await as('admin').get(`/fhir/AuditEvent/${all.entry![0]!.resource.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.resourceType, 'AuditEvent');
    assert.equal((await as('admin').get('/fhir/AuditEvent/00000000-0000-4000-8000-000000000000')).status, 404);
    assert.equal((await as('admin').get('/fhir/AuditEvent?bogus=1')).status, 400);
    assert.equal((await as('admin').get('/fhir/AuditEvent?date=yesterday')).status, 400);
    assert.equal((await as('rad').get('/fhir/AuditEvent')).status, 403);
  });

  test('entity[query] holds the raw request, so an auditor sees what was asked', async () => {
    const q = `patient=${patientId}&_count=3`;
    const res = await as('rad').get(`/fhir/DocumentReference?${q}`);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    const raw = Buffer.from(ev.resource.entity!.find((e) => e.role?.code === '24')!.query!, 'base64').toString('utf8');
    assert.ok(raw.includes(`patient=${patientId}`) && raw.includes('_count=3'), raw);
  });
});

describe('validity', () => {
  test('every stored AuditEvent is valid FHIR R4 (medplum validator)', async () => {
    const rows = await waitForAudit(t.tdb.db, 10);
    const kinds = new Set(rows.map((r) => r.type_code));
    assert.ok(['rest', '110104', '110107', '110112', '110113'].every((k) => kinds.has(k)), `all kinds present: ${[...kinds]}`);
    for (const r of rows) {
      const errors = validateR4(r.resource).filter((i) => i.severity === 'error');
      assert.deepEqual(errors, [], `${r.type_code}/${r.subtype_code}: ${JSON.stringify(errors)}`);
    }
  });
});

describe('durability', () => {
  test('a new app on the same database sees the old events (restart)', async () => {
    const before = await waitForAudit(t.tdb.db, 1);
    await closeApp(t.app); // flush what is queued, as shutdown does
    const logs: string[] = [];
    const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
    const { app } = buildApp({ config: t.config, db: t.tdb.db, log, version: 'restart' });
    const res = await request(app).get(`/fhir/AuditEvent?_count=1000`).set('Authorization', `Bearer ${tok.admin}`);
    assert.equal(res.status, 200);
    const ids = new Set(res.body.entry.map((e: { resource: { id: string } }) => e.resource.id));
    for (const r of before) assert.ok(ids.has(r.id), `event ${r.id} survived`);
    await closeApp(app);
    t.app = app; // later hooks close this one
  });
});
