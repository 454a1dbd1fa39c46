import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';

let t: TestApp;
before(async () => {
  t = await createTestApp({ MAX_BODY_BYTES: '4096', CORS_ORIGINS: 'https://viewer.example' });
});
after(async () => t.close());

const ORIGIN = 'https://viewer.example';

test('GET /fhir/metadata: CapabilityStatement, FHIR 4.0.1, JSON and XML', async () => {
  const res = await request(t.app).get('/fhir/metadata').set('Origin', ORIGIN).expect(200);
  assert.match(res.headers['content-type']!, /application\/fhir\+json/);
  assert.equal(res.body.resourceType, 'CapabilityStatement');
  assert.equal(res.body.fhirVersion, '4.0.1');
  assert.equal(res.headers['access-control-allow-origin'], ORIGIN);
  const xml = await request(t.app).get('/fhir/metadata?_format=xml').expect(200);
  assert.match(xml.headers['content-type']!, /application\/fhir\+xml/);
  assert.match(xml.text, /<CapabilityStatement xmlns="http:\/\/hl7.org\/fhir">/);
  assert.match(xml.text, /<fhirVersion value="4.0.1"\/>/);
});

test('healthz, readyz, metrics, openapi', async () => {
  await request(t.app).get('/healthz').expect(200);
  const ready = await request(t.app).get('/readyz').expect(200);
  assert.equal(ready.body.status, 'ready');
  const m = await request(t.app).get('/metrics').expect(200);
  assert.match(m.text, /http_requests_total\{method="GET",route="\/readyz",status="200"\}/);
  assert.match(m.text, /http_request_duration_seconds_bucket/);
  assert.match(m.text, /db_pool_connections_used/);
  assert.match(m.text, /process_cpu_user_seconds_total/);
  const o = await request(t.app).get('/openapi.yaml').expect(200);
  assert.match(o.text, /^openapi: 3/);
});

function assertOutcome(res: request.Response, status: number, code: string) {
  assert.equal(res.status, status);
  assert.match(res.headers['content-type']!, /application\/fhir\+json/);
  assert.equal(res.body.resourceType, 'OperationOutcome');
  assert.equal(res.body.issue[0].details.coding[0].code, code);
  assert.ok(res.headers['x-request-id'], 'X-Request-Id present');
  assert.equal(res.headers['access-control-allow-origin'], ORIGIN, 'CORS on error responses');
}

test('unknown /fhir route → 404 OperationOutcome with request id and CORS', async () => {
  const res = await request(t.app).get('/fhir/Observation').set('Origin', ORIGIN);
  assertOutcome(res, 404, 'GW_UNKNOWN_RESOURCE_TYPE');
  assert.match(res.body.issue[0].diagnostics, new RegExp(res.headers['x-request-id']!));
});

test('body over the limit → 413, wrong Content-Type → 415, bad Accept → 406', async () => {
  const big = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', pad: 'x'.repeat(5000) });
  assertOutcome(await request(t.app).post('/fhir').set('Origin', ORIGIN).set('Content-Type', 'application/fhir+json').send(big), 413, 'GW_BODY_TOO_LARGE');
  assertOutcome(await request(t.app).post('/fhir').set('Origin', ORIGIN).set('Content-Type', 'text/plain').send('hello'), 415, 'GW_UNSUPPORTED_MEDIA_TYPE');
  assertOutcome(await request(t.app).get('/fhir/metadata').set('Origin', ORIGIN).set('Accept', 'image/png'), 406, 'GW_NOT_ACCEPTABLE');
  assertOutcome(await request(t.app).delete('/fhir/metadata').set('Origin', ORIGIN), 405, 'GW_METHOD_NOT_ALLOWED');
});

test('CORS preflight is answered on FHIR and DICOMweb routes', async () => {
  for (const path of ['/fhir/DocumentReference', '/dicomweb/studies']) {
    const res = await request(t.app).options(path).set('Origin', ORIGIN).set('Access-Control-Request-Method', 'GET').set('Access-Control-Request-Headers', 'authorization');
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], ORIGIN);
    assert.match(res.headers['access-control-allow-methods']!, /GET/);
    assert.match(res.headers['access-control-allow-headers']!, /authorization/i);
  }
  const other = await request(t.app).get('/fhir/metadata').set('Origin', 'https://evil.example').expect(200);
  assert.equal(other.headers['access-control-allow-origin'], undefined, 'unlisted origins get no CORS grant');
});

test('DICOMweb errors are small JSON with request id and CORS', async () => {
  const res = await request(t.app).get('/dicomweb/nothing-here').set('Origin', ORIGIN).expect(404);
  assert.deepEqual(Object.keys(res.body).sort(), ['code', 'message', 'requestId']);
  assert.equal(res.body.requestId, res.headers['x-request-id']);
  assert.equal(res.headers['access-control-allow-origin'], ORIGIN);
});

test('X-Request-Id is honoured when safe, replaced when not', async () => {
  const a = await request(t.app).get('/healthz').set('X-Request-Id', 'abc-123');
  assert.equal(a.headers['x-request-id'], 'abc-123');
  const b = await request(t.app).get('/healthz').set('X-Request-Id', 'bad id with spaces and <script>');
  assert.notEqual(b.headers['x-request-id'], 'bad id with spaces and <script>');
  assert.match(b.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
});

test('logs carry no query strings and no bodies', async () => {
  const before = t.logs.length;
  const secretId = 'MRN-SECRET-4242';
  await request(t.app).get(`/fhir/DocumentReference?patient.identifier=urn:oid:1.2.3|${secretId}&status=current`).set('X-Request-Id', 'log-test-1');
  await request(t.app).post('/fhir').set('Content-Type', 'application/fhir+json').set('X-Request-Id', 'log-test-2').send({ resourceType: 'Patient', identifier: [{ value: secretId }] });
  const lines = t.logs.slice(before);
  assert.ok(lines.some((l) => l.includes('log-test-1')), 'the request was logged');
  for (const l of lines) assert.ok(!l.includes(secretId), `log line leaks PHI: ${l}`);
  for (const l of lines) assert.ok(!l.includes('patient.identifier'), `log line carries the query: ${l}`);
});

test('unknown failures are 500 without internal detail', async () => {
  const { toHttpError } = await import('../../src/http/errors.js');
  const h = toHttpError(new Error('connection to 10.1.2.3 failed: password authentication failed'));
  assert.equal(h.status, 500);
  assert.equal(h.message, 'Internal server error');
});
