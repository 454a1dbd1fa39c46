/**
 * KOS reader against independent fixtures: pydicom-written KOS (scripts/fixtures/gen_kos_fixtures.py),
 * DCMTK dcmconv transfer-syntax conversions, and the IG's dcm4che 101 binary. Expected values come
 * from pydicom (scripts/fixtures/expected_values.py), never from our own reader.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readKos, readDicomIdentity, isValidUid, newUid, UID_PATTERN } from '../../src/dicom/index.js';

const DIR = join(import.meta.dirname, '../fixtures/kos');
const fixtures = readdirSync(DIR).filter((f) => f.endsWith('.dcm')).sort();

interface Expected {
  transferSyntaxUid: string; kind: string; sopInstanceUid: string; studyInstanceUid: string; title: { value: string; scheme: string | null };
  patientName: { alphabetic?: string; ideographic?: string; phonetic?: string }; patientId: string; issuerOfPatientId: string | null;
  patientUniversalEntityId: string | null; otherPatientIds: string[]; accessionNumber: string | null; timezoneOffset: string | null;
  studyDescription: string | null; seriesCount: number; instanceCount: number;
  evidence: Array<{ studyInstanceUid: string; displayUri?: string; series: Array<{ uid: string; instances: string[][]; retrieveUrl?: string;
    retrieveLocationUid?: string; retrieveAeTitle?: string; modality?: string; description?: string; numberOfInstances?: number }> }>;
}

describe('readKos: fixtures vs pydicom expected values', () => {
  for (const f of fixtures) {
    it(f, () => {
      const exp = JSON.parse(readFileSync(join(DIR, f.replace(/\.dcm$/, '.expected.json')), 'utf8')) as Expected;
      const r = readKos(readFileSync(join(DIR, f)));
      assert.equal(r.kind, exp.kind);
      const m = r.manifest;
      assert.ok(m, 'manifest parsed');
      const errors = r.issues.filter((i) => i.severity === 'error');
      if (exp.kind === 'manifest') assert.deepEqual(errors, [], 'no errors on a valid manifest');
      else assert.ok(errors.some((e) => e.code === 'GW_KOS_TITLE_NOT_MANIFEST'), 'KIN/rejection flagged as not a manifest');
      assert.equal(m.document.sopInstanceUid, exp.sopInstanceUid);
      assert.equal(m.study.studyInstanceUid, exp.studyInstanceUid);
      assert.equal(m.document.title.value, exp.title.value);
      assert.equal(m.document.title.scheme, exp.title.scheme ?? '');
      assert.deepEqual(m.patient.name ?? {}, exp.patientName);
      assert.equal(m.patient.id?.value, exp.patientId);
      assert.equal(m.patient.id?.issuer?.localNamespace, exp.issuerOfPatientId ?? undefined);
      assert.equal(m.patient.id?.issuer?.universalEntityId, exp.patientUniversalEntityId ?? undefined);
      assert.deepEqual(m.patient.otherIds.map((o) => o.value), exp.otherPatientIds);
      assert.equal(m.study.accession?.value, exp.accessionNumber ?? undefined);
      assert.equal(m.document.timezoneOffset, exp.timezoneOffset ?? undefined);
      assert.equal(m.study.description, exp.studyDescription ?? undefined);
      assert.equal(m.evidence.reduce((a, e) => a + e.series.length, 0), exp.seriesCount);
      assert.equal(m.evidence.reduce((a, e) => a + e.series.reduce((b, s) => b + s.instances.length, 0), 0), exp.instanceCount);
      assert.equal(m.evidence.length, exp.evidence.length);
      exp.evidence.forEach((ee, i) => {
        const ev = m.evidence[i]!;
        assert.equal(ev.studyInstanceUid, ee.studyInstanceUid);
        assert.equal(ev.displayUri, ee.displayUri);
        ee.series.forEach((es, j) => {
          const s = ev.series[j]!;
          assert.equal(s.uid, es.uid);
          assert.deepEqual(s.instances.map((x) => [x.sopClassUid, x.sopInstanceUid]), es.instances);
          assert.equal(s.retrieveUrl, es.retrieveUrl);
          assert.equal(s.retrieveLocationUid, es.retrieveLocationUid);
          assert.equal(s.retrieveAeTitle, es.retrieveAeTitle);
          assert.equal(s.modality, es.modality);
          assert.equal(s.description, es.description);
          assert.equal(s.numberOfInstances, es.numberOfInstances);
        });
      });
      const id = readDicomIdentity(readFileSync(join(DIR, f)));
      assert.deepEqual(id.issues, []);
      assert.equal(id.identity?.sopInstanceUid, exp.sopInstanceUid);
      assert.equal(id.identity?.transferSyntaxUid, exp.transferSyntaxUid);
    });
  }
});

describe('readKos: golden mado-kos-101.dcm (dcm4che, odd VRs)', () => {
  const r = readKos(readFileSync(join(DIR, 'mado-kos-101.dcm')));
  it('parses DOE^John, 2 series, 86 instances, retrieve URL and location', () => {
    const m = r.manifest!;
    assert.equal(r.kind, 'manifest');
    assert.equal(m.patient.name?.alphabetic, 'DOE^John');
    assert.equal(m.evidence[0]!.series.length, 2);
    assert.equal(m.evidence[0]!.series.reduce((a, s) => a + s.instances.length, 0), 86);
    assert.equal(m.evidence[0]!.series[0]!.retrieveUrl, 'http://example.com/wado');
    assert.equal(m.evidence[0]!.series[0]!.retrieveLocationUid, 'ACME');
    assert.equal(m.study.numberOfSeries, 2);
    assert.deepEqual(m.study.modalities, ['CT']);
  });
  it('is lenient: warnings, no errors, for the IG sloppiness (decisions.md D12, D19)', () => {
    const codes = new Set(r.issues.map((i) => i.code));
    assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
    for (const c of ['GW_KOS_REL_UNDERSCORE', 'GW_KOS_BAD_RETRIEVE_LOCATION', 'GW_KOS_NESTED_ROOT', 'GW_KOS_CODE_NO_SCHEME']) assert.ok(codes.has(c), c);
  });
});

describe('readKos: MADO variants', () => {
  it('MADOTEMP family, sibling instance descriptors, TEXT counts, private Display URI, 2 studies, series without library group', () => {
    const r = readKos(readFileSync(join(DIR, 'mado-madotemp.dcm')));
    const m = r.manifest!;
    assert.equal(m.evidence.length, 2);
    const s0 = m.evidence[0]!.series[0]!;
    assert.deepEqual(s0.instances.map((i) => i.number), [1, 2, 3]);
    assert.equal(s0.numberOfInstances, 3);
    assert.equal(s0.date, '20240105');
    const last = m.evidence[1]!.series[0]!;
    assert.equal(last.modality, undefined, 'no Image Library Group → descriptors absent');
    assert.equal(last.instances.length, 3);
    const codes = new Set(r.issues.map((i) => i.code));
    assert.ok(codes.has('GW_KOS_COUNT_AS_TEXT') && codes.has('GW_KOS_REL_UNDERSCORE') && codes.has('GW_KOS_MULTI_STUDY'));
  });
  it('children descriptors: instance number, frames, referenced frames; requests and other ids', () => {
    const m = readKos(readFileSync(join(DIR, 'mado-base.dcm'))).manifest!;
    const mr = m.evidence[0]!.series[1]!;
    assert.deepEqual(mr.instances[0], { sopClassUid: '1.2.840.10008.5.1.4.1.1.4.1', sopInstanceUid: mr.instances[0]!.sopInstanceUid, number: 1, numberOfFrames: 4, referencedFrameNumbers: [1, 2] });
    assert.equal(m.study.requests[0]!.placerOrderNumber, 'PO-77');
    assert.deepEqual(m.study.requests[0]!.placerIssuer, { localNamespace: 'PLACER', universalEntityId: '1.2.3.4.6', universalEntityIdType: 'ISO' });
    assert.equal(m.study.requests[0]!.fillerOrderNumber, 'FO-88');
    assert.deepEqual(m.study.requests[0]!.requestedProcedureCodes, [{ value: '24725-4', scheme: 'LN', meaning: 'CT Head' }]);
    assert.deepEqual(m.study.procedureCodes, [{ value: '24725-4', scheme: 'LN', meaning: 'CT Head' }]);
    assert.equal(m.patient.otherIds[1]!.issuer?.universalEntityId, '1.2.250.1.213.1.4.8');
    assert.equal(m.document.institutionId, '1.2.3.4.999');
    assert.equal(m.study.accession?.issuer?.universalEntityId, '1.2.3.4.100');
    assert.equal(m.evidence[0]!.series[0]!.description, 'Série 1');
  });
  it('classifies KIN, rejection note and XDS-I manifest', () => {
    assert.equal(readKos(readFileSync(join(DIR, 'kin.dcm'))).kind, 'key-image-note');
    assert.equal(readKos(readFileSync(join(DIR, 'rejection.dcm'))).kind, 'rejection-note');
    const x = readKos(readFileSync(join(DIR, 'xdsi-manifest.dcm')));
    assert.equal(x.kind, 'manifest');
    assert.ok(x.issues.some((i) => i.code === 'GW_KOS_TITLE_NOT_MADO' && i.severity === 'warning'));
  });
});

describe('UIDs', () => {
  it('newUid is a valid 2.25 UID, unique', () => {
    const a = newUid(), b = newUid();
    assert.ok(a.startsWith('2.25.') && isValidUid(a) && a !== b);
  });
  it('pattern and length', () => {
    assert.ok(UID_PATTERN.test('1.2.840.10008.1.2'));
    for (const bad of ['', '1..2', '01.2', '1.2.', 'ACME', '1.2.a', '1.' + '2'.repeat(64)]) assert.equal(isValidUid(bad), false, bad);
  });
});
