/**
 * ITI-65 as Document Sources send it: the MADO guide's own DocumentReference + Bundle pair, MHD
 * Provide Bundles with minimal and comprehensive metadata, urn:uuid fullUrls, a Patient entry;
 * what the source said comes back from ITI-67 and is searchable with the MHD parameters.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { validateR4 } from '../../src/fhir/validate.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { kos, provideBundle } from './ingest-fixtures.js';

let t: TestApp;
before(async () => {
  t = await createTestApp();
});
after(async () => t.close());

const FHIR = path.resolve(import.meta.dirname, '../fixtures/fhir');
const readJson = (f: string) => JSON.parse(fs.readFileSync(path.join(FHIR, f), 'utf8'));
const post = (b: unknown) => request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').send(b as object);
const search = (q: string) => request(t.app).get(`/fhir/DocumentReference?${q}`).expect(200);
const ids = (b: any) => (b.entry ?? []).map((e: any) => e.resource.id).sort();
const issueCodes = (e: any) => (e.response.outcome?.issue ?? []).map((i: any) => i.details.coding[0].code);

async function rowCounts(): Promise<string> {
  const r = await t.tdb.db.raw(`select (select count(*) from manifest) m, (select count(*) from document_reference) d, (select count(*) from submission_set) s, (select count(*) from manifest_token) k, (select count(*) from patient) p`);
  return JSON.stringify(r.rows[0]);
}

/** The guide's FHIR DocumentReference + its document Bundle as one ITI-65 transaction (FHIR Documents Publish Option). */
function guideTransaction(): any {
  const docref = readJson('mado-fhir-docref-101.json');
  const doc = readJson('mado-fhir-bundle-101.json');
  delete docref.id;
  return {
    resourceType: 'Bundle',
    meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.ProvideBundle'] },
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:6f1c5a3e-0b43-4f57-9d43-0b0f8c1e0a01',
        resource: {
          resourceType: 'List', status: 'current', mode: 'working', date: '2026-06-19T17:00:57+02:00',
          code: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', code: 'submissionset' }] },
          extension: [{ url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId', valueIdentifier: { value: 'urn:oid:1.2.250.1.59.40211' } }],
          identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.250.1.59.40211.22756022.9.101' }],
          entry: [{ item: { reference: 'urn:uuid:6f1c5a3e-0b43-4f57-9d43-0b0f8c1e0a02' } }],
        },
        request: { method: 'POST', url: 'List' },
      },
      { fullUrl: 'urn:uuid:6f1c5a3e-0b43-4f57-9d43-0b0f8c1e0a02', resource: docref, request: { method: 'POST', url: 'DocumentReference' } },
      { fullUrl: 'Bundle/mado-bundle--2047166866', resource: doc, request: { method: 'POST', url: 'Bundle' } },
    ],
  };
}

/** An MHD Comprehensive-style DocumentReference's metadata (ITI TF-3 Table 4.3.1-3), author contained. */
function comprehensive(dr: any): void {
  dr.securityLabel = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R', display: 'restricted' }] }];
  dr.category = [{ coding: [{ system: 'http://loinc.org', code: '18726-0', display: 'Radiology studies (set)' }] }];
  dr.contained = [
    { resourceType: 'Practitioner', id: 'auth1', name: [{ family: 'Ångström', given: ['Marie'] }] },
    { resourceType: 'Patient', id: 'srcpat', identifier: [{ system: 'urn:oid:1.2.3.99', value: 'SRC-42' }], name: [{ family: 'Source' }] },
  ];
  dr.author = [{ reference: '#auth1' }];
  dr.authenticator = { reference: '#auth1' };
  dr.description = 'Submitted description';
  dr.context = {
    event: [{ coding: [{ system: 'http://snomed.info/sct', code: '77477000', display: 'CT' }] }],
    facilityType: { coding: [{ system: 'http://snomed.info/sct', code: '22232009', display: 'Hospital' }] },
    practiceSetting: { coding: [{ system: 'http://snomed.info/sct', code: '408455009', display: 'Interventional radiology' }] },
    period: { end: '2031-01-01T00:00:00Z' },
    sourcePatientInfo: { reference: '#srcpat' },
    related: [{ identifier: { system: 'urn:oid:1.2.3.77', value: 'ORDER-9' } }],
  };
}

