/** Legacy draft form (List + ImagingStudy, decisions.md D1; fixtures/legacy-list/README.md) → manifest model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fhirToManifest, issuesToOperationOutcome } from '../../src/fhir/mapping/index.js';
import { validateR4 } from '../../src/fhir/validate.js';

const fx = (f: string) => JSON.parse(readFileSync(new URL(`../fixtures/fhir/${f}`, import.meta.url), 'utf8'));
const BASE = '1.2.840.113619.2.55.3.604688119.971.1234567890';

test('the draft example as-is → OperationOutcome naming each missing element (FHIRPath)', () => {
  const r = fhirToManifest(fx('legacy-list-incomplete.json'));
  assert.equal(r.manifest, undefined);
  const oo = issuesToOperationOutcome(r.issues);
  assert.deepEqual(validateR4(oo), []);
  const errs = oo.issue.filter((i) => i.severity === 'error').map((i) => i.expression?.[0]);
  assert.deepEqual(errs.sort(), [
    'Bundle.entry[1].resource.series[0].endpoint[0]', // Endpoint/wado-rs-endpoint not supplied
    'Bundle.entry[1].resource.series[0].instance', // no instance UIDs (numberOfInstances only)
    'Bundle.entry[1].resource.subject', // Patient/patient-example not supplied
  ]);
  const warns = oo.issue.filter((i) => i.severity === 'warning').map((i) => i.expression?.[0]);
  assert.deepEqual(warns, ['Bundle.entry[0].resource.source']); // Device/manifest-creator not supplied
  const text = oo.issue.map((i) => i.details?.text).join('\n');
  assert.match(text, /Patient "Patient\/patient-example"/);
  assert.match(text, /Endpoint "Endpoint\/wado-rs-endpoint"/);
  assert.match(text, /numberOfInstances = 150/);
  assert.match(text, /Device\/manifest-creator/);
});

test('the two draft resources sent alone also get precise findings', () => {
  const list = fhirToManifest(fx('seed-list.json'));
  assert.deepEqual(list.issues.filter((i) => i.severity === 'error').map((i) => i.path), ['List.entry[0].item']);
  const is = fhirToManifest(fx('seed-imagingstudy.json'));
  assert.deepEqual(is.issues.filter((i) => i.severity === 'error').map((i) => i.path), ['ImagingStudy.subject', 'ImagingStudy.series[0].endpoint[0]', 'ImagingStudy.series[0].instance']);
});

test('completed legacy form (collection Bundle) → manifest with the same study/series/instances', () => {
  const b = fx('legacy-list-complete.json');
  const r = fhirToManifest(b);
  assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
  const m = r.manifest!;
  assert.equal(m.study.studyInstanceUid, `${BASE}.123`);
  assert.equal(m.study.date, '20250819');
  assert.equal(m.study.time, '100000');
  assert.equal(m.document.timezoneOffset, '+0000');
  assert.equal(m.document.description, 'Emergency Imaging Review Manifest');
  assert.equal(m.document.manufacturer, 'Example Imaging Systems');
  assert.equal(m.document.institutionName, 'Example Hospital^^^^^^^^^1.3.6.1.4.1.21367.13.20.3000');
  assert.deepEqual(m.patient.id, { value: '12345', issuer: { universalEntityId: '1.3.6.1.4.1.21367.13.20.1000', universalEntityIdType: 'ISO' } });
  assert.deepEqual(m.patient.name, { alphabetic: 'DOE^JOHN' });
  assert.equal(m.patient.birthDate, '19800101');
  assert.equal(m.patient.sex, 'M');
  assert.equal(m.evidence.length, 1);
  const [s] = m.evidence[0]!.series;
  assert.equal(s!.uid, `${BASE}.789`);
  assert.equal(s!.modality, 'CT');
  assert.equal(s!.retrieveUrl, 'https://pacs.example.org/dicom-web');
  assert.equal(s!.retrieveLocationUid, '1.3.6.1.4.1.21367.13.20.2000');
  assert.equal(s!.instances.length, 150);
  assert.equal(s!.instances[0]!.sopInstanceUid, `${BASE}.101`);
  assert.equal(s!.instances[0]!.sopClassUid, '1.2.840.10008.5.1.4.1.1.2');
  // deterministic identity when the legacy form has no identifier
  assert.equal(fhirToManifest(fx('legacy-list-complete.json')).manifest!.document.sopInstanceUid, m.document.sopInstanceUid);
});

test('a collection Bundle with a bare ImagingStudy + Patient + Endpoint is accepted', () => {
  const b = fx('legacy-list-complete.json');
  b.entry = b.entry.filter((e: { resource: { resourceType: string } }) => ['ImagingStudy', 'Patient', 'Endpoint'].includes(e.resource.resourceType));
  const r = fhirToManifest(b);
  assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
  assert.equal(r.manifest!.evidence[0]!.series[0]!.instances.length, 150);
  assert.equal(r.manifest!.document.manufacturer, undefined);
});
