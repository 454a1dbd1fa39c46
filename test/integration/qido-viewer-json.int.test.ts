/**
 * QIDO-RS DICOM JSON as viewers read it: a manifest whose Image Library names no modality (as a
 * KOS without an Image Library) still answers ModalitiesInStudy and Modality from the SOP
 * Classes; an attribute a viewer iterates is never an object without a Value; counts are always
 * numbers; PatientName is a PN object. Also the back-fill (migration 0016) of rows indexed before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { syntheticManifest, writeKos } from '../../src/dicom/index.js';
import { IngestService } from '../../src/ingest/service.js';
import type { Manifest } from '../../src/model/manifest.js';
import { BACKFILL_SERIES, BACKFILL_STUDY } from '../../migrations/20261207_0016_modalities_from_sop_classes.js';
import { sopClassModalityPairs } from '../../src/dicom/sop-class-modality.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { seedManifest, testUid } from '../helpers/dicomweb-seed.js';

type Ds = Record<string, { vr: string; Value?: unknown[] }>;
let t: TestApp;

const CT = '1.2.840.10008.5.1.4.1.1.2';
const SC = '1.2.840.10008.5.1.4.1.1.7'; // Secondary Capture: the IOD fixes no modality

/** A manifest without any modality in its Image Library; every instance of the given SOP Class. */
function noLibrary(seed: string, sopClass: string): Manifest {
  const m = syntheticManifest({ series: 2, instancesPerSeries: 2, seed });
  m.study.modalities = [];
  for (const e of m.evidence) for (const s of e.series) {
    delete s.modality;
    for (const i of s.instances) i.sopClassUid = sopClass;
  }
  return m;
}

async function qido(path: string): Promise<Ds[]> {
  const r = await request(t.app).get(`/dicomweb${path}`).set('Accept', 'application/dicom+json');
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text) as Ds[];
}

/** What a viewer's QIDO reader relies on (OHIF's DICOMweb data source reads each of these). */
function assertViewerReadable(d: Ds, where: string): void {
  for (const tag of ['00080061', '00080060']) {
    if (d[tag]) assert.ok(Array.isArray(d[tag]!.Value) && d[tag]!.Value!.length > 0, `${where}: ${tag} present without a value`);
  }
  for (const tag of ['00201206', '00201208', '00201209']) {
    if (d[tag]) assert.equal(typeof d[tag]!.Value?.[0], 'number', `${where}: ${tag} not numeric`);
  }
  const pn = d['00100010'];
  if (pn?.Value) assert.equal(typeof pn.Value[0], 'object', `${where}: PatientName not a PN object`);
}

let ctStudy: string;
let scStudy: string;
let listedStudy: string;

before(async () => {
  t = await createTestApp();
  const svc = new IngestService({ db: t.tdb.db, config: t.config });
  const ct = noLibrary('qido-viewer-ct', CT);
  const sc = noLibrary('qido-viewer-sc', SC);
  ctStudy = ct.study.studyInstanceUid;
  scStudy = sc.study.studyInstanceUid;
  const listed = noLibrary('qido-viewer-listed', CT);
  listed.study.modalities = ['US']; // the Image Library lists a study modality but no series modality
  listedStudy = listed.study.studyInstanceUid;
  for (const m of [ct, sc, listed]) assert.equal((await svc.submitKos(writeKos(m))).kind, 'manifest');
});

after(async () => {
  await t.close();
});

describe('QIDO-RS DICOM JSON for viewers', () => {
  it('ModalitiesInStudy and Modality come from the SOP Classes when the Image Library names none', async () => {
    const [s] = await qido(`/studies?StudyInstanceUID=${ctStudy}`);
    assert.deepEqual(s!['00080061'], { vr: 'CS', Value: ['CT'] });
    for (const se of await qido(`/studies/${ctStudy}/series`)) assert.deepEqual(se['00080060'], { vr: 'CS', Value: ['CT'] });
    assert.deepEqual((await qido('/studies?ModalitiesInStudy=CT')).map((d) => d['0020000D']!.Value![0]).sort(), [ctStudy, listedStudy].sort(), 'matching agrees with what is returned');
    assert.equal((await qido('/series?Modality=CT')).length, 4);
  });

  it('modalities the Image Library lists are kept, the series\' implied ones added', async () => {
    const [s] = await qido(`/studies?StudyInstanceUID=${listedStudy}`);
    assert.deepEqual(s!['00080061']!.Value, ['US', 'CT']);
  });

  it('unknowable modality (Secondary Capture): the attributes are omitted, never empty', async () => {
    const [s] = await qido(`/studies?StudyInstanceUID=${scStudy}`);
    assert.equal('00080061' in s!, false);
    for (const se of await qido(`/studies/${scStudy}/series`)) assert.equal('00080060' in se, false);
  });

  it('every study, series and instance answer (default keys and includefield=all) is viewer-readable', async () => {
    for (const path of ['/studies', '/studies?includefield=all', '/series', '/series?includefield=all', '/instances?includefield=all', `/studies/${scStudy}/series/${(await qido(`/studies/${scStudy}/series`))[0]!['0020000E']!.Value![0]}/instances`]) {
      const list = await qido(path);
      assert.ok(list.length > 0, path);
      for (const d of list) assertViewerReadable(d, path);
    }
    const [s] = await qido(`/studies?StudyInstanceUID=${ctStudy}`);
    assert.deepEqual(s!['00201206']!.Value, [2]);
    assert.deepEqual(s!['00201208']!.Value, [4]);
    assert.deepEqual(s!['00100010']!.Value, [{ Alphabetic: 'SYNTH^PATIENTqido-viewer-ct' }]);
  });

  it('rows indexed before the SOP Class rule are back-filled (migration 0016)', async () => {
    const study = testUid();
    const se = [testUid(), testUid()];
    await seedManifest(t.tdb.db, {
      study,
      modalities: [],
      patientName: 'Old^Row',
      series: [
        { uid: se[0]!, instances: [{ sop: testUid(), sopClass: SC }, { sop: testUid(), sopClass: '1.2.840.10008.5.1.4.1.1.4.1' }] },
        { uid: se[1]!, modality: 'US', instances: [{ sop: testUid(), sopClass: CT }] },
      ],
    });
    let [s] = await qido(`/studies?StudyInstanceUID=${study}`);
    assert.equal('00080061' in s!, false, 'indexed without modalities');
    const pairs = sopClassModalityPairs();
    await t.tdb.db.raw(BACKFILL_SERIES, [pairs.map((p) => p[0]), pairs.map((p) => p[1])]);
    await t.tdb.db.raw(BACKFILL_STUDY);
    [s] = await qido(`/studies?StudyInstanceUID=${study}`);
    assert.deepEqual(s!['00080061']!.Value, ['MR', 'US'], 'the series modalities');
    const series = await qido(`/studies/${study}/series`);
    assert.deepEqual(series.map((d) => d['00080060']!.Value![0]).sort(), ['MR', 'US'], 'first SOP Class that implies a modality; an Image Library modality kept');
  });
});
