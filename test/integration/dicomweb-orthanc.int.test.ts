/**
 * Interop against a real Orthanc (Debian packages): fixture instances stored in Orthanc (two series,
 * a 4-frame instance, an Implicit VR LE instance, and one extra instance the manifest does not
 * reference), a KOS referencing the others ingested through the ingest service, then every WADO-RS
 * resource fetched through the gateway and compared part by part with direct retrieval from Orthanc
 * (boundaries differ), QIDO-RS checked against the manifest, and dicomweb-client as a client.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { peekSopInstanceUid } from '../../src/dicom/peek.js';
import { syntheticManifest, writeKos } from '../../src/dicom/index.js';
import { IngestService } from '../../src/ingest/service.js';
import type { Manifest } from '../../src/model/manifest.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { splitMultipart } from '../helpers/fake-upstream.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/dicom');
interface FixtureIndex {
  study: string;
  patientId: string;
  issuer: string;
  patientName: string;
  studyDate: string;
  accession: string;
  instances: Array<{ file: string; series: string; seriesNumber: number; modality: string; sop: string; sopClass: string; number: number; frames: number; referenced: boolean }>;
}
const fx = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as FixtureIndex;
const referenced = fx.instances.filter((i) => i.referenced);
const extra = fx.instances.find((i) => !i.referenced)!;
const series = [...new Set(fx.instances.map((i) => i.series))];
const mf = fx.instances.find((i) => i.frames > 1)!;
const PUBLIC = 'http://gateway.test';
const DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

const started = await startOrthanc();
const skip = 'skip' in started ? started.skip : false;
if (skip) console.log(`# SKIP dicomweb-orthanc: ${skip}`);
const orthanc = 'skip' in started ? undefined : (started as Orthanc);

let t: TestApp;
let server: http.Server;
let gw: string;

function manifestFor(dicomweb: string): Manifest {
  const m = syntheticManifest({ series: 2, instancesPerSeries: 1, seed: 'dicomweb-orthanc' });
  m.patient = { id: { value: fx.patientId, issuer: { localNamespace: fx.issuer } }, otherIds: [{ value: fx.patientId, issuer: { localNamespace: fx.issuer } }], name: { alphabetic: fx.patientName }, birthDate: '19700101', sex: 'F' };
  m.study = { ...m.study, studyInstanceUid: fx.study, date: fx.studyDate, time: '101500', description: 'DICOMweb interop study', accession: { value: fx.accession }, requests: [{ studyInstanceUid: fx.study, accession: { value: fx.accession }, requestedProcedureCodes: [] }], modalities: ['OT', 'CT'], numberOfSeries: 2 };
  m.evidence = [
    {
      studyInstanceUid: fx.study,
      series: series.map((se) => {
        const inst = referenced.filter((i) => i.series === se);
        return {
          uid: se,
          modality: inst[0]!.modality,
          number: inst[0]!.seriesNumber,
          retrieveUrl: `${dicomweb}/studies/${fx.study}/series/${se}`,
          retrieveLocationUid: '1.2.826.0.1.3680043.10.1.1',
          retrieveAeTitle: 'ORTHANC',
          numberOfInstances: inst.length,
          instances: inst.map((i) => ({ sopClassUid: i.sopClass, sopInstanceUid: i.sop, number: i.number, numberOfFrames: i.frames > 1 ? i.frames : undefined })),
        };
      }),
    },
  ];
  return m;
}

async function get(url: string, accept?: string): Promise<{ status: number; contentType: string; body: Buffer }> {
  const r = await fetch(url, { headers: accept ? { accept } : {} });
  return { status: r.status, contentType: r.headers.get('content-type') ?? '', body: Buffer.from(await r.arrayBuffer()) };
}

/** Parts keyed by SOP Instance UID (peeked from each part). */
function partsByUid(r: { contentType: string; body: Buffer }): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const p of splitMultipart(r.body, r.contentType)) {
    const u = peekSopInstanceUid(p.body);
    assert.equal(u.kind, 'found');
    out.set((u as { uid: string }).uid, p.body);
  }
  return out;
}

