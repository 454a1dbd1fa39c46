/**
 * AuditEvents against the IHE MHD / BALP audit profiles: for each transaction the event claims its
 * profile in meta.profile, carries every element the profile marks required
 * (test/helpers/audit-profiles.ts transcribes them) and is valid R4 (@medplum/core validateResource);
 * one event per patient a response concerns; audit.storeQuery full | hash.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { validateR4 } from '../../src/fhir/validate.js';
import { auditFor, auditsFor, type AuditRowView } from '../helpers/audit.js';
import { profileViolations } from '../helpers/audit-profiles.js';
import { createAuthTestApp, jwtConfig, makeKeys, mint, type Keys } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';
import { kos, provideBundle } from './ingest-fixtures.js';

const MHD = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/';
const BALP = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/';
let t: TestApp;
let keys: Keys;
const tok: Record<string, string> = {};
const patients: string[] = [];
let binaryUrl = '';

const as = (who: string, app = () => t.app) => ({
  get: (p: string) => request(app()).get(p).set('Authorization', `Bearer ${tok[who]}`),
  post: (p: string) => request(app()).post(p).set('Authorization', `Bearer ${tok[who]}`),
});

function conforms(ev: AuditRowView, profile: string): void {
  assert.deepEqual(ev.resource.meta?.profile, [profile]);
  assert.deepEqual(profileViolations(ev.resource), [], `${profile}: ${JSON.stringify(ev.resource, null, 1)}`);
  const errors = validateR4(ev.resource).filter((i) => i.severity === 'error');
  assert.deepEqual(errors, [], JSON.stringify(errors));
}

before(async () => {
  keys = await makeKeys('ap1');
  t = await createAuthTestApp({ auth: { jwt: jwtConfig([keys.publicJwk]) } });
  tok.tech = await mint({ sub: 'tech-1', client_id: 'ris', roles: ['technologist'], scope: 'user/*.cruds' }, { keys });
  tok.rad = await mint({ sub: 'rad-1', client_id: 'viewer', roles: ['radiologist'], scope: 'user/*.rs', purpose_of_use: 'TREAT' }, { keys });
  for (const seed of ['ap-a', 'ap-b']) {
    const res = await as('tech').post('/fhir').set('Content-Type', 'application/fhir+json').send(JSON.stringify(provideBundle([{ kos: kos(seed) }])));
    assert.equal(res.status, 200, res.text);
  }
  const rows = (await t.tdb.db('patient').select('id').orderBy('id')) as Array<{ id: string }>;
  patients.push(...rows.map((r) => r.id));
  assert.equal(patients.length, 2);
  const dr = await as('rad').get(`/fhir/DocumentReference?patient=${patients[0]}`);
  binaryUrl = dr.body.entry.flatMap((e: { resource: { content: Array<{ attachment: { url: string } }> } }) => e.resource.content.map((c) => c.attachment.url)).find((u: string) => /\/Binary\//.test(u));
});

after(() => t.close());

describe('MHD / BALP audit profiles', () => {
  test('ITI-65 at the Recipient: 110107 Import, patient + submission set + documents', async () => {
    const res = await as('tech').post('/fhir').set('Content-Type', 'application/fhir+json').send(JSON.stringify(provideBundle([{ kos: kos('ap-c') }])));
    assert.equal(res.status, 200, res.text);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    conforms(ev, `${MHD}IHE.MHD.ProvideBundle.Audit.Recipient`);
    assert.equal(ev.type_code, '110107');
    assert.ok(ev.resource.entity!.some((e) => /^DocumentReference\//.test(e.what?.reference ?? '')), 'document entity');
    assert.ok(ev.resource.entity!.some((e) => e.role?.code === '20' && /^List\//.test(e.what?.reference ?? '')), 'submission set entity');
  });

  test('ITI-67 at the Responder: one event per patient in the results, base64 raw query', async () => {
    const res = await as('rad').get('/fhir/DocumentReference?status=current&_count=50');
    assert.equal(res.status, 200);
    const evs = await auditsFor(t.tdb.db, res.headers['x-request-id']!, 2);
    assert.ok(evs.length >= 2, 'one event per patient');
    assert.equal(new Set(evs.map((e) => e.patient_ref)).size, evs.length, 'each event names its own patient');
    for (const ev of evs) {
      conforms(ev, `${MHD}IHE.MHD.FindDocumentReferences.Audit.Responder`);
      const q = ev.resource.entity!.find((e) => e.role?.code === '24')!;
      assert.equal(Buffer.from(q.query!, 'base64').toString('utf8'), 'http://gateway.test/fhir/DocumentReference?status=current&_count=50');
    }
  });

  test('a search concerning no patient: BALP Query', async () => {
    const res = await as('rad').get('/fhir/DocumentReference?status=entered-in-error');
    assert.equal(res.status, 200);
    conforms(await auditFor(t.tdb.db, res.headers['x-request-id']!), `${BALP}IHE.BasicAudit.Query`);
  });

  test('ITI-66 at the Responder', async () => {
    const res = await as('rad').get(`/fhir/List?patient=${patients[0]}&code=submissionset`);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.total === undefined || res.body.entry?.length >= 1);
    conforms(await auditFor(t.tdb.db, res.headers['x-request-id']!), `${MHD}IHE.MHD.FindDocumentLists.Audit.Responder`);
  });

  test('ITI-68 at the Responder: document (Binary) + patient', async () => {
    const res = await as('rad').get(`/fhir/Binary/${binaryUrl.split('/Binary/')[1]}`).set('Accept', 'application/dicom');
    assert.equal(res.status, 200);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    conforms(ev, `${MHD}IHE.MHD.RetrieveDocument.Audit.Responder`);
    assert.ok(ev.resource.subtype!.some((c) => c.code === '110106'), 'DCM 110106 Export');
  });

  test('DocumentReference read: BALP PatientRead', async () => {
    const id = (await t.tdb.db('document_reference').where({ patient_id: patients[0] }).first()).id as string;
    const res = await as('rad').get(`/fhir/DocumentReference/${id}`);
    assert.equal(res.status, 200);
    conforms(await auditFor(t.tdb.db, res.headers['x-request-id']!), `${BALP}IHE.BasicAudit.PatientRead`);
  });

  test('a failed request claims no profile (BALP profiles fix outcome 0) and is valid R4', async () => {
    const res = await as('rad').get('/fhir/DocumentReference/nope');
    assert.equal(res.status, 404);
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.resource.meta?.profile, undefined);
    assert.deepEqual(validateR4(ev.resource).filter((i) => i.severity === 'error'), []);
  });
});

describe('audit.storeQuery', () => {
  test('hash: entity[query].query is base64 of "sha256:<hex>" of the raw request', async () => {
    const h = await createAuthTestApp({ auth: { jwt: jwtConfig([keys.publicJwk]) }, audit: { storeQuery: 'hash' } });
    try {
      const path = `/fhir/DocumentReference?patient=${patients[0]}`;
      const res = await as('rad', () => h.app).get(path);
      assert.equal(res.status, 200);
      const ev = await auditFor(h.tdb.db, res.headers['x-request-id']!);
      const q = Buffer.from(ev.resource.entity!.find((e) => e.role?.code === '24')!.query!, 'base64').toString('utf8');
      assert.equal(q, `sha256:${createHash('sha256').update(`http://gateway.test${path}`).digest('hex')}`);
      assert.ok(!JSON.stringify(ev.resource).includes('patient='), 'no raw query kept');
    } finally {
      await h.close();
    }
  });

  test('a wrong value stops start-up naming the key', async () => {
    await assert.rejects(createAuthTestApp({ audit: { storeQuery: 'plain' } }), /audit\.storeQuery/);
  });
});
