/**
 * A Document Source and a Document Consumer written by others (fhir-kit-client) against the gateway
 * with a real Orthanc upstream: publish a FHIR-native manifest (ITI-65) → find it (ITI-67) →
 * retrieve both forms (ITI-68; the KOS form passes dciodvfy) → follow every WADO-RS Endpoint
 * address the gateway hands out (/fhir/Endpoint, ImagingStudy, the ITI-68 FHIR manifest, the
 * Retrieve URL of the KOS it writes): each names PUBLIC_BASE_URL and answers through the gateway.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'fhir-kit-client';
import { readKos, syntheticManifest } from '../../src/dicom/index.js';
import { manifestToFhirBundle } from '../../src/fhir/mapping/index.js';
import type { Manifest } from '../../src/model/manifest.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { CONFIG, provideBundle } from './ingest-fixtures.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/dicom');
const fx = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as {
  study: string; patientId: string; issuer: string; patientName: string; studyDate: string; accession: string;
  instances: Array<{ file: string; series: string; seriesNumber: number; modality: string; sop: string; sopClass: string; number: number; frames: number; referenced: boolean }>;
};
const referenced = fx.instances.filter((i) => i.referenced);
const seriesUids = [...new Set(referenced.map((i) => i.series))];
const CI = process.env.CI === 'true';
const haveDciodvfy = spawnSync('sh', ['-c', 'command -v dciodvfy']).status === 0;
/** dciodvfy errors tolerated for MADO CP-2595 content the 2022 dicom3tools tables do not know (as test/unit/kos-write.test.ts). */
const TOLERATED = [/^Error - Unrecognized enumerated value <(NUM|DATE|TIME)> for value 1 of attribute <Value Type>$/, /^Error - Attribute with an even group number is not a recognized standard attribute - \(0x0040,0xe012\)/];

const started = await startOrthanc();
const skip = 'skip' in started ? started.skip : false;
const orthanc = 'skip' in started ? undefined : (started as Orthanc);

