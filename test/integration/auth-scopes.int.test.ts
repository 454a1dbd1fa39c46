/**
 * SMART v2 granular scopes (`<context>/<Type>.<perm>?param=value`): each form narrows results in
 * the SQL — search (totals included), read, ITI-68 and DICOMweb alike; outside the scope is a 404.
 * Tokens come from the test OpenID provider. Category, type and security label differ per manifest:
 * they are submitted with ITI-65 (the DocumentReference metadata the Recipient keeps and indexes).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import type { Manifest } from '../../src/model/manifest.js';
import { createAuthTestApp, fakeArchive } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';
import { startOidcProvider, type TestIdp } from '../helpers/oidc.js';
import { kos, provideBundle, type Kos } from './ingest-fixtures.js';

const LOINC = 'http://loinc.org';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
let idp: TestIdp;
let t: TestApp;
let archive: http.Server;
interface Doc { k: Kos; manifestId: string; docRefs: string[]; binary?: string; study: string; modality: string }
const docs: Record<'A' | 'B', Doc> = {} as never;

async function token(scope: string): Promise<string> {
  return idp.token({ sub: 'rad-1', scope, claims: { roles: ['radiologist'] } });
}
const get = async (path: string, scope: string) => request(t.app).get(path).set('Authorization', `Bearer ${await token(scope)}`);
const ids = (body: { entry?: Array<{ resource: { id: string } }> }) => new Set((body.entry ?? []).map((e) => e.resource.id));

/** Two manifests of different modalities (one series each). */
function pickKos(): [Kos, Kos] {
  const a = kos('scope-a', { series: 1, perSeries: 1 });
  for (let i = 0; i < 50; i++) {
    const b = kos(`scope-b-${i}`, { series: 1, perSeries: 1 });
    if (b.model.evidence[0]!.series[0]!.modality !== a.model.evidence[0]!.series[0]!.modality) return [a, b];
  }
  throw new Error('no second modality');
}

