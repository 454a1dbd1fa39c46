/**
 * Smaller ingest behaviours a Document Source meets: the STOW-RS Retrieve URL of a stored KOS
 * answers, POST /fhir/Binary names every type it takes, truncated FHIR XML is a parse error, the
 * gateway's own XML rendering of a stored Bundle re-posts as a duplicate, configuration errors name
 * the key, _summary=count on AuditEvent.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { Fhir } from 'fhir';
import { loadConfig } from '../../src/config.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { fhirManifest, kos, multipart } from './ingest-fixtures.js';

let t: TestApp;
before(async () => {
  t = await createTestApp();
});
after(async () => t.close());

const binaryParser = (r: any, cb: (e: Error | null, b: Buffer) => void) => {
  const c: Buffer[] = [];
  r.on('data', (d: Buffer) => c.push(d));
  r.on('end', () => cb(null, Buffer.concat(c)));
};

test('STOW-RS: the Retrieve URL named for a stored KOS answers with its bytes (WADO-RS, one application/dicom part)', async () => {
  const k = kos('details-stow');
  const mp = multipart([{ body: k.bytes }]);
  const res = await request(t.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body).expect(200);
  const url = new URL(res.body['00081199'].Value[0]['00081190'].Value[0]);
  const got = await request(t.app).get(url.pathname).set('Accept', 'multipart/related; type="application/dicom"').buffer(true).parse(binaryParser).expect(200);
  assert.match(got.headers['content-type']!, /^multipart\/related; type="application\/dicom"; boundary=/);
  assert.ok(got.body.indexOf(k.bytes) > 0, 'the stored bytes, verbatim');
  await request(t.app).get(url.pathname).set('Accept', 'image/png').expect(406);
});

test('POST /fhir/Binary with an unsupported Content-Type names application/dicom among the accepted types', async () => {
  const res = await request(t.app).post('/fhir/Binary').set('Content-Type', 'text/plain').send('x').expect(415);
  assert.match(res.body.issue[0].details.text, /application\/dicom/);
});

test('truncated FHIR XML: 400 parse error (not a Bundle.type complaint)', async () => {
  const f = fhirManifest('details-xml-cut');
  const xml = new Fhir().objToXml(f.bundle);
  const res = await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+xml').send(xml.slice(0, Math.floor(xml.length / 2))).expect(400);
  assert.equal(res.body.issue[0].details.coding[0].code, 'GW_BODY_PARSE');
});

test("re-posting the gateway's own XML rendering of a stored FHIR manifest is the same document (200 duplicate, not 409)", async () => {
  const f = fhirManifest('details-xml-repost');
  const first = await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+json').send(f.json).expect(201);
  const loc = new URL(first.headers.location!).pathname;
  const xml = await request(t.app).get(loc).set('Accept', 'application/fhir+xml').expect(200);
  const again = await request(t.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+xml').send(xml.text);
  assert.equal(again.status, 200, JSON.stringify(again.body).slice(0, 300));
  assert.equal(again.headers['x-ingest-result'], 'duplicate');
});

test('a GATEWAY_CONFIG error names the key path in the file, not the environment variable', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  fs.writeFileSync(path.join(dir, 'c.yaml'), 'upstreams:\n  - name: a\n    url: not-a-url\n');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: path.join(dir, 'c.yaml'), DATABASE_URL: 'postgres://x@h/x' }), (e: Error) => /^upstreams\[0\]\.url: /.test(e.message));
  fs.rmSync(dir, { recursive: true });
});

test('AuditEvent?_summary=count: the total only, as on the other resource types', async () => {
  const res = await request(t.app).get('/fhir/AuditEvent?_summary=count').expect(200);
  assert.equal(res.body.type, 'searchset');
  assert.equal(typeof res.body.total, 'number');
  assert.equal(res.body.entry?.length ?? 0, 0);
  await request(t.app).get('/fhir/AuditEvent?_summary=text').expect(400);
});

test('U+0000 in a FHIR path or search parameter (query or POST _search body): 400 before any SQL, nothing logged as an error', async () => {
  for (const q of ['/fhir/DocumentReference?category=%00', '/fhir/DocumentReference?author.family=a%00b', '/fhir/Patient?name=%00', '/fhir/DocumentReference/a%00b', '/fhir/ImagingStudy?identifier=%00', '/fhir/AuditEvent?entity=%00', '/fhir/List?identifier=x%00', '/fhir/Endpoint/%00', '/fhir/Binary/kos-%00']) {
    const r = await request(t.app).get(q);
    assert.equal(r.status, 400, q);
    assert.equal(r.body.issue[0].details.coding[0].code, 'GW_BAD_CHARACTER', q);
  }
  const r = await request(t.app).post('/fhir/DocumentReference/_search').set('Content-Type', 'application/x-www-form-urlencoded').send('category=a%00');
  assert.equal(r.status, 400);
  await request(t.app).post('/fhir/AuditEvent/_search').set('Content-Type', 'application/x-www-form-urlencoded').send('entity=a%00').expect(400);
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual(t.logs.filter((l) => /"level":(50|60)/.test(l)).slice(0, 2), []);
});
