/**
 * Confidentiality labels (HL7 v3 Confidentiality R, V on DocumentReference.securityLabel) honoured
 * by policy (auth.confidentiality, default: radiologists only): every cell of role × label ×
 * break-glass, for FHIR (search with totals, read, ITI-68) and DICOMweb (QIDO-RS, WADO-RS) alike.
 * Above the caller's clearance a document is invisible (404, never counted); break-glass lifts it
 * and the AuditEvent is flagged.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { auditsFor } from '../helpers/audit.js';
import { createAuthTestApp, fakeArchive } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';
import { startOidcProvider, type TestIdp } from '../helpers/oidc.js';
import { kos, provideBundle, type Kos } from './ingest-fixtures.js';

const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
type Label = 'none' | 'R' | 'V';
const LABELS: Label[] = ['none', 'R', 'V'];
interface Doc { k: Kos; docRef: string; binary: string; study: string; series: string }
const docs = {} as Record<Label, Doc>;
let idp: TestIdp;
let archive: http.Server;
const careIds: string[] = [];

async function setup(extra: Record<string, unknown>): Promise<TestApp> {
  const port = (archive.address() as AddressInfo).port;
  return createAuthTestApp({ auth: { jwt: idp.jwtConfig(), breakGlass: { purposeOfUseClaim: 'purpose_of_use', value: 'BTG' }, ...extra } }, { DICOMWEB_UPSTREAM_URL: `http://127.0.0.1:${port}/dicom-web` });
}

async function ingest(t: TestApp): Promise<void> {
  const tech = await idp.token({ sub: 'tech-0', scope: 'user/*.cruds', claims: { roles: ['technologist'] } });
  for (const label of LABELS) {
    const k = docs[label].k;
    const bundle = provideBundle([{ kos: k }]);
    // ITI-65 keeps the submitted DocumentReference.securityLabel (and indexes it)
    const dr = bundle.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'DocumentReference').resource;
    if (label !== 'none') dr.securityLabel = [{ coding: [{ system: CONF, code: label }] }];
    const res = await request(t.app).post('/fhir').set('Authorization', `Bearer ${tech}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify(bundle));
    assert.equal(res.status, 200, res.text);
    const m = (await t.tdb.db('manifest').where({ sop_instance_uid: k.model.document.sopInstanceUid }).first()) as { id: string };
    const d = (await t.tdb.db('document_reference').where({ manifest_id: m.id, format: 'kos' }).first()) as { id: string; resource: { content: Array<{ attachment: { url: string } }> } };
    docs[label].docRef = d.id;
    docs[label].binary = d.resource.content[0]!.attachment.url.split('/Binary/')[1]!;
    if (label !== 'none') assert.deepEqual((d.resource as { securityLabel?: unknown }).securityLabel, [{ coding: [{ system: CONF, code: label }] }], 'label kept');
  }
  const rows = (await t.tdb.db('patient_identifier').select('system', 'value')) as Array<{ system: string; value: string }>;
  careIds.splice(0, careIds.length, ...rows.map((r) => `${r.system}|${r.value}`));
}

/** What one caller sees, through each door. */
async function visible(t: TestApp, role: string, breakGlass: boolean): Promise<Record<string, Label[]>> {
  const claims: Record<string, unknown> = { roles: [role], care_patients: careIds, ...(breakGlass ? { purpose_of_use: ['BTG'] } : {}) };
  const tok = await idp.token({ sub: `${role}-user`, scope: 'user/*.rs RAD-107', claims });
  const get = (p: string) => request(t.app).get(p).set('Authorization', `Bearer ${tok}`);
  const search = await get('/fhir/DocumentReference?_total=accurate&_count=50');
  const found = new Set((search.body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id));
  const inSearch = LABELS.filter((l) => found.has(docs[l].docRef));
  // two DocumentReferences per manifest (KOS and FHIR forms)
  assert.equal(search.body.total, 2 * inSearch.length, 'total = what is listed');
  const qido = await get('/dicomweb/studies');
  const studies = new Set((qido.body as Array<Record<string, { Value: string[] }>>).map((s) => s['0020000D']!.Value[0]));
  const out: Record<string, Label[]> = { search: inSearch, qido: LABELS.filter((l) => studies.has(docs[l].study)), read: [], iti68: [], wado: [] };
  for (const l of LABELS) {
    if ((await get(`/fhir/DocumentReference/${docs[l].docRef}`)).status === 200) out.read!.push(l);
    if ((await get(`/fhir/Binary/${docs[l].binary}`).set('Accept', 'application/dicom')).status === 200) out.iti68!.push(l);
    if ((await get(`/dicomweb/studies/${docs[l].study}/series/${docs[l].series}`)).status === 200) out.wado!.push(l);
  }
  return out;
}

before(async () => {
  idp = await startOidcProvider();
  for (const label of LABELS) {
    const k = kos(`conf-${label}`, { series: 1, perSeries: 1 });
    docs[label] = { k, docRef: '', binary: '', study: k.model.study.studyInstanceUid, series: k.model.evidence[0]!.series[0]!.uid };
  }
  archive = http.createServer(fakeArchive(() => LABELS.map((l) => docs[l].k.model)));
  await new Promise<void>((r) => archive.listen(0, '127.0.0.1', r));
});

after(async () => {
  await idp.close();
  archive.closeAllConnections();
  archive.close();
});

const expected = (cleared: Label[]) => ({ search: cleared, qido: cleared, read: cleared, iti68: cleared, wado: cleared });

describe('default policy (R and V: radiologists; break-glass lifts it)', () => {
  let t: TestApp;
  before(async () => {
    t = await setup({});
    await ingest(t);
  });
  after(() => t.close());

  const cells: Array<[string, boolean, Label[]]> = [
    ['radiologist', false, ['none', 'R', 'V']],
    ['radiologist', true, ['none', 'R', 'V']],
    ['referring', false, ['none']],
    ['referring', true, ['none', 'R', 'V']],
    ['technologist', false, ['none']],
    ['technologist', true, ['none', 'R', 'V']],
  ];
  for (const [role, bg, cleared] of cells) {
    test(`${role}${bg ? ' + break-glass' : ''} sees ${cleared.join(', ')}`, async () => {
      assert.deepEqual(await visible(t, role, bg), expected(cleared));
    });
  }

  test('break-glass that reveals a labelled document is flagged in the audit trail', async () => {
    const tok = await idp.token({ sub: 'ref-bg', scope: 'user/*.rs', claims: { roles: ['referring'], care_patients: careIds, purpose_of_use: ['BTG'] } });
    const r = await request(t.app).get(`/fhir/DocumentReference/${docs.V.docRef}`).set('Authorization', `Bearer ${tok}`);
    assert.equal(r.status, 200);
    const [ev] = await auditsFor(t.tdb.db, r.headers['x-request-id']!);
    assert.equal(ev!.break_glass, true);
    assert.equal(ev!.resource.purposeOfEvent?.[0]?.coding?.[0]?.code, 'BTG');
  });
});

describe('configured clearance: auth.confidentiality { R: [radiologist, referring], V: [radiologist] }', () => {
  let t: TestApp;
  before(async () => {
    t = await setup({ confidentiality: { R: ['radiologist', 'referring'], V: ['radiologist'] } });
    await ingest(t);
  });
  after(() => t.close());

  test('referring sees R but not V; technologist neither', async () => {
    assert.deepEqual(await visible(t, 'referring', false), expected(['none', 'R']));
    assert.deepEqual(await visible(t, 'technologist', false), expected(['none']));
    assert.deepEqual(await visible(t, 'radiologist', false), expected(['none', 'R', 'V']));
  });
});
