/**
 * GET study / series / instance / frames retrievals under /dicomweb are dispatched without
 * Express's router (src/http/fast-lane.ts, src/dicomweb/routes.ts retrieveLaneOf). The same
 * request through the router (a trailing slash is not a lane path) must answer the same: status,
 * headers, body, audit record, metrics route template; errors from every part of the chain too
 * (a bad UID, a traversal attempt, an unknown instance handed on to the stored-KOS route, 406).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { auditFor } from '../helpers/audit.js';
import { seedManifest, testUid } from '../helpers/dicomweb-seed.js';
import { dicomPart, multipartBody, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { createDicomwebRouter, getRetrieve, retrieveLaneOf, useCheck } from '../../src/dicomweb/routes.js';
import type { AppDeps } from '../../src/deps.js';

const B = 'lane-boundary';
const study = testUid();
const series = testUid();
const sops = [testUid(), testUid()];
const parts = new Map(sops.map((s, i) => [s, dicomPart(s, 400 + i * 100, { fill: i + 1 })]));

let t: TestApp;
let fake: FakeUpstream;
let listening: Awaited<ReturnType<typeof listenTestApp>>;
let base: string;

before(async () => {
  fake = await startFakeUpstream((req, res) => {
    const p = new URL(req.url!, 'http://x').pathname.replace(/^\/dicom-web/, '');
    if (/\/frames\/1$/.test(p)) {
      const body = multipartBody([Buffer.alloc(64, 7)], B, 'application/octet-stream');
      res.writeHead(200, { 'content-type': `multipart/related; type="application/octet-stream"; boundary=${B}`, 'content-length': String(body.length) }).end(body);
      return;
    }
    const one = /\/instances\/([\d.]+)$/.exec(p);
    const body = multipartBody(one ? [parts.get(one[1]!)!] : [...parts.values()], B);
    res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${B}`, 'content-length': String(body.length) }).end(body);
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-lane-'));
  const cfg = path.join(dir, 'gateway.json');
  fs.writeFileSync(cfg, JSON.stringify({ upstreams: [{ name: 'default', url: fake.url }] }));
  t = await createTestApp({ GATEWAY_CONFIG: cfg });
  await seedManifest(t.tdb.db, { study, patientIdValue: 'LANE-P1', series: [{ uid: series, modality: 'CT', instances: [{ sop: sops[0]!, frames: 2 }, { sop: sops[1]! }] }] });
  listening = await listenTestApp(t);
  base = listening.base;
});

after(async () => {
  await listening.close();
  await t.close();
  await fake.close();
});

/** GET with the path sent as given (no normalisation), body collected. */
function get(p: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    http
      .get({ host: u.hostname, port: u.port, path: p, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const VOLATILE = new Set(['date', 'x-request-id', 'keep-alive', 'connection', 'content-type']);
const headersOf = (h: http.IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([k]) => !VOLATILE.has(k)).sort());
/** Gateway boundaries (several upstreams) and request ids differ per response: masked. */
const masked = (b: Buffer) => b.toString('latin1').replace(/gw-[0-9a-f]{24}/g, 'BOUNDARY').replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'RID');

const DICOM = { accept: 'multipart/related; type="application/dicom"' };
const OCTETS = { accept: 'multipart/related; type="application/octet-stream"' };
const inst = (i: number) => `/dicomweb/studies/${study}/series/${series}/instances/${sops[i]}`;

const CASES: Array<[string, string, Record<string, string>]> = [
  ['study', `/dicomweb/studies/${study}`, DICOM],
  ['series', `/dicomweb/studies/${study}/series/${series}`, DICOM],
  ['instance', inst(1), DICOM],
  ['frames', `${inst(0)}/frames/1`, OCTETS],
  ['frame beyond the instance: 404', `${inst(0)}/frames/3`, OCTETS],
  ['bad UID: 400', `/dicomweb/studies/${study}/series/01.2`, DICOM],
  ['unknown instance handed on to the stored-KOS route: 404', `/dicomweb/studies/${study}/series/${series}/instances/${testUid()}`, DICOM],
  ['unknown study: 404', `/dicomweb/studies/${testUid()}`, DICOM],
  ['unproducible Accept: 406', inst(0), { accept: 'image/png' }],
  ['CORS headers', inst(0), { ...DICOM, origin: 'https://viewer.example' }],
];

for (const [name, p, headers] of CASES) {
  test(`retrieve lane answers like the router: ${name}`, async () => {
    const lane = await get(p, headers);
    const routed = await get(`${p}/`, headers);
    assert.equal(lane.status, routed.status, masked(lane.body).slice(0, 300));
    assert.deepEqual(headersOf(lane.headers), headersOf(routed.headers));
    assert.equal(masked(lane.body), masked(routed.body));
    assert.equal(String(lane.headers['content-type']).replace(/gw-[0-9a-f]{24}/, ''), String(routed.headers['content-type']).replace(/gw-[0-9a-f]{24}/, ''));
  });
}

test('retrieve lane: traversal and encoded paths go through the router and are refused there', async () => {
  for (const p of [`/dicomweb/studies/${study}/series/..`, `/dicomweb/studies/${study}/series/%2e%2e`, `/dicomweb/studies/${study}%2Fseries`]) {
    const r = await get(p, DICOM);
    assert.equal(r.status, 400, p);
  }
  assert.equal(fake.requests.filter((r) => r.url.includes('..') || /%2e|%2f/i.test(r.url)).length, 0);
});

test('retrieve lane: audited and counted under the route template like the router', async () => {
  assert.equal((await get(inst(0), { ...DICOM, 'x-request-id': 'dw-lane-fast-1' })).status, 200);
  assert.equal((await get(`${inst(0)}/`, { ...DICOM, 'x-request-id': 'dw-lane-routed-1' })).status, 200);
  const fast = await auditFor(t.tdb.db, 'dw-lane-fast-1');
  const routed = await auditFor(t.tdb.db, 'dw-lane-routed-1');
  const shape = (a: typeof fast) => JSON.stringify(a.resource).replace(/"(id|recorded|lastUpdated|versionId|query)":"[^"]*"/g, '').replaceAll(/dw-lane-(fast|routed)-1/g, 'RID').replaceAll(`${sops[0]}/`, `${sops[0]}`);
  assert.equal(shape(fast), shape(routed));
  const metrics = await request(t.app).get('/metrics');
  assert.match(metrics.text, /http_requests_total\{method="GET",route="\/dicomweb\/studies\/:study\/series\/:series\/instances\/:instance",status="200"\} \d+/);
});

test('retrieveLaneOf: only the four retrieval shapes, literal segments, nothing the router would decode or normalise', () => {
  const router = createDicomwebRouter({} as AppDeps, [(r) => getRetrieve(r, 'study', (_q, s) => s.end()), (r) => getRetrieve(r, 'frames', (_q, s) => s.end())]);
  assert.deepEqual(retrieveLaneOf(router, '/studies/1.2')?.params, { study: '1.2' });
  assert.deepEqual(retrieveLaneOf(router, '/studies/1.2/series/3/instances/4/frames/1,2')?.params, { study: '1.2', series: '3', instance: '4', frames: '1,2' });
  assert.equal(retrieveLaneOf(router, '/studies/1.2')?.routePath, '/studies/:study');
  for (const p of ['/studies/1.2/', '/studies//series/3', '/studies/1.2/series/3', '/studies/1.2/Series/3/instances/4/frames/1', '/studies/1.2/series/3/instances/4/frames', '/studies/%31', '/studies/..', '/studies/1/series/3/instances/4/rendered', '/studies/1.2/metadata', '/studies']) {
    assert.equal(retrieveLaneOf(router, p), undefined, p);
  }
});

test('a /dicomweb router.use or retrieval GET that bypasses the lane registry fails at start', () => {
  const deps = {} as AppDeps;
  assert.throws(() => createDicomwebRouter(deps, [(r) => void r.use((_q, _s, n) => n())]), /useCheck/);
  assert.throws(() => createDicomwebRouter(deps, [(r) => void r.get('/studies/:study/series/:series', (_q, s) => void s.end())]), /getRetrieve/);
  assert.throws(() => createDicomwebRouter(deps, [(r) => getRetrieve(r, 'study', (_q, s) => s.end()), (r) => useCheck(r, (_q, _s, n) => n())]), /after a retrieve route/);
  assert.doesNotThrow(() => createDicomwebRouter(deps, [(r) => void r.post('/studies/:study', (_q, s) => void s.end())]));
});
