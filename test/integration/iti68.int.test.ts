/**
 * ITI-68 Retrieve Document (MHD ITI-68) on the attachment URLs: native bytes verbatim, MADO
 * mapping function on Accept, 404 / 406 / 410, superseded still retrievable, ETag / 304.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Fhir } from 'fhir';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { ingestFhir, ingestKos, makeManifest } from '../helpers/query-data.js';
import { IngestService, parseKos, type IngestResult } from '../../src/ingest/service.js';
import { writeKos } from '../../src/dicom/index.js';

let t: TestApp;
let K: IngestResult, FH: IngestResult, S: IngestResult, X: IngestResult;

function binaryParser(res: NodeJS.ReadableStream & { setEncoding?: unknown }, cb: (err: Error | null, body: Buffer) => void) {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
}

const get = (path: string, accept?: string) => {
  const r = request(t.app).get(path).buffer(true).parse(binaryParser as never);
  return accept ? r.set('Accept', accept) : r;
};

before(async () => {
  t = await createTestApp();
  K = await ingestKos(t, makeManifest({ seed: 'K', patientId: 'R1' }));
  FH = await ingestFhir(t, makeManifest({ seed: 'FH', patientId: 'R1' }));
  S = await ingestKos(t, makeManifest({ seed: 'S', patientId: 'R1' }));
  await ingestKos(t, makeManifest({ seed: 'S2', patientId: 'R1', studyUid: S.stored.studyInstanceUid }));
  X = await ingestKos(t, makeManifest({ seed: 'X', patientId: 'R1' }));
  await new IngestService({ db: t.tdb.db, config: t.config }).updateStatus(X.stored.kosDocRefId, 'entered-in-error');
});
after(async () => t.close());

async function stored(r: IngestResult): Promise<Buffer> {
  return (await t.tdb.db.raw('select content from manifest where sop_instance_uid = ?', [r.stored.sopInstanceUid])).rows[0].content;
}

test('KOS-native Binary: byte-identical for application/dicom, */* and no Accept', async () => {
  const bytes = await stored(K);
  for (const accept of [undefined, 'application/dicom', '*/*', 'application/*', 'image/png, application/dicom;q=0.5']) {
    const res = await get(`/fhir/Binary/${K.stored.binaryId}`, accept).expect(200);
    assert.match(res.headers['content-type']!, /^application\/dicom/);
    assert.ok(Buffer.compare(res.body as Buffer, bytes) === 0, `byte-identical for Accept ${accept}`);
  }
});

test('KOS-native → FHIR (mapping function) on Accept application/fhir+json and +xml', async () => {
  const res = await request(t.app).get(`/fhir/Binary/${K.stored.binaryId}`).set('Accept', 'application/fhir+json').expect(200);
  assert.match(res.headers['content-type']!, /application\/fhir\+json/);
  assert.equal(res.body.resourceType, 'Bundle');
  assert.equal(res.body.type, 'document');
  assert.equal(res.body.id, K.stored.bundleId);
  const xml = await request(t.app).get(`/fhir/Bundle/${K.stored.bundleId}`).set('Accept', 'application/fhir+xml').expect(200);
  assert.match(xml.headers['content-type']!, /application\/fhir\+xml/);
  const back = new Fhir().xmlToObj(xml.text) as any;
  assert.equal(back.resourceType, 'Bundle');
  assert.equal(back.entry.length, res.body.entry.length);
  // Bundle URL of a KOS-native manifest, default JSON
  const b = await request(t.app).get(`/fhir/Bundle/${K.stored.bundleId}`).expect(200);
  assert.deepEqual(b.body, res.body);
});

test('FHIR-native Bundle: verbatim JSON; application/dicom → a KOS the reader accepts', async () => {
  const bytes = await stored(FH);
  const res = await get(`/fhir/Bundle/${FH.stored.bundleId}`).expect(200);
  assert.match(res.headers['content-type']!, /application\/fhir\+json/);
  assert.ok(Buffer.compare(res.body as Buffer, bytes) === 0);
  const kos = await get(`/fhir/Bundle/${FH.stored.bundleId}`, 'application/dicom').expect(200);
  assert.match(kos.headers['content-type']!, /^application\/dicom/);
  const parsed = parseKos(new Uint8Array(kos.body as Buffer), t.config);
  assert.equal(parsed.kind, 'manifest');
  if (parsed.kind === 'manifest') assert.equal(parsed.manifest.model.document.sopInstanceUid, FH.stored.sopInstanceUid);
  const viaBinary = await get(`/fhir/Binary/${FH.stored.binaryId}`).expect(200);
  assert.ok(Buffer.compare(viaBinary.body as Buffer, kos.body as Buffer) === 0, 'conversion is deterministic');
});

test('406 when nothing in Accept can be produced; 404 unknown; 410 entered-in-error; superseded 200', async () => {
  const r406 = await request(t.app).get(`/fhir/Binary/${K.stored.binaryId}`).set('Accept', 'image/png').expect(406);
  assert.equal(r406.body.issue[0].details.coding[0].code, 'GW_NOT_ACCEPTABLE');
  await request(t.app).get(`/fhir/Binary/${K.stored.binaryId}?_format=text/csv`).expect(406);
  await request(t.app).get('/fhir/Binary/kos-0000').expect(404);
  await request(t.app).get('/fhir/Binary/whatever').expect(404);
  await request(t.app).get('/fhir/Bundle/mado-0000').expect(404);
  const gone = await request(t.app).get(`/fhir/Binary/${X.stored.binaryId}`).expect(410);
  assert.equal(gone.body.issue[0].code, 'deleted');
  await request(t.app).get(`/fhir/Bundle/${X.stored.bundleId}`).expect(410);
  const sup = await get(`/fhir/Binary/${S.stored.binaryId}`).expect(200);
  assert.ok(Buffer.compare(sup.body as Buffer, await stored(S)) === 0);
});

test('ETag per representation, If-None-Match → 304, Vary: Accept', async () => {
  const a = await get(`/fhir/Binary/${K.stored.binaryId}`).expect(200);
  const b = await request(t.app).get(`/fhir/Binary/${K.stored.binaryId}`).set('Accept', 'application/fhir+json').expect(200);
  assert.ok(a.headers.etag && b.headers.etag && a.headers.etag !== b.headers.etag);
  assert.match(a.headers.vary!, /Accept/);
  assert.ok(a.headers['last-modified']);
  await request(t.app).get(`/fhir/Binary/${K.stored.binaryId}`).set('If-None-Match', a.headers.etag!).expect(304);
});

test('the docref attachment.url of each format retrieves its contentType', async () => {
  for (const id of [K.stored.kosDocRefId, K.stored.fhirDocRefId, FH.stored.kosDocRefId, FH.stored.fhirDocRefId]) {
    const d = await request(t.app).get(`/fhir/DocumentReference/${id}`).expect(200);
    const att = d.body.content[0].attachment;
    const r = await get(att.url.slice('http://gateway.test'.length), att.contentType).expect(200);
    assert.equal(r.headers['content-type']!.split(';')[0], att.contentType);
  }
  assert.ok(writeKos);
});