describe('ITI-65 interoperability', () => {
  test("the guide's FHIR DocumentReference + Bundle pair: 200, masterIdentifier = Bundle.identifier", async () => {
    const res = await post(guideTransaction()).expect(200);
    assert.deepEqual(res.body.entry.map((e: any) => e.response.status), ['201 Created', '201 Created', '201 Created']);
    const loc = res.body.entry[1].response.location as string;
    const dr = (await request(t.app).get(new URL(loc).pathname).expect(200)).body;
    // The source's category (EHDS Medical-Imaging) and its own identifier are kept.
    assert.equal(dr.category[0].coding[0].code, 'Medical-Imaging');
    assert.ok(dr.identifier.some((i: any) => i.value === 'mado-bundle--2047166866'));
    const found = await search(`identifier=http://example.org/fhir/document-ids|mado-bundle--2047166866`);
    assert.ok(ids(found.body).includes(dr.id));
    // Re-sent unchanged: every entry 200 OK, the List included.
    const again = await post(guideTransaction()).expect(200);
    assert.deepEqual(again.body.entry.map((e: any) => e.response.status), ['200 OK', '200 OK', '200 OK']);
  });

  test('masterIdentifier naming something else than the Bundle.identifier: 422 naming the entry', async () => {
    const b = guideTransaction();
    b.entry[1].resource.masterIdentifier.value = 'other-id';
    const res = await post(b).expect(422);
    assert.equal(res.body.issue[0].details.coding[0].code, 'GW_ITI65_IDENTIFIER_MISMATCH');
    assert.deepEqual(res.body.issue[0].expression, ['Bundle.entry[1].resource.masterIdentifier']);
  });

  test('dangling urn:uuid references (SubmissionSet item, List.subject, DocumentReference.subject): 422, nothing stored', async () => {
    const cases: Array<[string, (b: any) => void, string]> = [
      ['item', (b) => b.entry[0].resource.entry.push({ item: { reference: 'urn:uuid:00000000-0000-4000-8000-9999999999a1' } }), 'Bundle.entry[0].resource.entry[1].item.reference'],
      ['List.subject', (b) => (b.entry[0].resource.subject = { reference: 'urn:uuid:00000000-0000-4000-8000-9999999999a2' }), 'Bundle.entry[0].resource.subject.reference'],
      ['DocumentReference.subject', (b) => (b.entry[1].resource.subject = { reference: 'urn:oid:1.2.3.4.5' }), 'Bundle.entry[1].resource.subject.reference'],
    ];
    for (const [name, mutate, expr] of cases) {
      const before = await rowCounts();
      const b = provideBundle([{ kos: kos(`dangling-${name}`) }]);
      mutate(b);
      const res = await post(b).expect(422);
      assert.equal(res.body.issue[0].details.coding[0].code, 'GW_ITI65_REFERENCE_UNRESOLVED', name);
      assert.deepEqual(res.body.issue[0].expression, [expr], name);
      assert.equal(await rowCounts(), before, name);
    }
  });

  test('a subject naming the transaction Patient resolves; that Patient is kept as source patient, never merged', async () => {
    const k = kos('iti65-patient-entry');
    const b = provideBundle([{ kos: k }]);
    const patUrl = 'urn:uuid:00000000-0000-4000-8000-5000000000aa';
    b.entry.push({ fullUrl: patUrl, resource: { resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2.3.55', value: 'OTHER-ISSUER-1' }], name: [{ family: 'Sent' }] }, request: { method: 'POST', url: 'Patient' } });
    b.entry[1].resource.subject = { reference: patUrl };
    b.entry[0].resource.subject = { reference: patUrl };
    const res = await post(b).expect(200);
    assert.ok(issueCodes(res.body.entry[3]).includes('GW_ITI65_PATIENT_SOURCE'), JSON.stringify(res.body.entry[3]));
    const dr = (await request(t.app).get(new URL(res.body.entry[1].response.location).pathname).expect(200)).body;
    const src = dr.contained.find((c: any) => c.id === dr.context.sourcePatientInfo.reference.slice(1));
    assert.equal(src.identifier[0].value, 'OTHER-ISSUER-1');
    assert.equal(src.link[0].other.reference, dr.subject.reference);
    // The gateway's patient keeps the manifest's identity only.
    const pat = (await request(t.app).get(`/fhir/${dr.subject.reference}`).expect(200)).body;
    assert.ok(!JSON.stringify(pat).includes('OTHER-ISSUER-1'), JSON.stringify(pat));
  });

  test('comprehensive metadata: kept, served by ITI-67 and searchable (security-label, category, author, event, facility, setting, period, related)', async () => {
    const k = kos('iti65-comprehensive');
    const b = provideBundle([{ kos: k }]);
    comprehensive(b.entry[1].resource);
    const res = await post(b).expect(200);
    const id = new URL(res.body.entry[1].response.location).pathname.split('/').pop()!;
    const pid = encodeURIComponent(`${k.model.patient.id!.issuer?.localNamespace ?? ''}|${k.model.patient.id!.value}`);
    const hit = async (q: string) => ids((await search(q)).body).includes(id);
    const got = (await search(`_id=${id}`)).body.entry[0].resource;
    assert.equal(got.securityLabel[0].coding[0].code, 'R');
    assert.deepEqual(validateR4(got).filter((i) => i.severity === 'error'), []);
    assert.ok(got.author.some((a: any) => got.contained.find((c: any) => `#${c.id}` === a.reference)?.name?.[0]?.family === 'Ångström'));
    assert.ok(got.authenticator.reference);
    assert.equal(got.description, 'Submitted description');
    assert.equal(got.context.period.end, '2031-01-01T00:00:00Z');
    assert.ok(await hit('security-label=R'));
    assert.ok(await hit('security-label=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R'));
    assert.ok(!(await hit('security-label=N')));
    assert.ok(await hit('category=http://loinc.org|18726-0'));
    assert.ok(await hit('author.family=angstrom'));
    assert.ok(await hit('author.given=Mar'));
    assert.ok(await hit('event=http://snomed.info/sct|77477000'));
    assert.ok(await hit('facility=22232009'));
    assert.ok(await hit('setting=408455009'));
    assert.ok(await hit('period=ge2030-06-01'));
    assert.ok(await hit('related:identifier=urn:oid:1.2.3.77|ORDER-9'));
    assert.ok(pid);
    // Both forms of the manifest carry the labels (access control must not depend on the form).
    const kosForm = got.relatesTo.find((r: any) => r.code === 'transforms').target.reference;
    const other = (await request(t.app).get(`/fhir/${kosForm}`).expect(200)).body;
    assert.equal(other.securityLabel[0].coding[0].code, 'R');
    // A status change re-renders the docrefs: the kept metadata survives.
    await request(t.app).patch(`/fhir/DocumentReference/${id}`).set('Content-Type', 'application/json-patch+json').send([{ op: 'replace', path: '/status', value: 'entered-in-error' }]).expect(200);
    const after = (await request(t.app).get(`/fhir/DocumentReference/${id}`).expect(200)).body;
    assert.equal(after.securityLabel[0].coding[0].code, 'R');
  });

  test('a value MADO fixes stated differently: the manifest value is served, with a warning in the transaction-response', async () => {
    const k = kos('iti65-fixed');
    const b = provideBundle([{ kos: k }]);
    b.entry[1].resource.context = { period: { start: '1999-01-01T00:00:00Z' } };
    b.entry[1].resource.content[0].format = { system: 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode', code: 'urn:ihe:rad:PDF' };
    const res = await post(b).expect(200);
    const w = res.body.entry[1].response.outcome.issue.filter((i: any) => i.details.coding[0].code === 'GW_ITI65_MADO_VALUE_KEPT');
    assert.deepEqual(w.map((i: any) => i.expression[0]).sort(), ['Bundle.entry[1].resource.content[0].format', 'Bundle.entry[1].resource.context.period.start']);
    const dr = (await request(t.app).get(new URL(res.body.entry[1].response.location).pathname).expect(200)).body;
    assert.notEqual(dr.context.period.start, '1999-01-01T00:00:00Z');
  });
});
