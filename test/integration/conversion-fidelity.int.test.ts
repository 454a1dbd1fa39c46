/**
 * Conversion fidelity through the server: a KOS whose evidence spans two studies is one
 * ImagingStudy per study in ITI-67 (study-instance-uid), ImagingStudy search/read, QIDO-RS and the
 * ITI-68 FHIR rendering, and converts back to one KOS with both; a KOS locating its series only by
 * Retrieve AE Title is accepted (FHIR and STOW-RS) with a warning; Patient?name= matches every PN group.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { readKos, writeKos } from '../../src/dicom/index.js';
import { fhirToManifest } from '../../src/fhir/mapping/index.js';
import { imagingStudyId, manifestResourceIds } from '../../src/model/ids.js';
import os from 'node:os';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { multipart } from './ingest-fixtures.js';

type J = Record<string, any>;
let t: TestApp;
before(async () => {
  t = await createTestApp();
});
after(async () => t.close());

const FIX = path.resolve(import.meta.dirname, '../fixtures/kos');
const bytes = (f: string) => fs.readFileSync(path.join(FIX, f));
const postKos = (b: Buffer) => request(t.app).post('/fhir/Binary').set('Content-Type', 'application/dicom').send(b);
const fhir = async (url: string): Promise<J> => JSON.parse((await request(t.app).get(url).set('Accept', 'application/fhir+json').expect(200)).text);

describe('evidence over two studies (multi-study.dcm)', () => {
  const m = readKos(new Uint8Array(bytes('multi-study.dcm'))).manifest!;
  const [s1, s2] = m.evidence.map((e) => e.studyInstanceUid) as [string, string];
  const sop = m.document.sopInstanceUid;
  before(async () => {
    await postKos(bytes('multi-study.dcm')).expect(201);
  });

  test('ImagingStudy search and read: one per study, each found by its own identifier only', async () => {
    for (const [uid, primary] of [[s1, true], [s2, false]] as const) {
      const b = await fhir(`/fhir/ImagingStudy?identifier=urn:dicom:uid|urn:oid:${uid}`);
      assert.equal(b.entry.length, 1, uid);
      const is = b.entry[0].resource;
      assert.equal(is.id, imagingStudyId(sop, uid, primary));
      assert.equal(is.identifier[0].value, `urn:oid:${uid}`);
      const read = await fhir(`/fhir/ImagingStudy/${is.id}`);
      assert.equal(read.identifier[0].value, `urn:oid:${uid}`);
      const byId = await fhir(`/fhir/ImagingStudy?_id=${is.id}`);
      assert.deepEqual(byId.entry.map((e: J) => e.resource.id), [is.id]);
    }
    const all = await fhir(`/fhir/ImagingStudy?patient.identifier=urn:oid:1.2.3.4.5|${m.patient.id!.value}`);
    assert.equal(all.entry.length, 2);
    // series and modality tokens belong to the manifest; each row answers for its own series
    const [se2] = m.evidence[1]!.series;
    const bySeries = await fhir(`/fhir/ImagingStudy?series=${se2!.uid}`);
    assert.deepEqual(bySeries.entry.map((e: J) => e.resource.id), [imagingStudyId(sop, s2, false)]);
    const ct = await fhir(`/fhir/ImagingStudy?modality=http://dicom.nema.org/resources/ontology/DCM|CT`);
    assert.deepEqual(ct.entry.map((e: J) => e.resource.id).sort(), [imagingStudyId(sop, s1, true), imagingStudyId(sop, s2, false)].sort(), 'both studies have a CT series');
    const mr = await fhir(`/fhir/ImagingStudy?modality=MR`);
    assert.deepEqual(mr.entry.map((e: J) => e.resource.id), [imagingStudyId(sop, s1, true)], 'only the first study has an MR series');
    await request(t.app).get(`/fhir/ImagingStudy/${imagingStudyId(sop, '1.2.3.999', false)}`).expect(404);
  });

  test('ITI-67: the manifest is found by either study; related=ImagingStudy/{second} finds it too', async () => {
    for (const uid of [s1, s2]) {
      const b = await fhir(`/fhir/DocumentReference?study-instance-uid=urn:oid:${uid}`);
      assert.equal(b.entry.length, 2, `both docrefs of the manifest for ${uid}`);
    }
    const r = await fhir(`/fhir/DocumentReference?related=ImagingStudy/${imagingStudyId(sop, s2, false)}`);
    assert.equal(r.entry.length, 2);
  });

  test('QIDO-RS: each study listed with its own series', async () => {
    for (const [uid, n] of [[s1, 2], [s2, 1]] as const) {
      const st = JSON.parse((await request(t.app).get(`/dicomweb/studies?StudyInstanceUID=${uid}`).expect(200)).text);
      assert.equal(st.length, 1);
      assert.equal(st[0]['00201206'].Value[0], n, 'NumberOfStudyRelatedSeries');
      const se = JSON.parse((await request(t.app).get(`/dicomweb/studies/${uid}/series`).expect(200)).text);
      assert.equal(se.length, n);
    }
  });

  test('ITI-68 FHIR rendering has both ImagingStudies and converts back to one KOS with both studies', async () => {
    const b = await fhir(`/fhir/Bundle/${manifestResourceIds(sop).bundle}`);
    const studies = b.entry.filter((e: J) => e.resource.resourceType === 'ImagingStudy');
    assert.deepEqual(studies.map((e: J) => e.resource.identifier[0].value), [`urn:oid:${s1}`, `urn:oid:${s2}`]);
    const back = fhirToManifest(b);
    assert.ok(back.manifest, JSON.stringify(back.issues.filter((i) => i.severity === 'error')));
    const kos = readKos(writeKos(back.manifest!)).manifest!;
    assert.deepEqual(kos.evidence.map((e) => [e.studyInstanceUid, e.series.map((s) => s.uid)]), m.evidence.map((e) => [e.studyInstanceUid, e.series.map((s) => s.uid)]));
  });
});

describe('Retrieve AE Title only (xdsi-ae-only.dcm)', () => {
  test('accepted by POST /fhir/Binary with the MADO warning, and by STOW-RS (not 409)', async () => {
    const res = await postKos(bytes('xdsi-ae-only.dcm')).expect(201);
    assert.ok(res.body.issue.some((i: J) => /Retrieve AE Title/.test(i.diagnostics ?? '') || /Retrieve AE Title/.test(i.details?.text ?? '')), JSON.stringify(res.body));
    const b = bytes('xdsi-ae-only.dcm');
    const mp = multipart([{ body: b }]);
    await request(t.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body).expect(200);
    const m = readKos(new Uint8Array(b)).manifest!;
    const bundle = await fhir(`/fhir/Bundle/${manifestResourceIds(m.document.sopInstanceUid).bundle}`);
    const names = bundle.entry.filter((e: J) => e.resource.connectionType?.code === 'dicom-dimse').map((e: J) => e.resource.name).sort();
    assert.deepEqual(names, ['ARCHIVE_1', 'ARCHIVE_2']);
  });
});

describe('Patient?name= matches every PN component group', () => {
  test('alphabetic, ideographic and phonetic', async () => {
    await postKos(bytes('names-ir87.dcm')).expect(201);
    for (const q of ['Yamada', '山田', 'やまだ', '太郎', 'たろう', '山田太郎']) {
      const b = await fhir(`/fhir/Patient?name=${encodeURIComponent(q)}`);
      assert.equal(b.entry?.length, 1, q);
      assert.equal(b.entry[0].resource.name.length, 3, q);
    }
  });
});

describe('WADO-RS routed by Retrieve AE Title (upstreams[].retrieveAeTitles)', () => {
  let app: TestApp;
  let dflt: FakeUpstream;
  let archive: FakeUpstream;
  before(async () => {
    dflt = await startFakeUpstream();
    archive = await startFakeUpstream();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ae-route-'));
    const cfg = path.join(dir, 'gateway.json');
    fs.writeFileSync(cfg, JSON.stringify({ upstreams: [{ name: 'default', url: dflt.url }, { name: 'archive', url: archive.url, retrieveAeTitles: ['ARCHIVE_2'] }] }));
    app = await createTestApp({ GATEWAY_CONFIG: cfg });
  });
  after(async () => {
    await app.close();
    await dflt.close();
    await archive.close();
  });

  test('a series naming only ARCHIVE_2 goes to that upstream, ARCHIVE_1 (not configured) to the default', async () => {
    await request(app.app).post('/fhir/Binary').set('Content-Type', 'application/dicom').send(bytes('xdsi-ae-only.dcm')).expect(201);
    const m = readKos(new Uint8Array(bytes('xdsi-ae-only.dcm'))).manifest!;
    const study = m.evidence[0]!.studyInstanceUid;
    const [s1, s2] = m.evidence[0]!.series;
    assert.deepEqual([s1!.retrieveAeTitle, s2!.retrieveAeTitle], ['ARCHIVE_1', 'ARCHIVE_2']);
    for (const s of [s1!, s2!]) {
      const sop = s.instances[0]!.sopInstanceUid;
      await request(app.app).get(`/dicomweb/studies/${study}/series/${s.uid}/instances/${sop}`).set('Accept', 'multipart/related; type="application/dicom"');
    }
    assert.ok(archive.requests.some((r) => r.url.includes(s2!.uid)), JSON.stringify(archive.requests.map((r) => r.url)));
    assert.ok(!archive.requests.some((r) => r.url.includes(s1!.uid)));
    assert.ok(dflt.requests.some((r) => r.url.includes(s1!.uid)));
    assert.ok(!dflt.requests.some((r) => r.url.includes(s2!.uid)));
  });
});