before(async () => {
  idp = await startOidcProvider();
  const [ka, kb] = pickKos();
  archive = http.createServer(fakeArchive(() => [ka.model, kb.model] as Manifest[]));
  await new Promise<void>((r) => archive.listen(0, '127.0.0.1', r));
  t = await createAuthTestApp({ auth: { jwt: idp.jwtConfig() } }, { DICOMWEB_UPSTREAM_URL: `http://127.0.0.1:${(archive.address() as AddressInfo).port}/dicom-web` });
  const tech = await idp.token({ sub: 'tech-1', scope: 'user/*.cruds', claims: { roles: ['technologist'] } });
  for (const [name, k] of [['A', ka], ['B', kb]] as const) {
    const bundle = provideBundle([{ kos: k }]);
    if (name === 'B') {
      // another class and type of document, labelled normal (N); A keeps the deployment defaults
      const dr = bundle.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'DocumentReference').resource;
      dr.category = [{ coding: [{ system: LOINC, code: '11528-7' }] }];
      dr.type = { coding: [{ system: LOINC, code: '55115-0' }] };
      dr.securityLabel = [{ coding: [{ system: CONF, code: 'N' }] }];
    }
    const res = await request(t.app).post('/fhir').set('Authorization', `Bearer ${tech}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify(bundle));
    assert.equal(res.status, 200, res.text);
    const m = (await t.tdb.db('manifest').where({ sop_instance_uid: k.model.document.sopInstanceUid }).first()) as { id: string };
    const drs = (await t.tdb.db('document_reference').where({ manifest_id: m.id }).select('id', 'resource')) as Array<{ id: string; resource: { content: Array<{ attachment: { url?: string } }> } }>;
    const binary = drs.flatMap((d) => d.resource.content.map((c) => c.attachment.url ?? '')).find((u) => u.includes('/Binary/'))?.split('/Binary/')[1];
    docs[name] = { k, manifestId: m.id, docRefs: drs.map((d) => d.id), binary, study: k.model.study.studyInstanceUid, modality: k.model.evidence[0]!.series[0]!.modality! };
  }
});

after(async () => {
  await t.close();
  await idp.close();
  archive.closeAllConnections();
  archive.close();
});

describe('DocumentReference granular scopes: search, totals, read', () => {
  const cases: Array<[string, string, 'A' | 'B' | 'AB']> = [
    ['category (system|code)', `user/DocumentReference.rs?category=${LOINC}|18748-4`, 'A'],
    ['category (code only)', 'user/DocumentReference.rs?category=11528-7', 'B'],
    ['type', `user/DocumentReference.rs?type=${LOINC}|55115-0`, 'B'],
    ['security-label', `user/DocumentReference.rs?security-label=${CONF}|N`, 'B'],
    ['two parameters (both must hold)', `user/DocumentReference.rs?category=${LOINC}|11528-7&type=${LOINC}|55115-0`, 'B'],
    ['comma: any of the values', `user/DocumentReference.rs?category=${LOINC}|11528-7,${LOINC}|18748-4`, 'AB'],
    ['two scopes: either', `user/DocumentReference.rs?category=${LOINC}|18748-4 user/DocumentReference.rs?type=${LOINC}|55115-0`, 'AB'],
    ['a plain scope lifts the narrowing', `user/DocumentReference.rs?category=${LOINC}|18748-4 user/DocumentReference.rs`, 'AB'],
  ];
  for (const [name, scope, sees] of cases) {
    test(`${name}: ${scope}`, async () => {
      const r = await get('/fhir/DocumentReference?_total=accurate&_count=50', scope);
      assert.equal(r.status, 200, r.text);
      const want = [...sees].flatMap((n) => docs[n as 'A' | 'B'].docRefs).sort();
      assert.deepEqual([...ids(r.body)].sort(), want);
      assert.equal(r.body.total, want.length, 'totals never count what the scope excludes');
      for (const n of ['A', 'B'] as const) {
        const read = await get(`/fhir/DocumentReference/${docs[n].docRefs[0]}`, scope);
        assert.equal(read.status, sees.includes(n) ? 200 : 404, `read ${n}`);
      }
    });
  }

  test('an unsupported parameter in the query: the scope grants nothing (fail closed) → 403', async () => {
    assert.equal((await get('/fhir/DocumentReference', 'user/DocumentReference.rs?date=ge2020')).status, 403);
    assert.equal((await get('/fhir/DocumentReference', 'user/Patient.rs?category=x')).status, 403);
  });
});

describe('ITI-68 follows the DocumentReference scope', () => {
  test('document content outside the granular scope is a 404', async () => {
    const scope = `user/DocumentReference.rs?type=${LOINC}|55115-0 user/Binary.r`;
    assert.equal((await get(`/fhir/Binary/${docs.B.binary}`, scope).then((r) => r.status)), 200);
    assert.equal((await get(`/fhir/Binary/${docs.A.binary}`, scope).then((r) => r.status)), 404);
    assert.equal((await get(`/fhir/Binary/${docs.A.binary}`, 'user/DocumentReference.rs user/Binary.r').then((r) => r.status)), 200);
  });
});

describe('ImagingStudy modality scope: FHIR and DICOMweb alike', () => {
  test('FHIR ImagingStudy search and read', async () => {
    const scope = `user/ImagingStudy.rs?modality=${docs.A.modality}`;
    const r = await get('/fhir/ImagingStudy?_total=accurate', scope);
    assert.equal(r.status, 200, r.text);
    const studies = (r.body.entry ?? []).map((e: { resource: { identifier: Array<{ value: string }> } }) => e.resource.identifier.map((i) => i.value).join());
    assert.equal(r.body.total, 1);
    assert.ok(studies[0].includes(docs.A.study));
  });

  test('QIDO-RS lists only matching studies; WADO-RS of another study is a 404', async () => {
    const scope = `user/ImagingStudy.rs?modality=${docs.A.modality}`;
    const q = await get('/dicomweb/studies', scope);
    assert.equal(q.status, 200, q.text);
    assert.deepEqual(q.body.map((s: Record<string, { Value: string[] }>) => s['0020000D']!.Value[0]), [docs.A.study]);
    const sB = docs.B.k.model.evidence[0]!.series[0]!.uid;
    const sA = docs.A.k.model.evidence[0]!.series[0]!.uid;
    assert.equal((await get(`/dicomweb/studies/${docs.B.study}/series/${sB}`, scope)).status, 404);
    assert.equal((await get(`/dicomweb/studies/${docs.A.study}/series/${sA}`, scope)).status, 200);
    // both studies with the RAD-107 scope (not narrowed)
    assert.equal((await get('/dicomweb/studies', 'RAD-107')).body.length, 2);
  });
});
