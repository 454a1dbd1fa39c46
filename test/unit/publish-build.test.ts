/**
 * The content creator's pure parts: DICOM JSON → manifest model (series/instance descriptors,
 * patient issuer rule, refusals, deterministic order), the streamed JSON array splitter, and the
 * QIDO-RS fingerprint that recognises an unchanged study.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestBuilder, publicationKey, PublishRefusal, type DicomJson } from '../../src/publish/build.js';
import { countsKnown, studyFingerprint } from '../../src/publish/fingerprint.js';
import { JsonArraySplitter } from '../../src/publish/source.js';

const v = (vr: string, ...Value: unknown[]): { vr: string; Value: unknown[] } => ({ vr, Value });
const OPTS = {
  retrieveUrl: 'https://gw.example/dicomweb', retrieveLocationUid: '1.2.3.99', title: { value: 'MADOTEMP001', scheme: '99IHE', meaning: 'Manifest with Description' },
  defaultTimezoneOffset: '+0100', manufacturer: 'mado-gateway',
};

function instance(series: string, sop: string, n: number, extra: DicomJson = {}): DicomJson {
  return {
    '00080016': v('UI', '1.2.840.10008.5.1.4.1.1.2'), '00080018': v('UI', sop), '00200013': v('IS', n), '0020000E': v('UI', series),
    '00100020': v('LO', 'P1'), '00100021': v('LO', 'HOSP'), '00100010': v('PN', { Alphabetic: 'Doe^Jane' }), '00080020': v('DA', '20240102'),
    '00080050': v('SH', 'ACC1'), ...extra,
  };
}

function build(issuer = true, configured?: { localNamespace?: string; universalEntityId?: string }) {
  const b = new ManifestBuilder('1.2.3', { ...OPTS, patientIdIssuer: configured });
  b.setStudy({ '0020000D': v('UI', '1.2.3'), '00081030': v('LO', 'Chest CT') });
  const drop = issuer ? {} : { '00100021': undefined };
  const s2 = b.beginSeries({ '0020000E': v('UI', '1.2.3.2'), '00080060': v('CS', 'CT'), '00200011': v('IS', 2) });
  s2(instance('1.2.3.2', '1.2.3.2.2', 2, drop));
  s2(instance('1.2.3.2', '1.2.3.2.1', 1, drop));
  const s1 = b.beginSeries({ '0020000E': v('UI', '1.2.3.1'), '00080060': v('CS', 'MR'), '00200011': v('IS', 1), '00180015': v('CS', 'HEAD') });
  s1(instance('1.2.3.1', '1.2.3.1.1', 1, { '00280008': v('IS', 4), '00080016': v('UI', '1.2.840.10008.5.1.4.1.1.4.1'), ...drop }));
  return b;
}

describe('ManifestBuilder', () => {
  it('builds series and instance descriptors in series/instance number order, Retrieve URL and Location UID on every series', () => {
    const m = build().finish('2.25.1', new Date('2026-12-07T10:00:00Z'));
    assert.deepEqual(m.evidence[0]!.series.map((s) => [s.uid, s.modality, s.number, s.numberOfInstances]), [['1.2.3.1', 'MR', 1, 1], ['1.2.3.2', 'CT', 2, 2]]);
    assert.deepEqual(m.evidence[0]!.series[1]!.instances.map((i) => i.sopInstanceUid), ['1.2.3.2.1', '1.2.3.2.2']);
    assert.equal(m.evidence[0]!.series[0]!.instances[0]!.numberOfFrames, 4);
    assert.deepEqual(m.evidence[0]!.series[0]!.bodySite, { value: '69536005', scheme: 'SCT', meaning: 'Head' });
    assert.ok(m.evidence[0]!.series.every((s) => s.retrieveUrl === OPTS.retrieveUrl && s.retrieveLocationUid === OPTS.retrieveLocationUid));
    assert.deepEqual(m.study.modalities, ['MR', 'CT']);
    assert.equal(m.study.numberOfSeries, 2);
    assert.equal(m.study.description, 'Chest CT');
    assert.equal(m.study.date, '20240102');
    assert.deepEqual(m.study.requests, [{ studyInstanceUid: '1.2.3', accession: { value: 'ACC1' }, requestedProcedureCodes: [] }]);
    assert.deepEqual(m.patient.id, { value: 'P1', issuer: { localNamespace: 'HOSP' } });
    assert.equal(m.document.contentDate, '20261207');
    assert.equal(m.document.contentTime, '110000');
    assert.equal(m.document.timezoneOffset, '+0100');
  });

  it('patient issuer: archive first, else the configured one, else refused', () => {
    assert.throws(() => build(false).finish('2.25.1', new Date()), (e: unknown) => e instanceof PublishRefusal && e.code === 'GW_PUBLISH_NO_PATIENT_ISSUER');
    const m = build(false, { localNamespace: 'CONF', universalEntityId: '1.2.9' }).finish('2.25.1', new Date());
    assert.deepEqual(m.patient.id?.issuer, { localNamespace: 'CONF', universalEntityId: '1.2.9' });
    const merged = build(true, { universalEntityId: '1.2.9' }).finish('2.25.1', new Date());
    assert.equal(merged.patient.id?.issuer?.localNamespace, 'HOSP');
    assert.equal(merged.patient.id?.issuer?.universalEntityId, '1.2.9');
  });

  it('refuses a study whose instances name different patients', () => {
    const b = new ManifestBuilder('1.2.3', OPTS);
    const s = b.beginSeries({ '0020000E': v('UI', '1.2.3.1') });
    s(instance('1.2.3.1', '1.2.3.1.1', 1));
    assert.throws(() => s(instance('1.2.3.1', '1.2.3.1.2', 2, { '00100020': v('LO', 'P2') })), (e: unknown) => e instanceof PublishRefusal && e.code === 'GW_PUBLISH_PATIENT_MISMATCH');
  });

  it('the publication key ignores the document identity and time, and key order', () => {
    const a = build().finish('2.25.1', new Date('2026-01-01T00:00:00Z'));
    const b = build().finish('2.25.2', new Date('2026-06-01T00:00:00Z'));
    assert.equal(publicationKey(a), publicationKey(b));
    const reverse = (x: unknown): unknown => Array.isArray(x) ? x.map(reverse) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).reverse().map(([k, y]) => [k, reverse(y)])) : x;
    const reordered = reverse(b) as typeof b;
    assert.equal(publicationKey(reordered), publicationKey(a));
    b.evidence[0]!.series[0]!.instances.push({ sopClassUid: '1.2', sopInstanceUid: '1.2.3.1.9' });
    assert.notEqual(publicationKey(a), publicationKey(b));
  });
});

describe('JsonArraySplitter', () => {
  it('yields each top-level object whatever the chunking, strings with braces and escapes included', () => {
    const docs = [{ a: '}{"[' }, { b: [1, { c: 'x\\"}' }] }, {}];
    const text = JSON.stringify(docs);
    for (const size of [1, 2, 3, 7, text.length]) {
      const s = new JsonArraySplitter();
      const out: unknown[] = [];
      for (let i = 0; i < text.length; i += size) for (const d of s.push(text.slice(i, i + size))) out.push(JSON.parse(d));
      assert.deepEqual(out, docs, `chunk size ${size}`);
    }
  });
});

describe('studyFingerprint', () => {
  const study = { '0020000D': v('UI', '1.2.3'), '00100020': v('LO', 'P1'), '00201208': v('IS', 3), '00081190': v('UR', 'http://a/studies/1.2.3') };
  const s1 = { '0020000E': v('UI', '1.2.3.1'), '00080060': v('CS', 'CT'), '00201209': v('IS', 2) };
  const s2 = { '0020000E': v('UI', '1.2.3.2'), '00080060': v('CS', 'MR'), '00201209': v('IS', 1) };
  const fp = (o: object, st: DicomJson, series: DicomJson[], up = 'pacs') => studyFingerprint(up, { ...OPTS, ...o }, st, series);

  it('is the same for the same records in any series order and any upstream address', () => {
    assert.equal(fp({}, study, [s1, s2]), fp({}, study, [s2, s1]));
    assert.equal(fp({}, study, [s1, s2]), fp({}, { ...study, '00081190': v('UR', 'http://b/studies/1.2.3') }, [s1, s2]));
  });

  it('changes with an instance count, a patient attribute, a series, the upstream or a build setting', () => {
    const base = fp({}, study, [s1, s2]);
    assert.notEqual(fp({}, study, [s1, { ...s2, '00201209': v('IS', 2) }]), base);
    assert.notEqual(fp({}, { ...study, '00100020': v('LO', 'P2') }, [s1, s2]), base);
    assert.notEqual(fp({}, study, [s1]), base);
    assert.notEqual(fp({}, study, [s1, s2], 'other'), base);
    assert.notEqual(fp({ retrieveUrl: 'https://other.example/dicomweb' }, study, [s1, s2]), base);
    assert.notEqual(fp({ patientIdIssuer: { localNamespace: 'X' } }, study, [s1, s2]), base);
  });

  it('is only used when every series record carries its instance count', () => {
    assert.equal(countsKnown([s1, s2]), true);
    assert.equal(countsKnown([s1, { '0020000E': v('UI', '1.2.3.2') }]), false);
    assert.equal(countsKnown([]), false);
  });
});
