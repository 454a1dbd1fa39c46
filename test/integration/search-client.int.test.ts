/**
 * A FHIR client written by others (fhir-kit-client) drives search → read → ITI-68 retrieve against
 * the app listening on a loopback port, JSON; XML via Accept, parsed back with the `fhir` package.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Fhir } from 'fhir';
import { Client } from 'fhir-kit-client';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { ingestFhir, ingestKos, makeManifest } from '../helpers/query-data.js';
import type { IngestResult } from '../../src/ingest/service.js';

let t: TestApp;
let server: http.Server;
let base: string;
let K: IngestResult, F: IngestResult;
const ISS = 'urn:oid:1.2.3.4.5.6.7';

before(async () => {
  server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await createTestApp({ PUBLIC_BASE_URL: base });
  server.on('request', t.app);
  K = await ingestKos(t, makeManifest({ seed: 'ck', patientId: 'CL1' }));
  F = await ingestFhir(t, makeManifest({ seed: 'cf', patientId: 'CL1' }));
  for (let i = 0; i < 3; i++) await ingestKos(t, makeManifest({ seed: `cx${i}`, patientId: 'CL1' }));
});
after(async () => {
  await new Promise((r) => server.close(r));
  await t.close();
});

test('fhir-kit-client: search (paged) → read → ITI-68 retrieve, JSON', async () => {
  const client: any = new Client({ baseUrl: `${base}/fhir` });
  const cs = await client.capabilityStatement();
  assert.ok(cs.rest[0].resource.some((r: any) => r.type === 'DocumentReference' && r.searchParam.some((p: any) => p.name === 'study-instance-uid')));
  let bundle = await client.search({ resourceType: 'DocumentReference', searchParams: { 'patient.identifier': `${ISS}|CL1`, status: 'current', _count: 4 } });
  const ids: string[] = [];
  for (;;) {
    ids.push(...bundle.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id));
    const next = bundle.link.find((l: any) => l.relation === 'next');
    if (!next) break;
    bundle = await client.nextPage({ bundle });
  }
  assert.equal(ids.length, 10);
  assert.equal(new Set(ids).size, 10);
  for (const [id, ct] of [[K.stored.kosDocRefId, 'application/dicom'], [F.stored.fhirDocRefId, 'application/fhir+json']] as const) {
    const doc = await client.read({ resourceType: 'DocumentReference', id });
    assert.equal(doc.id, id);
    const att = doc.content[0].attachment;
    assert.equal(att.contentType, ct);
    assert.ok(att.url.startsWith(`${base}/fhir/`));
    const res = await fetch(att.url, { headers: { Accept: att.contentType } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type')!.split(';')[0], ct);
    const body = Buffer.from(await res.arrayBuffer());
    if (ct === 'application/dicom') assert.equal(body.subarray(128, 132).toString('latin1'), 'DICM');
    else assert.equal(JSON.parse(body.toString('utf8')).resourceType, 'Bundle');
  }
  // The mapping function: the KOS docref's URL retrieved as FHIR, through the client's own read
  const bun = await client.read({ resourceType: 'Bundle', id: K.stored.bundleId });
  assert.equal(bun.type, 'document');
  const study = await client.search({ resourceType: 'ImagingStudy', searchParams: { identifier: `urn:dicom:uid|urn:oid:${K.stored.studyInstanceUid}` } });
  assert.equal(study.entry.length, 1);
  const pat = await client.read({ resourceType: 'Patient', id: K.stored.patientId });
  assert.equal(pat.resourceType, 'Patient');
});

test('XML over the wire: search → read → retrieve with Accept application/fhir+xml', async () => {
  const fhir = new Fhir();
  const s = await fetch(`${base}/fhir/DocumentReference?patient.identifier=${encodeURIComponent(`${ISS}|CL1`)}&status=current&_count=2`, { headers: { Accept: 'application/fhir+xml' } });
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type')!, /fhir\+xml/);
  const bundle = fhir.xmlToObj(await s.text()) as any;
  assert.equal(bundle.resourceType, 'Bundle');
  assert.equal(bundle.entry.length, 2);
  const next = bundle.link.find((l: any) => l.relation === 'next');
  assert.ok(next.url.startsWith(base));
  const id = bundle.entry[0].resource.id;
  const r = await fetch(`${base}/fhir/DocumentReference/${id}?_format=xml`);
  const doc = fhir.xmlToObj(await r.text()) as any;
  assert.equal(doc.id, id);
  const url = doc.content[0].attachment.url.replace(/\/Binary\/kos-/, '/Bundle/mado-');
  const b = await fetch(url, { headers: { Accept: 'application/fhir+xml' } });
  assert.equal(b.status, 200);
  assert.equal((fhir.xmlToObj(await b.text()) as any).resourceType, 'Bundle');
});