function normalizeDirect(text: string): unknown[] {
  // what the gateway's rewrite does: Orthanc's base → the gateway's public DICOMweb base
  return JSON.parse(text.split(orthanc!.dicomweb).join(`${PUBLIC}/dicomweb`)) as unknown[];
}

function bySop(list: unknown[]): Map<string, unknown> {
  return new Map(list.map((d) => [((d as Record<string, { Value: string[] }>)['00080018']!.Value[0]!), d]));
}

describe('DICOMweb interop with Orthanc', { skip }, () => {
  before(async () => {
    for (const i of fx.instances) await orthanc!.upload(fs.readFileSync(path.join(FIX, i.file)));
    t = await createTestApp({ DICOMWEB_UPSTREAM_URL: orthanc!.dicomweb, PUBLIC_BASE_URL: PUBLIC });
    const svc = new IngestService({ db: t.tdb.db, config: t.config });
    const r = await svc.submitKos(writeKos(manifestFor(orthanc!.dicomweb)));
    assert.equal(r.kind, 'manifest');
    server = http.createServer(t.app);
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    gw = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicomweb`;
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await t?.close();
    await orthanc?.stop();
  });

  it('study retrieve: the referenced instances, each part identical to Orthanc\'s; the extra instance filtered out', async () => {
    const direct = partsByUid(await get(`${orthanc!.dicomweb}/studies/${fx.study}`, DICOM_ACCEPT));
    assert.equal(direct.size, fx.instances.length);
    const via = await get(`${gw}/studies/${fx.study}`, DICOM_ACCEPT);
    assert.equal(via.status, 200);
    const parts = partsByUid(via);
    assert.deepEqual([...parts.keys()].sort(), referenced.map((i) => i.sop).sort());
    for (const [uid, body] of parts) assert.ok(body.equals(direct.get(uid)!), uid);
  });

  it('series retrieve filters the extra instance; direct retrieve of it is 404; instance retrieve identical', async () => {
    const se = extra.series;
    const direct = partsByUid(await get(`${orthanc!.dicomweb}/studies/${fx.study}/series/${se}`, DICOM_ACCEPT));
    assert.ok(direct.has(extra.sop), 'Orthanc holds the extra instance');
    const via = partsByUid(await get(`${gw}/studies/${fx.study}/series/${se}`, DICOM_ACCEPT));
    assert.deepEqual([...via.keys()].sort(), referenced.filter((i) => i.series === se).map((i) => i.sop).sort());
    for (const [uid, body] of via) assert.ok(body.equals(direct.get(uid)!));
    assert.equal((await get(`${gw}/studies/${fx.study}/series/${se}/instances/${extra.sop}`, DICOM_ACCEPT)).status, 404);
    for (const i of referenced) {
      const a = partsByUid(await get(`${gw}/studies/${fx.study}/series/${i.series}/instances/${i.sop}`, DICOM_ACCEPT));
      const b = partsByUid(await get(`${orthanc!.dicomweb}/studies/${fx.study}/series/${i.series}/instances/${i.sop}`, DICOM_ACCEPT));
      assert.ok(a.get(i.sop)!.equals(b.get(i.sop)!), i.file);
    }
  });

  it('frames of the multi-frame instance match Orthanc part by part', async () => {
    const p = `/studies/${fx.study}/series/${mf.series}/instances/${mf.sop}/frames/1,3,4`;
    const accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
    const a = await get(gw + p, accept);
    const b = await get(orthanc!.dicomweb + p, accept);
    assert.equal(a.status, 200);
    const pa = splitMultipart(a.body, a.contentType).map((x) => x.body);
    const pb = splitMultipart(b.body, b.contentType).map((x) => x.body);
    assert.equal(pa.length, 3);
    assert.deepEqual(pa, pb);
    assert.equal((await get(`${gw}/studies/${fx.study}/series/${mf.series}/instances/${mf.sop}/frames/5`, accept)).status, 404);
  });

  it('metadata (instance, series, study) equals Orthanc\'s with URLs rewritten to the gateway', async () => {
    for (const i of referenced) {
      const p = `/studies/${fx.study}/series/${i.series}/instances/${i.sop}/metadata`;
      const a = await get(gw + p, 'application/dicom+json');
      assert.equal(a.status, 200);
      assert.ok(!a.body.toString().includes(orthanc!.url));
      assert.deepEqual(JSON.parse(a.body.toString()), normalizeDirect((await get(orthanc!.dicomweb + p)).body.toString()));
    }
    for (const se of series) {
      const p = `/studies/${fx.study}/series/${se}/metadata`;
      const a = bySop(JSON.parse((await get(gw + p)).body.toString()));
      const b = bySop(normalizeDirect((await get(orthanc!.dicomweb + p)).body.toString()));
      assert.deepEqual([...a.keys()].sort(), referenced.filter((i) => i.series === se).map((i) => i.sop).sort());
      for (const [uid, d] of a) assert.deepEqual(d, b.get(uid));
    }
    const st = bySop(JSON.parse((await get(`${gw}/studies/${fx.study}/metadata`)).body.toString()));
    assert.deepEqual([...st.keys()].sort(), referenced.map((i) => i.sop).sort());
  });

  it('bulkdata URI from rewritten metadata retrieves the same bytes as Orthanc\'s', async () => {
    const i = referenced[0]!;
    const p = `/studies/${fx.study}/series/${i.series}/instances/${i.sop}/metadata`;
    const ours = JSON.parse((await get(gw + p)).body.toString())[0]['7FE00010'].BulkDataURI as string;
    const theirs = JSON.parse((await get(orthanc!.dicomweb + p)).body.toString())[0]['7FE00010'].BulkDataURI as string;
    assert.ok(ours.startsWith(`${PUBLIC}/dicomweb/`));
    const a = await get(ours.replace(`${PUBLIC}/dicomweb`, gw), 'multipart/related; type="application/octet-stream"');
    const b = await get(theirs, 'multipart/related; type="application/octet-stream"');
    assert.equal(a.status, b.status);
    assert.equal(a.status, 200);
    assert.deepEqual(splitMultipart(a.body, a.contentType).map((x) => x.body), splitMultipart(b.body, b.contentType).map((x) => x.body));
  });

  it('rendered and thumbnail pass through (same bytes as Orthanc, or a clean 404/406 when Orthanc cannot; a thumbnail Orthanc lacks is a rendering)', async () => {
    const i = referenced[0]!;
    for (const what of ['rendered', 'thumbnail']) {
      for (const accept of ['image/png', 'image/jpeg']) {
        for (const p of [`/studies/${fx.study}/series/${i.series}/instances/${i.sop}/${what}`, `/studies/${fx.study}/series/${mf.series}/instances/${mf.sop}/frames/2/${what}`, `/studies/${fx.study}/series/${i.series}/${what}`, `/studies/${fx.study}/${what}`]) {
          const a = await get(gw + p, accept);
          const b = await get(orthanc!.dicomweb + p, accept);
          if (what === 'thumbnail' && b.status === 404) {
            // no thumbnail resource at Orthanc: the gateway answers with a rendering (PS3.18 §10.4.3.3.4)
            assert.ok(a.status === 200 ? a.contentType === accept : [404, 406].includes(a.status), `${p} ${accept}: gateway ${a.status} ${a.contentType}`);
            if (p.includes('/instances/')) assert.equal(a.status, (await get(orthanc!.dicomweb + p.replace(/\/thumbnail$/, '/rendered'), accept)).status);
          } else if (b.status === 200) {
            assert.equal(a.status, 200, `${p} ${accept}`);
            assert.equal(a.contentType, b.contentType);
            assert.ok(a.body.equals(b.body), `${p} ${accept}`);
          } else {
            assert.ok([404, 406].includes(a.status), `${p} ${accept}: Orthanc ${b.status}, gateway ${a.status}`);
          }
        }
      }
    }
    const png = await get(`${gw}/studies/${fx.study}/series/${i.series}/instances/${i.sop}/rendered`, 'image/png');
    assert.equal(png.status, 200);
    assert.equal(png.body.subarray(1, 4).toString(), 'PNG');
  });

  it('QIDO-RS answers from the manifest: studies, series, instances, with the gateway\'s Retrieve URL', async () => {
    const studies = JSON.parse((await get(`${gw}/studies?PatientID=${fx.patientId}&IssuerOfPatientID=${fx.issuer}`, 'application/dicom+json')).body.toString());
    assert.equal(studies.length, 1);
    assert.equal(studies[0]['0020000D'].Value[0], fx.study);
    assert.equal(studies[0]['00201206'].Value[0], 2);
    assert.equal(studies[0]['00201208'].Value[0], referenced.length);
    assert.deepEqual(studies[0]['00100010'].Value, [{ Alphabetic: fx.patientName }]);
    assert.deepEqual(studies[0]['00081190'].Value, [`${PUBLIC}/dicomweb/studies/${fx.study}`]);
    const ser = JSON.parse((await get(`${gw}/studies/${fx.study}/series`)).body.toString());
    assert.deepEqual(ser.map((s: Record<string, { Value: string[] }>) => s['0020000E']!.Value[0]).sort(), [...series].sort());
    for (const se of series) {
      const inst = JSON.parse((await get(`${gw}/studies/${fx.study}/series/${se}/instances`)).body.toString());
      assert.deepEqual(inst.map((x: Record<string, { Value: string[] }>) => x['00080018']!.Value[0]).sort(), referenced.filter((i) => i.series === se).map((i) => i.sop).sort());
    }
    const mfRow = JSON.parse((await get(`${gw}/instances?SOPInstanceUID=${mf.sop}`)).body.toString());
    assert.equal(mfRow[0]['00280008'].Value[0], 4);
    assert.equal(mfRow[0]['0020000D'].Value[0], fx.study, 'all-instances query returns study attributes too');
    assert.equal(JSON.parse((await get(`${gw}/instances?SOPInstanceUID=${extra.sop}`)).body.toString()).length, 0);
  });

  it('dicomweb-client (xhr2) works against the gateway: search, metadata, retrieve', async () => {
    const xhr2 = 'xhr2'; // untyped CommonJS module: dicomweb-client needs XMLHttpRequest first
    const { default: XHR2 } = (await import(xhr2)) as { default: unknown };
    (globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest = XHR2;
    const { api } = (await import('dicomweb-client')) as unknown as { api: { DICOMwebClient: new (o: unknown) => Record<string, (o?: unknown) => Promise<unknown>> } };
    const dw = new api.DICOMwebClient({ url: gw });
    const studies = (await dw.searchForStudies!({ queryParams: { PatientID: fx.patientId } })) as Array<Record<string, { Value: string[] }>>;
    assert.equal(studies.length, 1);
    const se = series[0]!;
    const insts = (await dw.searchForInstances!({ studyInstanceUID: fx.study, seriesInstanceUID: se })) as Array<Record<string, { Value: string[] }>>;
    const sop = insts[0]!['00080018']!.Value[0]!;
    const meta = (await dw.retrieveInstanceMetadata!({ studyInstanceUID: fx.study, seriesInstanceUID: se, sopInstanceUID: sop })) as unknown[];
    assert.equal(meta.length, 1);
    const inst = (await dw.retrieveInstance!({ studyInstanceUID: fx.study, seriesInstanceUID: se, sopInstanceUID: sop })) as ArrayBuffer;
    const direct = partsByUid(await get(`${orthanc!.dicomweb}/studies/${fx.study}/series/${se}/instances/${sop}`, DICOM_ACCEPT));
    assert.ok(Buffer.from(inst).equals(direct.get(sop)!));
    const seriesParts = (await dw.retrieveSeries!({ studyInstanceUID: fx.study, seriesInstanceUID: extra.series })) as ArrayBuffer[];
    assert.equal(seriesParts.length, referenced.filter((i) => i.series === extra.series).length);
  });
});
