/**
 * GET /fhir/<type> searches are dispatched without Express's router (src/http/fast-lane.ts). The
 * same request through the router (a trailing slash is not a fast-lane path) must answer the same:
 * status, body, headers, audit record and metrics route template; errors in either part of the
 * chain (the app-level security chain, the /fhir checks, the search itself) too.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { ingestKos, makeManifest } from '../helpers/query-data.js';
import { auditFor } from '../helpers/audit.js';

let t: TestApp;
before(async () => {
  t = await createTestApp();
  await ingestKos(t, makeManifest({ seed: 'lane-A', patientId: 'LANE1', studyDate: '20240115', studyTime: '101010', modality: 'CT', accession: 'ACC-L' }));
});
after(async () => t.close());

const VOLATILE = new Set(['date', 'x-request-id', 'keep-alive', 'connection']);
function headersOf(res: request.Response): Record<string, string> {
  return Object.fromEntries(Object.entries(res.headers).filter(([k]) => !VOLATILE.has(k)).sort()) as Record<string, string>;
}

/** The body with the request id (error bodies carry it) masked. */
function bodyOf(res: request.Response): string {
  return res.text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'RID');
}

async function both(path: string, query: string, headers: Record<string, string> = {}) {
  const fast = await request(t.app).get(`${path}?${query}`).set(headers);
  const routed = await request(t.app).get(`${path}/?${query}`).set(headers);
  return { fast, routed };
}

const CASES: Array<[string, string, string, Record<string, string>?]> = [
  ['json search', '/fhir/DocumentReference', 'patient.identifier=urn:oid:1.2.3.4.5.6.7|LANE1&status=current'],
  ['XML by Accept', '/fhir/DocumentReference', 'patient.identifier=urn:oid:1.2.3.4.5.6.7|LANE1', { accept: 'application/fhir+xml' }],
  ['_format=xml', '/fhir/ImagingStudy', 'identifier=urn:dicom:uid|urn:oid:1.2&_format=xml'],
  ['_elements + warnings', '/fhir/DocumentReference', 'patient.identifier=urn:oid:1.2.3.4.5.6.7|LANE1&_elements=status&unknown-param=1'],
  ['406 from the /fhir checks', '/fhir/DocumentReference', 'status=current', { accept: 'image/png' }],
  ['400 from the search', '/fhir/DocumentReference', 'date=notadate'],
  ['400 strict unknown parameter', '/fhir/Patient', 'nope=1', { prefer: 'handling=strict' }],
  ['CORS preflight headers on a GET', '/fhir/Patient', 'name=x', { origin: 'https://viewer.example' }],
];

for (const [name, path, query, headers] of CASES) {
  test(`fast lane answers like the router: ${name}`, async () => {
    const { fast, routed } = await both(path, query, headers);
    assert.equal(fast.status, routed.status, `${name}: ${fast.text.slice(0, 300)}`);
    assert.deepEqual(headersOf(fast), headersOf(routed));
    // Link URLs carry the path as requested: compare with the slash removed.
    assert.equal(bodyOf(fast), bodyOf(routed).replaceAll(`${path}/?`, `${path}?`).replaceAll(`${path}/"`, `${path}"`));
  });
}

test('fast lane: audited and counted under the route template like the router', async () => {
  const q = 'patient.identifier=urn:oid:1.2.3.4.5.6.7|LANE1';
  assert.equal((await request(t.app).get(`/fhir/DocumentReference?${q}`).set('x-request-id', 'lane-fast-1')).status, 200);
  assert.equal((await request(t.app).get(`/fhir/DocumentReference/?${q}`).set('x-request-id', 'lane-routed-1')).status, 200);
  const fast = await auditFor(t.tdb.db, 'lane-fast-1');
  const routed = await auditFor(t.tdb.db, 'lane-routed-1');
  const shape = (a: typeof fast) => JSON.stringify(a.resource).replace(/"(id|recorded|lastUpdated|versionId|query)":"[^"]*"/g, '').replaceAll('lane-fast-1', 'RID').replaceAll('lane-routed-1', 'RID').replaceAll('DocumentReference/?', 'DocumentReference?');
  assert.equal(shape(fast), shape(routed));
  const metrics = await request(t.app).get('/metrics');
  assert.match(metrics.text, /http_requests_total\{method="GET",route="\/fhir\/DocumentReference",status="200"\} \d+/);
});

test('fast lane: unknown types, POST _search and HEAD still go through the router', async () => {
  assert.equal((await request(t.app).get('/fhir/Nope?x=1')).status, 404);
  assert.equal((await request(t.app).head('/fhir/DocumentReference?status=current')).status, 200);
  const post = await request(t.app).post('/fhir/DocumentReference/_search').type('form').send('status=current');
  assert.equal(post.status, 200);
});
