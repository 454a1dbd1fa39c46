/** Manifest model ⇄ FHIR (pure): structure, R4 + MADO validity, determinism, DocumentReferences, round trip. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fhirToManifest, issuesToOperationOutcome, manifestEndpoints, manifestToDocumentReferences, manifestToFhirBundle, dicomToFhirDateTime, fhirToDicomDateTime } from '../../src/fhir/mapping/index.js';
import { validateFhirResource, validateR4 } from '../../src/fhir/validate.js';
import { endpointId, manifestResourceIds, patientId } from '../../src/model/ids.js';
import { CTX, manifest101, manifestRich } from '../fixtures/fhir/sample-manifests.js';
import { normalize } from '../fixtures/fhir/normalize.js';
import { randomManifest } from '../fixtures/fhir/random-manifest.js';

type J = Record<string, any>;
const errors = (issues: { severity: string }[]) => issues.filter((i) => i.severity === 'error');
const res = (b: J, t: string): J[] => b.entry.map((e: J) => e.resource).filter((r: J) => r.resourceType === t);

test('bundle and each resource pass validateResource + MADO checks', () => {
  for (const m of [manifest101(), manifestRich()]) {
    const b = manifestToFhirBundle(m, CTX) as J;
    assert.deepEqual(errors(validateFhirResource(b)), []);
    for (const e of b.entry) assert.deepEqual(errors(validateR4(e.resource)), [], e.resource.resourceType);
    const d = manifestToDocumentReferences(m, CTX, { status: 'current', nativeFormat: 'kos', date: '2026-11-23T21:00:00Z', lastUpdated: '2026-11-23T21:00:00.000Z' });
    assert.deepEqual(validateFhirResource(d.kos), []);
    assert.deepEqual(validateFhirResource(d.fhir), []);
  }
});

test('document Bundle shape (IG FHIR manifest)', () => {
  const m = manifestRich();
  const b = manifestToFhirBundle(m, CTX) as J;
  const ids = manifestResourceIds(m.document.sopInstanceUid);
  assert.equal(b.type, 'document');
  assert.equal(b.id, ids.bundle);
  assert.deepEqual(b.identifier, { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4.5.6.7.1' });
  assert.equal(b.timestamp, '2024-01-02T23:59:59.123456-05:00');
  assert.equal(b.entry[0].resource.resourceType, 'Composition');
  for (const e of b.entry) assert.match(e.fullUrl, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(b.entry.map((e: J) => e.fullUrl)).size, b.entry.length);
  // every reference inside the document resolves to an entry
  const urls = new Set(b.entry.map((e: J) => e.fullUrl));
  const refs = JSON.stringify(b).match(/"reference":"([^"]+)"/g)!.map((s) => s.slice(13, -1));
  for (const r of refs) assert.ok(urls.has(r), r);
  const [is] = res(b, 'ImagingStudy');
  assert.deepEqual(is!.identifier[0], { type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110180', display: 'Study Instance UID' }] }, system: 'urn:dicom:uid', value: 'urn:oid:1.2.3.4.5.6.7.2' });
  assert.equal(is!.started, '2024-01-02T12:30:00-05:00');
  assert.equal(is!.numberOfInstances, 3);
  assert.equal(is!.series[0].instance[0].extension[0].valueInteger, 120);
  assert.equal(is!.series[1].instance[0].title, 'Significant images');
  assert.deepEqual(is!.series[1].instance[0].sopClass, { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.88.59' });
  // endpoints: one per (URL, location); location-only → http://notspecified + data-absent-reason
  const eps = res(b, 'Endpoint');
  const wado = eps.filter((e) => e.connectionType.code === 'dicom-wado-rs');
  assert.equal(wado.length, 2);
  const noUrl = wado.find((e) => e.id === endpointId(undefined, '1.2.3.4.200'))!;
  assert.equal(noUrl.address, 'http://notspecified');
  assert.equal(noUrl._address.extension[0].valueCode, 'unknown');
  const viewer = eps.find((e) => e.connectionType.code === 'ihe-iid')!;
  assert.equal(viewer.address, 'https://viewer.example/open?study=1.2.3.4.5.6.7.2&x=<y>');
  assert.deepEqual(is!.endpoint, [{ reference: b.entry.find((e: J) => e.resource === viewer).fullUrl, type: 'Endpoint' }]);
  // ServiceRequests (group case: 2 accessions) and Patient identifiers
  assert.equal(res(b, 'ServiceRequest').length, 2);
  const [pat] = res(b, 'Patient');
  assert.equal(pat!.id, patientId(m.patient));
  assert.deepEqual(pat!.identifier.map((i: J) => i.system), ['urn:oid:1.2.3.4.100', 'urn:oid:1.2.250.1.213.1.4.8']);
  assert.deepEqual(pat!.name[0], { text: 'Dr Jane Q Smith III', family: 'Smith', given: ['Jane', 'Q'], prefix: ['Dr'], suffix: ['III'] });
  const [org] = res(b, 'Organization');
  assert.deepEqual(org!.identifier, [{ system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4.99' }]);
  assert.equal(org!.name, 'St. Elsewhere');
});

test('one endpoint shared by series with the same (URL, location) pair', () => {
  const b = manifestToFhirBundle(manifest101(), CTX) as J;
  assert.equal(res(b, 'Endpoint').filter((e: J) => e.connectionType.code === 'dicom-wado-rs').length, 1);
  const [is] = res(b, 'ImagingStudy');
  assert.equal(is!.series[0].endpoint[0].reference, is!.series[1].endpoint[0].reference);
});

test('manifestEndpoints (what the store indexes) = the Endpoint entries of the Bundle, viewer included', () => {
  let withViewer = 0;
  for (const [i, m] of [manifest101(), manifestRich(), ...Array.from({ length: 60 }, (_, k) => randomManifest(k))].entries()) {
    const eps = manifestEndpoints(m, CTX) as J[];
    assert.deepEqual(eps, res(manifestToFhirBundle(m, CTX) as J, 'Endpoint'), `manifest ${i}`);
    assert.ok(eps.length >= 1);
    if (eps.some((e) => e.connectionType?.code !== 'dicom-wado-rs')) withViewer++;
  }
  assert.ok(withViewer > 0, 'some manifests carry a viewer endpoint');
});

test('narrative is escaped XHTML', () => {
  const b = manifestToFhirBundle(manifestRich(), CTX) as J;
  const div: string = b.entry[0].resource.text.div;
  assert.match(div, /^<div xmlns="http:\/\/www.w3.org\/1999\/xhtml">/);
  assert.ok(div.includes('Chest &lt;CT&gt;'));
  assert.ok(!div.includes('<CT>'));
  const sec: string = b.entry[0].resource.section[1].text.div;
  assert.ok(sec.includes('https://pacs.example/dicom-web'));
});

test('deterministic: same manifest + ctx ⇒ byte-identical JSON', () => {
  const a = JSON.stringify(manifestToFhirBundle(manifestRich(), CTX));
  const b = JSON.stringify(manifestToFhirBundle(manifestRich(), CTX));
  assert.equal(a, b);
  const o = { status: 'current' as const, nativeFormat: 'fhir' as const };
  assert.equal(JSON.stringify(manifestToDocumentReferences(manifestRich(), CTX, o)), JSON.stringify(manifestToDocumentReferences(manifestRich(), CTX, o)));
});

test('DocumentReferences (IG MHD envelope, D13, D23–D29)', () => {
  const m = manifestRich();
  const ids = manifestResourceIds(m.document.sopInstanceUid);
  const { kos, fhir } = manifestToDocumentReferences(m, CTX, { status: 'superseded', nativeFormat: 'kos', date: '2026-11-23T21:00:00Z' }) as unknown as { kos: J; fhir: J };
  assert.equal(kos.id, ids.kosDocRef);
  assert.equal(fhir.id, ids.fhirDocRef);
  assert.equal(kos.status, 'superseded');
  assert.equal(kos.date, '2026-11-23T21:00:00Z');
  assert.equal(kos.content[0].attachment.url, `http://127.0.0.1:8080/fhir/Binary/${ids.binary}`);
  assert.equal(kos.content[0].attachment.contentType, 'application/dicom');
  assert.deepEqual(kos.content[0].format, { system: 'http://dicom.nema.org/resources/ontology/DCMUID', code: '1.2.840.10008.5.1.4.1.1.88.59', display: 'Key Object Selection Document' });
  assert.equal(fhir.content[0].attachment.url, `http://127.0.0.1:8080/fhir/Bundle/${ids.bundle}`);
  assert.equal(fhir.content[0].attachment.contentType, 'application/fhir+json');
  assert.equal(fhir.content[0].format.code, 'urn:ihe:rad:MADO:fhir-manifest:2026');
  assert.equal(fhir.content[0].extension[0].extension[0].valueCanonical, 'https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoFhirBundle');
  assert.equal(kos.content[0].extension, undefined);
  for (const d of [kos, fhir]) {
    assert.deepEqual(d.masterIdentifier, { type: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDIdentifierTypes', code: 'uniqueId', display: 'UniqueId' }] }, system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4.5.6.7.1' });
    assert.deepEqual(d.identifier[0], d.masterIdentifier);
    assert.equal(d.subject.reference, `Patient/${patientId(m.patient)}`);
    assert.equal(d.subject.identifier.system, 'urn:oid:1.2.3.4.100');
    assert.equal(d.context.period.start, '2024-01-02T12:30:00-05:00');
    assert.equal(d.content[0].attachment.creation, '2024-01-02T23:59:59.123456-05:00');
    assert.equal(d.content[0].attachment.language, 'en');
    assert.equal(d.context.related[0].identifier.value, 'urn:oid:1.2.3.4.5.6.7.2');
    assert.equal(d.context.related[1].identifier.value, 'A1');
    assert.deepEqual(d.extension[0].valueCodeableConcept.coding.map((c: J) => c.code), ['CT', 'KO']);
    assert.equal(d.extension[1].extension[0].valueCodeableConcept.coding[0].code, '67734004');
    assert.deepEqual(d.context.event.map((e: J) => e.coding[0].code), ['CT', 'KO', '67734004']);
    assert.equal(d.context.facilityType.coding[0].code, '79491001');
    assert.equal(d.context.practiceSetting.coding[0].code, '394914008');
    assert.deepEqual(d.contained.map((c: J) => c.resourceType), ['Organization', 'Device', 'Patient']);
  }
  assert.deepEqual(kos.relatesTo, [{ code: 'transforms', target: { reference: `DocumentReference/${ids.fhirDocRef}`, type: 'DocumentReference' } }]);
  assert.deepEqual(fhir.relatesTo, [{ code: 'transforms', target: { reference: `DocumentReference/${ids.kosDocRef}`, type: 'DocumentReference' } }]);
});

test('ids are valid FHIR ids and stable', () => {
  const ids = manifestResourceIds('2.25.57007867845839123962305187603289084537');
  for (const v of Object.values(ids)) if (typeof v === 'string') assert.match(v, /^[A-Za-z0-9\-.]{1,64}$/);
  assert.match(ids.serviceRequest(3), /^[A-Za-z0-9\-.]{1,64}$/);
  assert.equal(ids.bundle, manifestResourceIds('2.25.57007867845839123962305187603289084537').bundle);
  assert.notEqual(endpointId('http://a', '1.2'), endpointId('http://a', undefined));
});

test('DA/TM/offset ⇄ dateTime keeps precision and shifts into the manifest offset', () => {
  assert.equal(dicomToFhirDateTime('20220822', '083117.658', '+0100', '+0000'), '2022-08-22T08:31:17.658+01:00');
  assert.equal(dicomToFhirDateTime('20220822', undefined, '+0100', '+0000'), '2022-08-22');
  assert.equal(dicomToFhirDateTime('20220822', '0831', undefined, '-0500'), '2022-08-22T08:31:00-05:00');
  assert.deepEqual(fhirToDicomDateTime('2022-08-22T08:31:17.658+01:00', '+0100'), { date: '20220822', time: '083117.658', tz: '+0100' });
  assert.deepEqual(fhirToDicomDateTime('2022-08-22T23:31:17Z', '+0100'), { date: '20220823', time: '003117', tz: '+0100' });
  assert.deepEqual(fhirToDicomDateTime('2022-08-22', '+0100'), { date: '20220822' });
  assert.equal(fhirToDicomDateTime('22/08/2022', '+0100'), undefined);
});

test('model → FHIR → model preserves every mapped value (hand-built + 200 seeded manifests)', () => {
  const cases = [manifest101(), manifestRich(), ...Array.from({ length: 200 }, (_, i) => randomManifest(1000 + i))];
  for (const [i, m] of cases.entries()) {
    const b = manifestToFhirBundle(m, CTX);
    const r = fhirToManifest(JSON.parse(JSON.stringify(b)));
    assert.deepEqual(errors(r.issues), [], `case ${i}`);
    assert.deepEqual(normalize(r.manifest!), normalize(m), `case ${i}`);
    // R4 validity for all; the MADO profile errors only where the source has the R+ Retrieve Location UID.
    if (i < 40) {
      const complete = m.evidence.every((e) => e.series.every((s) => s.retrieveLocationUid));
      assert.deepEqual(errors(complete ? validateFhirResource(b) : validateR4(b)), [], `case ${i}`);
      const d = manifestToDocumentReferences(m, CTX, { status: 'current', nativeFormat: i % 2 ? 'kos' : 'fhir' });
      assert.deepEqual(errors(validateFhirResource(d.kos)), [], `case ${i} kos docref`);
      assert.deepEqual(errors(validateFhirResource(d.fhir)), [], `case ${i} fhir docref`);
    }
  }
});

test('issuesToOperationOutcome: expression = [path]', () => {
  const oo = issuesToOperationOutcome([{ severity: 'error', code: 'GW_FHIR_MISSING_ELEMENT', path: 'Bundle.entry[1].resource.series[0].instance', message: 'x' }]);
  assert.equal(oo.issue[0]!.code, 'required');
  assert.deepEqual(oo.issue[0]!.expression, ['Bundle.entry[1].resource.series[0].instance']);
  assert.deepEqual(validateR4(oo), []);
  assert.equal(issuesToOperationOutcome([]).issue[0]!.severity, 'information');
});

test('fhirToManifest never throws on junk', () => {
  for (const x of [null, 1, 'x', [], {}, { resourceType: 'Bundle' }, { resourceType: 'Bundle', type: 'document', entry: 5 }, { resourceType: 'Bundle', type: 'document', entry: [{ resource: { resourceType: 'ImagingStudy', series: 'x', identifier: [{ value: 7 }] } }] }, { resourceType: 'Patient' }]) {
    const r = fhirToManifest(x);
    assert.equal(r.manifest, undefined);
    assert.ok(errors(r.issues).length > 0, JSON.stringify(x));
  }
});
