/**
 * QIDO-RS (RAD-129) from the manifest index: matching, ranges, wildcards, lists, includefield,
 * paging with the server maximum, default return keys, visibility (current manifests only, no
 * rejected instances, patient filter inside the SQL), and 400/406 on bad requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { QIDO_MAX_LIMIT } from '../../src/dicomweb/qido.js';
import { searchIndex, visibleInstances } from '../../src/store/imaging-index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { rejectInstance, seedManifest, testUid } from '../helpers/dicomweb-seed.js';

let t: TestApp;
const A = { study: testUid(), se: [testUid(), testUid()], sop: [testUid(), testUid(), testUid()] };
const B = { study: testUid(), se: [testUid()], sop: [testUid()] };
const C = { study: testUid(), se: [testUid()], sop: [testUid(), testUid()] };
const D = { study: testUid(), se: [testUid()], sop: [testUid()] }; // entered-in-error
const E = { study: testUid(), se: [testUid()], sop: [testUid()] }; // all instances rejected
const ALL = [A, B, C].map((x) => x.study);

type Ds = Record<string, { vr: string; Value?: unknown[] }>;

async function qido(path: string, status = 200): Promise<Ds[]> {
  const r = await request(t.app).get(`/dicomweb${path}`).set('Accept', 'application/dicom+json');
  assert.equal(r.status, status, `${path}: ${r.text}`);
  if (status !== 200) return [];
  assert.equal(r.headers['content-type'], 'application/dicom+json; charset=utf-8');
  return JSON.parse(r.text) as Ds[];
}

const uids = (list: Ds[], tag = '0020000D') => list.map((d) => d[tag]!.Value![0] as string).sort();

before(async () => {
  t = await createTestApp({ PUBLIC_BASE_URL: 'https://gw.example.org' });
  const db = t.tdb.db;
  await seedManifest(db, {
    study: A.study,
    patientId: 'pat-1',
    patientName: 'Doe^Jane',
    patientIdValue: 'P1',
    patientIdIssuer: 'H1',
    birthDate: '19700101',
    sex: 'F',
    studyDate: '20240102',
    studyTime: '101500',
    description: 'MR brain with contrast',
    accession: 'ACC1',
    accessionIssuer: 'RIS-A',
    studyId: 'S-A',
    series: [
      { uid: A.se[0]!, modality: 'CT', description: 'Axial', instances: [{ sop: A.sop[0]! }, { sop: A.sop[1]!, frames: 12, sopClass: '1.2.840.10008.5.1.4.1.1.2' }] },
      { uid: A.se[1]!, modality: 'MR', instances: [{ sop: A.sop[2]! }] },
    ],
  });
  await seedManifest(db, { study: B.study, patientId: 'pat-2', patientName: 'Smith^John', patientIdValue: 'P1', patientIdIssuer: 'H2', studyDate: '20230510', accession: 'ACC2', series: [{ uid: B.se[0]!, modality: 'US', instances: [{ sop: B.sop[0]! }] }] });
  await seedManifest(db, { study: C.study, patientId: 'pat-3', patientName: 'doe^john', patientIdValue: 'P2', studyDate: '20220101', series: [{ uid: C.se[0]!, modality: 'CT', instances: [{ sop: C.sop[0]! }, { sop: C.sop[1]! }] }] });
  await seedManifest(db, { study: D.study, status: 'entered-in-error', patientName: 'Doe^Jane', patientIdValue: 'P1', studyDate: '20240102', series: [{ uid: D.se[0]!, modality: 'CT', instances: [{ sop: D.sop[0]! }] }] });
  await seedManifest(db, { study: E.study, patientName: 'Doe^Jane', patientIdValue: 'P1', series: [{ uid: E.se[0]!, modality: 'CT', instances: [{ sop: E.sop[0]! }] }] });
  await rejectInstance(db, E.study, E.se[0]!, E.sop[0]!);
  await rejectInstance(db, C.study, C.se[0]!, C.sop[1]!);
});

after(async () => {
  await t.close();
});

describe('QIDO-RS studies', () => {
  it('lists visible studies only (current manifest, not fully rejected), newest first, PS3.18 default keys', async () => {
    const r = await qido('/studies');
    assert.deepEqual(r.map((d) => d['0020000D']!.Value![0]), [A.study, B.study, C.study]);
    const a = r[0]!;
    for (const tag of ['00080005', '00080020', '00080030', '00080050', '00080061', '00080090', '00081190', '00100010', '00100020', '00100030', '00100040', '0020000D', '00200010', '00201206', '00201208']) {
      assert.ok(a[tag], `default key ${tag}`);
    }
    assert.deepEqual(Object.keys(a), [...Object.keys(a)].sort(), 'attributes sorted by tag');
    assert.deepEqual(a['00081190']!.Value, [`https://gw.example.org/dicomweb/studies/${A.study}`]);
    assert.deepEqual(a['00100010']!.Value, [{ Alphabetic: 'Doe^Jane' }]);
    assert.deepEqual(a['00080061']!.Value, ['CT', 'MR']);
    assert.deepEqual(a['00100021']!.Value, ['H1']);
    assert.deepEqual(a['00201206']!.Value, [2]);
    assert.deepEqual(a['00201208']!.Value, [3]);
    assert.equal(a['00080090']!.Value, undefined, 'type 2 unknown: present, empty');
    const c = r[2]!;
    assert.deepEqual(c['00201208']!.Value, [1], 'rejected instance not counted');
  });

  it('PatientID with and without IssuerOfPatientID; PatientName wildcards case-insensitive', async () => {
    assert.deepEqual(uids(await qido('/studies?PatientID=P1')), [A.study, B.study].sort());
    assert.deepEqual(uids(await qido('/studies?PatientID=P1&IssuerOfPatientID=H1')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?00100020=P1&00100021=H2')), [B.study]);
    assert.deepEqual(uids(await qido('/studies?PatientName=doe*')), [A.study, C.study].sort());
    assert.deepEqual(uids(await qido('/studies?PatientName=D%3Fe%5EJANE')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?PatientName=doe')), []);
    assert.deepEqual(uids(await qido('/studies?PatientName=*')), ALL.slice().sort());
    assert.deepEqual(uids(await qido('/studies?PatientName=100%25_')), [], 'LIKE metacharacters are literal');
  });

  it('StudyDate / StudyTime ranges (a-b, -b, a-, exact)', async () => {
    assert.deepEqual(uids(await qido('/studies?StudyDate=20230101-20231231')), [B.study]);
    assert.deepEqual(uids(await qido('/studies?StudyDate=-20221231')), [C.study]);
    assert.deepEqual(uids(await qido('/studies?StudyDate=20240101-')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?StudyDate=20240102')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?StudyDate=20240102&StudyTime=1000-1100')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?StudyTime=1100-')), []);
    await qido('/studies?StudyDate=2024-01-02', 400);
    await qido('/studies?StudyDate=yesterday', 400);
  });

  it('ModalitiesInStudy, StudyInstanceUID lists (comma / backslash), AccessionNumber (+issuer), StudyDescription', async () => {
    assert.deepEqual(uids(await qido('/studies?ModalitiesInStudy=MR')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?ModalitiesInStudy=US,MR')), [A.study, B.study].sort());
    assert.deepEqual(uids(await qido('/studies?ModalitiesInStudy=US%5CCT')), ALL.slice().sort());
    assert.deepEqual(uids(await qido(`/studies?StudyInstanceUID=${A.study},${C.study}`)), [A.study, C.study].sort());
    assert.deepEqual(uids(await qido(`/studies?StudyInstanceUID=${A.study}%5C${B.study}`)), [A.study, B.study].sort());
    assert.deepEqual(uids(await qido(`/studies?StudyInstanceUID=${D.study}`)), [], 'entered-in-error is invisible');
    assert.deepEqual(uids(await qido('/studies?AccessionNumber=ACC1')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?AccessionNumber=ACC1&IssuerOfAccessionNumberSequence.LocalNamespaceEntityID=RIS-A')), [A.study]);
    assert.deepEqual(uids(await qido('/studies?AccessionNumber=ACC1&00080051.00400031=RIS-B')), []);
    assert.deepEqual(uids(await qido('/studies?StudyDescription=*brain*')), [A.study]);
    assert.deepEqual(uids(await qido(`/studies?SeriesInstanceUID=${A.se[1]}`)), [A.study], 'series key at study level');
    assert.deepEqual(uids(await qido('/studies?fuzzymatching=true&PatientID=P2')), [C.study]);
  });

  it('includefield, includefield=all; matched attributes returned', async () => {
    const [a] = await qido(`/studies?StudyInstanceUID=${A.study}&includefield=StudyDescription,00100021`);
    assert.deepEqual(a!['00081030']!.Value, ['MR brain with contrast']);
    const [all] = await qido(`/studies?StudyInstanceUID=${A.study}&includefield=all`);
    assert.deepEqual(all!['00081030']!.Value, ['MR brain with contrast']);
    assert.deepEqual((all!['00080051']!.Value![0] as Ds)['00400031']!.Value, ['RIS-A']);
    assert.equal(all!['0020000E'], undefined, 'series attributes are not study attributes');
    const [u] = await qido(`/studies?StudyInstanceUID=${A.study}&includefield=UnknownButHarmless`);
    assert.ok(u);
  });

  it('limit / offset; Warning 299 only when the server maximum truncated the result', async () => {
    const p1 = await request(t.app).get('/dicomweb/studies?limit=2');
    assert.equal(JSON.parse(p1.text).length, 2);
    assert.equal(p1.headers.warning, undefined);
    const p2 = await qido('/studies?limit=2&offset=2');
    assert.deepEqual(p2.map((d) => d['0020000D']!.Value![0]), [C.study]);
    assert.deepEqual(await qido('/studies?offset=10'), []);
    // more than the maximum: insert QIDO_MAX_LIMIT extra visible studies in one statement
    await t.tdb.db.raw(`
      with s as (select g, '1.2.3.' || g as uid, 'bulk-' || g as mid from generate_series(1, ${QIDO_MAX_LIMIT}) g),
      m as (insert into manifest (id, sop_instance_uid, native_format, content, content_type, sha256, size, status, study_instance_uid, model, reference_count)
            select mid, '1.2.4.' || g, 'kos', '\\x00', 'application/dicom', 'x', 1, 'current', uid, '{}'::jsonb, 1 from s returning id),
      st as (insert into imaging_study (manifest_id, study_instance_uid, patient_name, study_date, number_of_series, number_of_instances)
            select mid, uid, 'Bulk^Patient', '19990101', 1, 1 from s returning 1)
      insert into imaging_series (manifest_id, study_instance_uid, series_instance_uid, modality, number_of_instances, sop_instance_uids, sop_class_uids, instance_numbers, frame_counts)
      select mid, uid, uid || '.1', 'OT', 1, array[uid || '.1.1'], array['1.2.840.10008.5.1.4.1.1.7'], array[null::int], array[null::int] from s`);
    const capped = await request(t.app).get('/dicomweb/studies?limit=5000');
    assert.equal(JSON.parse(capped.text).length, QIDO_MAX_LIMIT);
    assert.match(capped.headers.warning, /^299 gw\.example\.org "The number of results exceeded the maximum supported by the server/);
    const unlimited = await request(t.app).get('/dicomweb/studies');
    assert.ok(unlimited.headers.warning);
    const bulk = await qido('/studies?PatientName=Bulk*&limit=3&offset=5');
    assert.equal(bulk.length, 3);
  });

  it('no match → 200 []; bad parameters → 400 with a clear message; unsupported Accept → 406', async () => {
    assert.deepEqual(await qido('/studies?PatientID=nobody'), []);
    for (const q of ['?NoSuchAttribute=1', '?StudyInstanceUID=1.02', '?limit=-1', '?limit=abc', '?offset=x', '?Modality=ct;drop', '?fuzzymatching=maybe', '?PatientID=a&PatientID=b', '?includefield=../../etc']) {
      const r = await request(t.app).get(`/dicomweb/studies${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.code, 'GW_QIDO_BAD_PARAM');
      assert.ok(r.body.message.length > 10);
    }
    assert.equal((await request(t.app).get('/dicomweb/studies/not-a-uid/series')).status, 400);
    assert.equal((await request(t.app).get('/dicomweb/studies').set('Accept', 'multipart/related; type="application/dicom+xml"')).status, 406);
    assert.equal((await request(t.app).get('/dicomweb/studies').set('Accept', 'application/json')).status, 200);
  });
});

describe('QIDO-RS series and instances', () => {
  it('/studies/{s}/series, /series (with study attributes), Modality and SeriesInstanceUID matching', async () => {
    const s = await qido(`/studies/${A.study}/series`);
    assert.deepEqual(uids(s, '0020000E'), A.se.slice().sort());
    const ct = s.find((d) => d['00080060']!.Value![0] === 'CT')!;
    assert.deepEqual(ct['00201209']!.Value, [2]);
    assert.deepEqual(ct['00081190']!.Value, [`https://gw.example.org/dicomweb/studies/${A.study}/series/${A.se[0]}`]);
    assert.equal(ct['00100020'], undefined, 'study attributes are not repeated under /studies/{s}/series');
    const all = await qido('/series?Modality=CT&PatientName=*o*');
    assert.deepEqual(uids(all, '0020000E'), [A.se[0]!, C.se[0]!].sort());
    assert.ok(all.every((d) => d['00100020'] && d['0020000D']), '/series includes study attributes');
    assert.deepEqual(uids(await qido(`/series?SeriesInstanceUID=${A.se[1]},${B.se[0]}`), '0020000E'), [A.se[1]!, B.se[0]!].sort());
    assert.deepEqual(await qido(`/studies/${A.study}/series?StudyInstanceUID=${B.study}`), []);
    assert.deepEqual(await qido(`/studies/${D.study}/series`), []);
    assert.deepEqual(await qido(`/studies/${E.study}/series`), [], 'a series whose instances are all rejected is not listed');
    assert.deepEqual(uids(await qido('/series?Modality=CT'), '0020000E'), [A.se[0]!, C.se[0]!].sort(), 'nor found by /series');
    const [c] = await qido(`/series?SeriesInstanceUID=${C.se[0]}`);
    assert.deepEqual(c!['00201209']!.Value, [1], 'rejected instance not counted in the series');
    assert.deepEqual([c!['00201206']!.Value, c!['00201208']!.Value], [[1], [1]], 'nor in its study');
  });

  it('/studies/{s}/series/{se}/instances, /studies/{s}/instances, /instances; rejected instances never listed', async () => {
    const i = await qido(`/studies/${A.study}/series/${A.se[0]}/instances`);
    assert.deepEqual(uids(i, '00080018'), [A.sop[0]!, A.sop[1]!].sort());
    const mf = i.find((d) => d['00080018']!.Value![0] === A.sop[1])!;
    assert.deepEqual(mf['00280008']!.Value, [12]);
    assert.deepEqual(mf['00080016']!.Value, ['1.2.840.10008.5.1.4.1.1.2']);
    assert.deepEqual(mf['00081190']!.Value, [`https://gw.example.org/dicomweb/studies/${A.study}/series/${A.se[0]}/instances/${A.sop[1]}`]);
    assert.equal(mf['0020000E'], undefined);
    const si = await qido(`/studies/${A.study}/instances`);
    assert.equal(si.length, 3);
    assert.ok(si.every((d) => d['0020000E'] && !d['00100020']), 'series attributes, not study attributes');
    assert.deepEqual(uids(await qido(`/studies/${C.study}/instances`), '00080018'), [C.sop[0]!]);
    const g = await qido(`/instances?SOPInstanceUID=${A.sop[2]}`);
    assert.equal(g.length, 1);
    assert.ok(g[0]!['00100020'] && g[0]!['0020000E']);
    assert.deepEqual(await qido(`/instances?SOPInstanceUID=${E.sop[0]}`), []);
    assert.deepEqual(uids(await qido(`/instances?SOPClassUID=1.2.840.10008.5.1.4.1.1.2`), '00080018'), [A.sop[1]!]);
    assert.deepEqual(uids(await qido(`/studies/${A.study}/instances?Modality=MR`), '00080018'), [A.sop[2]!]);
  });
});

describe('visibility rules in the SQL (patient filter)', () => {
  it('searchIndex and visibleInstances apply the patient filter inside the query', async () => {
    const db = t.tdb.db;
    const only1 = await searchIndex(db, { all: false, patientIds: ['pat-1'] }, { level: 'study', criteria: {}, limit: 10, offset: 0 });
    assert.deepEqual(only1.map((r) => r.study), [A.study]);
    const none = await searchIndex(db, { all: false, patientIds: [] }, { level: 'instance', criteria: {}, limit: 10, offset: 0 });
    assert.deepEqual(none, []);
    assert.equal((await visibleInstances(db, { all: false, patientIds: ['pat-2'] }, A.study)).length, 0);
    assert.equal((await visibleInstances(db, { all: false, patientIds: ['pat-1'] }, A.study)).length, 3);
    assert.equal((await visibleInstances(db, { all: true }, C.study)).length, 1, 'rejected instance excluded');
    assert.equal((await visibleInstances(db, { all: true }, D.study)).length, 0, 'entered-in-error excluded');
  });
});