/** The fixture study as a FHIR-native MADO manifest; "ACME" as Retrieve Location (not a UID) and an over-long description, as the guide's examples have. */
function manifest(dicomweb: string): Manifest {
  const m = syntheticManifest({ series: 2, instancesPerSeries: 1, seed: 'mhd-consumer' });
  m.patient = { id: { value: fx.patientId, issuer: { localNamespace: fx.issuer } }, otherIds: [], name: { alphabetic: fx.patientName }, birthDate: '19700101', sex: 'F' };
  m.study = { ...m.study, studyInstanceUid: fx.study, date: fx.studyDate, time: '101500', description: 'A study description that is much longer than the sixty-four characters LO allows', accession: { value: fx.accession }, requests: [{ studyInstanceUid: fx.study, accession: { value: fx.accession }, requestedProcedureCodes: [] }], modalities: ['OT', 'CT'], numberOfSeries: 2 };
  m.evidence = [{
    studyInstanceUid: fx.study,
    series: seriesUids.map((se) => {
      const inst = referenced.filter((i) => i.series === se);
      return { uid: se, modality: inst[0]!.modality, number: inst[0]!.seriesNumber, retrieveUrl: dicomweb, retrieveLocationUid: 'ACME', numberOfInstances: inst.length, instances: inst.map((i) => ({ sopClassUid: i.sopClass, sopInstanceUid: i.sop, number: i.number })) };
    }),
  }];
  return m;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

describe('MHD consumer against the gateway with a real Orthanc upstream', { skip }, () => {
  let t: TestApp;
  let server: http.Server;
  let base: string;
  let client: any;
  let fhirDocRef: any;
  let kosDocRef: any;

  before(async () => {
    for (const i of fx.instances) await orthanc!.upload(fs.readFileSync(path.join(FIX, i.file)));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await createTestApp({ DICOMWEB_UPSTREAM_URL: orthanc!.dicomweb, PUBLIC_BASE_URL: base });
    server = http.createServer(t.app);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    client = new Client({ baseUrl: `${base}/fhir` });
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await t?.close();
    await orthanc?.stop();
  });

  it('fhir-kit-client: publish (ITI-65) → search (ITI-67) → retrieve both formats (ITI-68); the KOS passes dciodvfy', async () => {
    const bundle = manifestToFhirBundle(manifest(orthanc!.dicomweb), { publicBaseUrl: 'http://source.example', defaults: CONFIG.documentDefaults }) as any;
    const tx = provideBundle([{ fhir: bundle }]);
    tx.entry[1].resource.masterIdentifier = bundle.identifier;
    const resp = await client.transaction({ body: tx });
    assert.equal(resp.type, 'transaction-response');
    assert.deepEqual(resp.entry.map((e: any) => e.response.status), ['201 Created', '201 Created', '201 Created']);
    const found = await client.search({ resourceType: 'DocumentReference', searchParams: { 'patient.identifier': `${fx.issuer}|${fx.patientId}`, status: 'current' } });
    assert.equal(found.entry.length, 2);
    const docs = found.entry.map((e: any) => e.resource);
    fhirDocRef = docs.find((d: any) => d.content[0].attachment.contentType === 'application/fhir+json');
    kosDocRef = docs.find((d: any) => d.content[0].attachment.contentType === 'application/dicom');
    const fhirUrl = new URL(fhirDocRef.content[0].attachment.url);
    const doc = await client.read({ resourceType: 'Bundle', id: fhirUrl.pathname.split('/').pop() });
    assert.equal(doc.type, 'document');
    // The KOS form: served as DICOM through the FHIR → KOS path the CLI uses.
    const kos = await fetch(kosDocRef.content[0].attachment.url, { headers: { accept: 'application/dicom' } });
    assert.equal(kos.status, 200);
    assert.equal(kos.headers.get('content-type'), 'application/dicom');
    const bytes = Buffer.from(await kos.arrayBuffer());
    const back = readKos(bytes);
    assert.equal(back.kind, 'manifest');
    assert.ok(back.manifest!.evidence[0]!.series.every((s) => s.retrieveUrl === `${base}/dicomweb`));
    if (!haveDciodvfy && CI) assert.fail('dciodvfy missing under CI=true');
    if (haveDciodvfy) {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mhd-kos-')), 'kos.dcm');
      fs.writeFileSync(file, bytes);
      const v = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
      const errors = `${v.stdout}\n${v.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('Error') && !TOLERATED.some((re) => re.test(l)));
      assert.deepEqual(errors, []);
    }
  });

  it('every Endpoint address handed out names PUBLIC_BASE_URL and answers WADO-RS metadata through the gateway', async () => {
    const addresses: string[] = [];
    const eps = await client.search({ resourceType: 'Endpoint', searchParams: { 'connection-type': 'dicom-wado-rs' } });
    addresses.push(...eps.entry.map((e: any) => e.resource.address));
    const studies = await client.search({ resourceType: 'ImagingStudy', searchParams: { identifier: `urn:dicom:uid|urn:oid:${fx.study}`, _include: 'ImagingStudy:endpoint' } });
    const study = studies.entry.find((e: any) => e.resource.resourceType === 'ImagingStudy').resource;
    for (const s of study.series) for (const ref of s.endpoint) addresses.push((await client.read({ resourceType: 'Endpoint', id: ref.reference.split('/').pop() })).address);
    addresses.push(...studies.entry.filter((e: any) => e.resource.resourceType === 'Endpoint').map((e: any) => e.resource.address));
    for (const d of [fhirDocRef, kosDocRef]) {
      const m = await (await fetch(d.content[0].attachment.url, { headers: { accept: 'application/fhir+json' } })).json();
      addresses.push(...m.entry.filter((e: any) => e.resource.resourceType === 'Endpoint' && e.resource.connectionType?.code === 'dicom-wado-rs').map((e: any) => e.resource.address));
    }
    assert.ok(addresses.length >= 5);
    for (const a of addresses) {
      assert.equal(a, `${base}/dicomweb`);
      for (const se of seriesUids) {
        const r = await fetch(`${a}/studies/${fx.study}/series/${se}/metadata`, { headers: { accept: 'application/dicom+json' } });
        assert.equal(r.status, 200, `${a} ${se}`);
        assert.ok((await r.json()).length >= 1);
      }
    }
  });
});
