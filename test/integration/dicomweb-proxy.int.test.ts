/**
 * WADO-RS proxy against fake upstreams on port 0 (fault injection): streaming, filtering, routing,
 * credentials, faults (slow headers, mid-stream failure, client abort, upstream 401) and the
 * security rules (bad UIDs / traversal never reach an upstream; only configured hosts are
 * contacted; the caller's Authorization is never forwarded).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { rejectInstance, seedManifest, testUid } from '../helpers/dicomweb-seed.js';
import { dicomPart, multipartBody, splitMultipart, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

const B = 'upstream-boundary-1';
const LOCATION_B = '1.2.826.0.1.3680043.10.999.2';

let t: TestApp;
let fake: FakeUpstream;
let fake2: FakeUpstream;
let evil: FakeUpstream;
let server: http.Server;
let base: string;
let tokenRequests = 0;

const study = testUid();
const se1 = testUid();
const se2 = testUid(); // routed to fake2 by Retrieve Location UID
const seEvil = testUid(); // Retrieve URL names a host that is not configured
const i1 = testUid();
const i2 = testUid();
const iExtra = testUid(); // at the upstream, not in the manifest
const iRejected = testUid();
const i3 = testUid();
const iEvil = testUid();
const hiddenStudy = testUid();
const hiddenSeries = testUid();
const hiddenSop = testUid();

const parts = new Map<string, Buffer>([
  [i1, dicomPart(i1, 300, { fill: 1 })],
  [i2, dicomPart(i2, 5000, { fill: 2, implicit: true })],
  [iExtra, dicomPart(iExtra, 200, { fill: 3 })],
  [iRejected, dicomPart(iRejected, 100, { fill: 4 })],
  [i3, dicomPart(i3, 100, { fill: 5 })],
  [iEvil, dicomPart(iEvil, 100, { fill: 6 })],
]);

function metadataOf(upstreamUrl: string, series: string, sops: string[]) {
  return sops.map((sop) => ({
    '00080018': { vr: 'UI', Value: [sop] },
    '0020000D': { vr: 'UI', Value: [study] },
    '0020000E': { vr: 'UI', Value: [series] },
    '00081190': { vr: 'UR', Value: [`${upstreamUrl}/studies/${study}/series/${series}`] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane' }] },
    '7FE00010': { vr: 'OB', BulkDataURI: `${upstreamUrl}/studies/${study}/series/${series}/instances/${sop}/bulk/7fe00010` },
    '00091010': { vr: 'OB', BulkDataURI: `${upstreamUrl}/studies/${study}/series/${series}/instances/${sop}/bulkdata/abc?offset=10&length=20` },
    '00091011': { vr: 'OB', BulkDataURI: `http://internal.example/studies/${study}/series/${series}/instances/${sop}/bulk/00091011` },
  }));
}

/** The default well-behaved archive: series/study/instance retrieval, metadata, frames, bulk. */
function archive(upstreamUrl: string, seriesContent: Record<string, string[]>): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    const u = new URL(req.url!, 'http://x');
    const p = u.pathname.replace(/^\/dicom-web/, '');
    let m: RegExpExecArray | null;
    if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)\/metadata$/.exec(p))) {
      const body = JSON.stringify(metadataOf(upstreamUrl, m[2]!, seriesContent[m[2]!] ?? []));
      res.writeHead(200, { 'content-type': 'application/dicom+json' }).end(body);
      return;
    }
    if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)\/instances\/([\d.]+)\/bulk\/(.+)$/.exec(p))) {
      const data = Buffer.alloc(1000, 9);
      if (req.headers.range) {
        res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-range': 'bytes 0-9/1000', 'content-length': '10' }).end(data.subarray(0, 10));
      } else res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' }).end(data);
      return;
    }
    if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)\/instances\/([\d.]+)\/frames\/([\d,]+)$/.exec(p))) {
      const body = multipartBody([Buffer.alloc(256, 1)], B, 'application/octet-stream');
      res.writeHead(200, { 'content-type': `multipart/related; type="application/octet-stream"; boundary=${B}`, 'content-length': String(body.length) }).end(body);
      return;
    }
    if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)\/instances\/([\d.]+)\/rendered$/.exec(p))) {
      if (!String(req.headers.accept).includes('image/png')) {
        res.writeHead(406).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from('PNG!'));
      return;
    }
    let sops: string[] = [];
    if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)\/instances\/([\d.]+)$/.exec(p))) sops = [m[3]!];
    else if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)$/.exec(p))) sops = seriesContent[m[2]!] ?? [];
    else if ((m = /^\/studies\/([\d.]+)$/.exec(p))) sops = Object.values(seriesContent).flat();
    if (!sops.length) {
      res.writeHead(404).end();
      return;
    }
    const body = multipartBody(sops.map((s) => parts.get(s)!), B);
    res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${B}`, 'content-length': String(body.length), etag: '"up-1"', 'set-cookie': 'x=1', 'x-internal': 'secret' });
    // write in small slices to exercise the streaming parser across chunk boundaries
    let off = 0;
    const step = () => {
      if (off >= body.length) return res.end();
      const n = 7 + ((off * 31) % 1500);
      res.write(body.subarray(off, off + n));
      off += n;
      setImmediate(step);
    };
    step();
  };
}

async function rawGet(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const u = new URL(base);
    // raw path (http.get(url) would normalise dot segments before they reach the gateway)
    const req = http.get({ host: u.hostname, port: u.port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (error) => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), error }));
      res.on('aborted', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), error: new Error('aborted') }));
    });
    req.on('error', (error) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error }));
  });
}

before(async () => {
  fake = await startFakeUpstream();
  fake2 = await startFakeUpstream();
  evil = await startFakeUpstream((_q, s) => s.writeHead(200).end('should never be called'));
  fake.handler = archive(fake.url, { [se1]: [i1, iExtra, iRejected, i2], [seEvil]: [iEvil] });
  fake2.handler = (req, res) => {
    if (req.url === '/token' && req.method === 'POST') {
      tokenRequests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'oauth-token-1', expires_in: 3600, token_type: 'Bearer' }));
      return;
    }
    archive(fake2.url, { [se2]: [i3] })(req, res);
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-proxy-'));
  const cfg = path.join(dir, 'gateway.json');
  fs.writeFileSync(
    cfg,
    JSON.stringify({
      upstreams: [
        { name: 'default', url: fake.url, auth: { type: 'bearer', token: 'service-token' }, headersTimeoutMs: 400, bodyTimeoutMs: 600 },
        { name: 'second', url: fake2.url, retrieveLocationUids: [LOCATION_B], auth: { type: 'oauth2', tokenUrl: `${fake2.origin}/token`, clientId: 'gw', clientSecret: 's3cret' } },
      ],
    }),
  );
  t = await createTestApp({ GATEWAY_CONFIG: cfg, PUBLIC_BASE_URL: 'https://gw.example.org' });
  await seedManifest(t.tdb.db, {
    study,
    patientName: 'Doe^Jane',
    patientIdValue: 'P1',
    series: [
      { uid: se1, modality: 'CT', retrieveUrl: `${fake.url}/studies/${study}/series/${se1}`, instances: [{ sop: i1 }, { sop: i2, frames: 3 }, { sop: iRejected }] },
      { uid: se2, modality: 'MR', retrieveLocationUid: LOCATION_B, instances: [{ sop: i3 }] },
      { uid: seEvil, modality: 'CT', retrieveUrl: `${evil.url}/studies/${study}/series/${seEvil}`, instances: [{ sop: iEvil }] },
    ],
  });
  await rejectInstance(t.tdb.db, study, se1, iRejected);
  await seedManifest(t.tdb.db, { study: hiddenStudy, status: 'entered-in-error', series: [{ uid: hiddenSeries, instances: [{ sop: hiddenSop }] }] });
  server = http.createServer(t.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await t.close(); // releases the upstream pools before the fakes close
  await Promise.all([fake.close(), fake2.close(), evil.close()]);
});

describe('WADO-RS retrieve through fake upstreams', () => {
  it('series retrieve: unreferenced and rejected parts filtered out while streaming, parts byte-identical', async () => {
    const r = await rawGet(`/dicomweb/studies/${study}/series/${se1}`, { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' });
    assert.equal(r.status, 200);
    assert.equal(r.error, undefined);
    assert.match(String(r.headers['content-type']), new RegExp(`boundary=${B}`));
    assert.equal(r.headers['content-length'], undefined, 'body changed: no content-length');
    assert.equal(r.headers['set-cookie'], undefined);
    assert.equal(r.headers['x-internal'], undefined);
    const got = splitMultipart(r.body, String(r.headers['content-type']));
    assert.equal(got.length, 2);
    assert.deepEqual(got[0]!.body, parts.get(i1));
    assert.deepEqual(got[1]!.body, parts.get(i2), 'implicit VR LE part kept');
    assert.ok(r.body.toString('latin1').endsWith(`--${B}--\r\n`));
  });

  it('instance retrieve passes the body through unchanged with content-length; service token upstream, never the caller\'s', async () => {
    const before = fake.requests.length;
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const r = await rawGet(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}`, { authorization: 'Bearer caller-token', accept: 'multipart/related; type=application/dicom', traceparent: tp, cookie: 'session=1', 'x-forwarded-for': '10.0.0.1' });
    assert.equal(r.status, 200);
    const expected = multipartBody([parts.get(i1)!], B);
    assert.deepEqual(r.body, expected);
    assert.equal(r.headers['content-length'], String(expected.length));
    assert.equal(r.headers.etag, '"up-1"');
    const up = fake.requests.slice(before);
    assert.equal(up.length, 1);
    assert.equal(up[0]!.headers.authorization, 'Bearer service-token');
    assert.equal(up[0]!.headers['accept-encoding'], 'identity');
    assert.equal(up[0]!.headers.traceparent, tp);
    assert.equal(up[0]!.headers.cookie, undefined);
    assert.equal(up[0]!.headers['x-forwarded-for'], undefined);
    assert.equal(up[0]!.url, `/dicom-web/studies/${study}/series/${se1}/instances/${i1}`);
  });

  it('routes by Retrieve Location UID to the second upstream with a cached OAuth2 client-credentials token', async () => {
    const before = fake2.requests.length;
    for (let k = 0; k < 2; k++) {
      const r = await rawGet(`/dicomweb/studies/${study}/series/${se2}/instances/${i3}`, { authorization: 'Bearer caller-token' });
      assert.equal(r.status, 200);
    }
    const dicom = fake2.requests.slice(before).filter((q) => q.url !== '/token');
    assert.equal(dicom.length, 2);
    assert.ok(dicom.every((q) => q.headers.authorization === 'Bearer oauth-token-1'));
    assert.equal(tokenRequests, 1);
  });

  it('study retrieve across two upstreams: one multipart body under the gateway boundary', async () => {
    const r = await rawGet(`/dicomweb/studies/${study}`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /boundary=gw-/);
    const got = splitMultipart(r.body, String(r.headers['content-type']));
    const sops = got.map((p) => p.body);
    assert.equal(sops.length, 4); // i1, i2 (default), iEvil (default), i3 (second)
    assert.ok(sops.some((b) => b.equals(parts.get(i3)!)));
    assert.ok(!sops.some((b) => b.equals(parts.get(iExtra)!)));
    assert.equal(evil.requests.length, 0);
  });

  it('a Retrieve URL naming an unconfigured host never causes a request to it (SSRF)', async () => {
    const r = await rawGet(`/dicomweb/studies/${study}/series/${seEvil}/instances/${iEvil}`);
    assert.equal(r.status, 200);
    assert.equal(evil.requests.length, 0);
    assert.ok(fake.requests.some((q) => q.url.endsWith(`/instances/${iEvil}`)));
  });

  it('unreferenced, rejected and hidden instances are 404 without contacting the upstream', async () => {
    const before = fake.requests.length;
    for (const p of [
      `/dicomweb/studies/${study}/series/${se1}/instances/${iExtra}`,
      `/dicomweb/studies/${study}/series/${se1}/instances/${iRejected}`,
      `/dicomweb/studies/${hiddenStudy}/series/${hiddenSeries}/instances/${hiddenSop}`,
      `/dicomweb/studies/${hiddenStudy}`,
      `/dicomweb/studies/${study}/series/${se1}/instances/${iExtra}/metadata`,
      `/dicomweb/studies/${study}/series/${se1}/instances/${iExtra}/frames/1`,
    ]) {
      const r = await request(t.app).get(p);
      assert.equal(r.status, 404, p);
      assert.equal(r.body.code, 'GW_DICOMWEB_NOT_FOUND');
    }
    assert.equal(fake.requests.length, before);
  });

  it('frames beyond Number of Frames → 404; frames and rendered pass through; upstream 406 is a clean 406', async () => {
    assert.equal((await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i2}/frames/4`)).status, 404);
    const f = await rawGet(`/dicomweb/studies/${study}/series/${se1}/instances/${i2}/frames/1,3`, { accept: 'multipart/related; type="application/octet-stream"' });
    assert.equal(f.status, 200);
    assert.equal(splitMultipart(f.body, String(f.headers['content-type']))[0]!.body.length, 256);
    const png = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}/rendered`).set('Accept', 'image/png');
    assert.equal(png.status, 200);
    assert.equal(png.headers['content-type'], 'image/png');
    const jpeg = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}/rendered`).set('Accept', 'image/jpeg');
    assert.equal(jpeg.status, 406);
    assert.equal(jpeg.body.code, 'GW_DICOMWEB_NOT_ACCEPTABLE');
  });

  it('unsupported Accept → 406 before any upstream request; tolerant parsing of quoted/unquoted type and q-values', async () => {
    const before = fake.requests.length;
    for (const accept of ['application/dicom', 'text/html', 'multipart/related; type="application/dicom+xml"', 'image/jpeg;q=0']) {
      const r = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}`).set('Accept', accept);
      assert.equal(r.status, 406, accept);
    }
    assert.equal((await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/metadata`).set('Accept', 'multipart/related; type="application/dicom+xml"')).status, 406);
    assert.equal(fake.requests.length, before);
    for (const accept of ['multipart/related;type=application/dicom', 'text/html;q=0.9, multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1;q=0.5', '*/*']) {
      const r = await rawGet(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}`, { accept });
      assert.equal(r.status, 200, accept);
    }
    const last3 = fake.requests.slice(-3).map((q) => q.headers.accept);
    assert.deepEqual(last3, [
      'multipart/related; type="application/dicom"',
      'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1; q=0.5',
      'multipart/related; type="application/dicom"',
    ]);
  });
});

describe('WADO-RS metadata and bulkdata', () => {
  it('rewrites BulkDataURI and RetrieveURL to the public base, drops foreign hosts, filters instances; cached with ETag/304 and gzip/br', async () => {
    const before = fake.requests.length;
    const r = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/metadata`).set('Accept', 'application/dicom+json').set('Accept-Encoding', 'identity');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/dicom+json');
    const ds = JSON.parse(r.text) as Array<Record<string, { Value?: unknown[]; BulkDataURI?: string }>>;
    assert.deepEqual(ds.map((d) => d['00080018']!.Value![0]).sort(), [i1, i2].sort());
    const d1 = ds.find((d) => d['00080018']!.Value![0] === i1)!;
    assert.equal(d1['7FE00010']!.BulkDataURI, `https://gw.example.org/dicomweb/studies/${study}/series/${se1}/instances/${i1}/bulk/7fe00010`);
    assert.match(d1['00091010']!.BulkDataURI!, new RegExp(`^https://gw\\.example\\.org/dicomweb/studies/${study}/series/${se1}/instances/${i1}/bulk/~[A-Za-z0-9_-]+$`));
    assert.equal(d1['00091011'], undefined, 'foreign host never handed out (the attribute is dropped)');
    assert.deepEqual(d1['00081190']!.Value, [`https://gw.example.org/dicomweb/studies/${study}/series/${se1}`]);
    assert.ok(!r.text.includes('127.0.0.1'));
    const etag = r.headers.etag;
    assert.match(etag, /^"m-/);
    const again = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/metadata`).set('If-None-Match', etag);
    assert.equal(again.status, 304);
    const gz = await rawGet(`/dicomweb/studies/${study}/series/${se1}/metadata`, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.etag, etag.replace(/"$/, '-gz"'));
    assert.equal(zlib.gunzipSync(gz.body).toString(), r.text);
    const br = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/metadata`).set('Accept-Encoding', 'gzip, br');
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(fake.requests.length, before + 1, 'series metadata fetched once (cache)');
    // instance metadata and study metadata come from the same cache entry
    const inst = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}/metadata`);
    assert.equal(inst.status, 200);
    assert.equal(JSON.parse(inst.text).length, 1);
    const st = await request(t.app).get(`/dicomweb/studies/${study}/metadata`);
    assert.equal(st.status, 200);
    assert.deepEqual(JSON.parse(st.text).map((d: Record<string, { Value: string[] }>) => d['00080018']!.Value[0]).sort(), [i1, i2, i3, iEvil].sort());
  });

  it('bulkdata URIs handed out in metadata work, with Range passed through (206 + Content-Range)', async () => {
    const r = await rawGet(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}/bulk/7fe00010`, { accept: 'application/octet-stream', range: 'bytes=0-9' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], 'bytes 0-9/1000');
    assert.equal(r.body.length, 10);
    assert.equal(fake.requests.at(-1)!.headers.range, 'bytes=0-9');
    const meta = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}/metadata`);
    const token = JSON.parse(meta.text)[0]['00091010'].BulkDataURI.replace('https://gw.example.org', '');
    const before = fake.requests.length;
    await rawGet(token, { accept: 'application/octet-stream' });
    assert.equal(fake.requests.length, before + 1);
    assert.equal(fake.requests.at(-1)!.url, `/dicom-web/studies/${study}/series/${se1}/instances/${i1}/bulkdata/abc?offset=10&length=20`);
    // a forged token cannot climb out of the instance
    const forged = '~' + Buffer.from('/../../../../other').toString('base64url');
    assert.equal((await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}/bulk/${forged}`)).status, 400);
    assert.equal(fake.requests.length, before + 1);
  });
});

describe('security: validation before any upstream request', () => {
  it('non-UID text and traversal in every UID position → 400, upstream never called', async () => {
    const before = fake.requests.length + fake2.requests.length + evil.requests.length;
    const bad = ['abc', '1.02.3', '1..2', '.1', '1.2.', '1'.repeat(65), '1.2.3;rm', '1.2%2F3', '..', '%2e%2e', '1.2\\3', "1.2'3"];
    const templates = [
      (x: string) => `/dicomweb/studies/${x}`,
      (x: string) => `/dicomweb/studies/${x}/metadata`,
      (x: string) => `/dicomweb/studies/${study}/series/${x}`,
      (x: string) => `/dicomweb/studies/${study}/series/${x}/metadata`,
      (x: string) => `/dicomweb/studies/${study}/series/${se1}/instances/${x}`,
      (x: string) => `/dicomweb/studies/${study}/series/${se1}/instances/${x}/rendered`,
      (x: string) => `/dicomweb/studies/${study}/series/${se1}/instances/${x}/frames/1`,
      (x: string) => `/dicomweb/studies/${x}/series/${se1}/instances/${i1}`,
      (x: string) => `/dicomweb/studies/${x}/series`,
    ];
    for (const tpl of templates) {
      for (const b of bad) {
        const r = await rawGet(tpl(b));
        assert.equal(r.status, 400, tpl(b));
        const code = JSON.parse(r.body.toString()).code;
        assert.ok(code === 'GW_DICOMWEB_BAD_UID' || code === 'GW_DICOMWEB_BAD_PATH', `${tpl(b)} → ${code}`);
      }
    }
    for (const p of [`/dicomweb/studies/${study}/../${study}`, `/dicomweb/studies/${study}/series/%2e%2e/%2e%2e/x`, `/dicomweb/studies/${study}/series/${se1}/instances/${i1}/bulk/..%2f..%2fx`, `/dicomweb/studies/${study}/series/${se1}/instances/${i1}/frames/0`, `/dicomweb/studies/${study}/series/${se1}/instances/${i1}/frames/1,x`]) {
      const r = await rawGet(p);
      assert.equal(r.status, 400, p);
    }
    assert.equal(fake.requests.length + fake2.requests.length + evil.requests.length, before);
  });

  it('CORS headers on errors and preflight', async () => {
    const e = await request(t.app).get('/dicomweb/studies/not-a-uid').set('Origin', 'https://viewer.example');
    assert.equal(e.status, 400);
    assert.equal(e.headers['access-control-allow-origin'], '*');
    const pre = await request(t.app).options(`/dicomweb/studies/${study}/series/${se1}/metadata`).set('Origin', 'https://viewer.example').set('Access-Control-Request-Method', 'GET').set('Access-Control-Request-Headers', 'authorization, accept');
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    const ok = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/metadata`).set('Origin', 'https://viewer.example');
    assert.equal(ok.headers['access-control-allow-origin'], '*');
    assert.match(ok.headers['access-control-expose-headers'], /ETag/);
  });
});

describe('edge cases', () => {
  it('an upstream that holds none of the referenced instances → 404, not an empty 200', async () => {
    const saved = fake.handler;
    fake.handler = (_req, res) => {
      const body = multipartBody([parts.get(iExtra)!], B);
      res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${B}` }).end(body);
    };
    try {
      const r = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}`);
      assert.equal(r.status, 404);
      assert.equal(r.body.code, 'GW_DICOMWEB_NOT_AT_UPSTREAM');
    } finally {
      fake.handler = saved;
    }
  });

  it('OAuth2: an upstream 401 drops the cached token; the next request fetches a new one', async () => {
    const saved = fake2.handler;
    const before = tokenRequests;
    fake2.handler = (req, res) => (req.url === '/token' ? saved(req, res) : res.writeHead(401).end());
    try {
      const r = await request(t.app).get(`/dicomweb/studies/${study}/series/${se2}/instances/${i3}`);
      assert.equal(r.status, 502);
      assert.equal(r.body.code, 'GW_UPSTREAM_AUTH');
    } finally {
      fake2.handler = saved;
    }
    assert.equal((await request(t.app).get(`/dicomweb/studies/${study}/series/${se2}/instances/${i3}`)).status, 200);
    assert.equal(tokenRequests, before + 1);
  });

  it('HEAD on metadata: headers (ETag, length) without a body', async () => {
    const r = await rawGet(`/dicomweb/studies/${study}/series/${se1}/metadata`);
    const h = await new Promise<http.IncomingMessage>((resolve) => {
      const u = new URL(base);
      http.request({ host: u.hostname, port: u.port, method: 'HEAD', path: `/dicomweb/studies/${study}/series/${se1}/metadata` }, resolve).end();
    });
    assert.equal(h.statusCode, 200);
    assert.equal(h.headers.etag, r.headers.etag);
    h.resume();
  });

  it('study retrieval: a later series failing mid-stream breaks the connection (after the first series was sent)', async () => {
    const saved = [fake.handler, fake2.handler] as const;
    let n = 0; // the second series request (the prefetched one) fails mid-body, whichever archive gets it
    const failSecond = (orig: typeof fake.handler) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/token' || ++n !== 2) return orig(req, res);
      res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${B}` });
      res.write(`--${B}\r\nContent-Type: application/dicom\r\n\r\n`);
      res.write(Buffer.alloc(150));
      setTimeout(() => res.destroy(), 30);
    };
    fake.handler = failSecond(saved[0]);
    fake2.handler = failSecond(saved[1]);
    try {
      const r = await rawGet(`/dicomweb/studies/${study}`);
      assert.equal(r.status, 200);
      assert.ok(r.error, 'expected a broken connection');
      assert.ok(/--gw-[0-9a-f]+\r\n/.test(r.body.toString('latin1')), 'the first series was sent');
      assert.ok(!/--gw-[0-9a-f]+--/.test(r.body.toString('latin1')), 'no close delimiter');
    } finally {
      [fake.handler, fake2.handler] = saved;
    }
  });

  it('upstream stalls mid-body → broken connection after bodyTimeoutMs', async () => {
    const saved = fake.handler;
    fake.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${B}` });
      res.write(`--${B}\r\nContent-Type: application/dicom\r\n\r\n`);
      res.write(parts.get(i1)!); // then silence, connection kept open
    };
    try {
      const r = await rawGet(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}`);
      assert.equal(r.status, 200);
      assert.ok(r.error, 'expected a broken connection');
    } finally {
      fake.handler = saved;
    }
  });
});

describe('no upstream configured', () => {
  it('a visible series with no matching upstream → 502 GW_DICOMWEB_NO_UPSTREAM (and metadata too)', async () => {
    // a second app on the same database, configured without any upstream
    const { buildApp } = await import('../../src/app.js');
    const { loadConfig } = await import('../../src/config.js');
    const { createLogger } = await import('../../src/log.js');
    const app2 = buildApp({ config: loadConfig({ DATABASE_URL: t.tdb.url, PUBLIC_BASE_URL: 'http://gateway.test' }), db: t.tdb.db, log: createLogger('silent'), version: 'test' }).app;
    {
      const st = testUid();
      const se = testUid();
      const sop = testUid();
      await seedManifest(t.tdb.db, { study: st, series: [{ uid: se, retrieveUrl: 'http://somewhere.example/dicom-web', instances: [{ sop }] }] });
      for (const p of [`/dicomweb/studies/${st}/series/${se}/instances/${sop}`, `/dicomweb/studies/${st}/series/${se}/metadata`, `/dicomweb/studies/${st}`]) {
        const r = await request(app2).get(p);
        assert.equal(r.status, 502, p);
        assert.equal(r.body.code, 'GW_DICOMWEB_NO_UPSTREAM');
      }
      // QIDO still answers from the index
      assert.equal(JSON.parse((await request(app2).get(`/dicomweb/studies?StudyInstanceUID=${st}`)).text).length, 1);
    }
  });
});

describe('faults', () => {
  it('slow upstream headers → 504 JSON within the configured timeout', async () => {
    const saved = fake.handler;
    fake.handler = (_req, res) => {
      const timer = setTimeout(() => res.writeHead(200).end(), 5000);
      res.on('close', () => clearTimeout(timer));
    };
    try {
      const started = Date.now();
      const r = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}`).timeout(4000);
      assert.equal(r.status, 504);
      assert.equal(r.body.code, 'GW_UPSTREAM_TIMEOUT');
      assert.ok(Date.now() - started < 4000);
    } finally {
      fake.handler = saved;
    }
  });

  it('upstream failure mid-stream → the client sees a broken connection, not a clean body', async () => {
    const saved = fake.handler;
    fake.handler = (_req, res) => {
      const body = multipartBody([parts.get(i1)!, parts.get(i2)!], B);
      res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${B}`, 'content-length': String(body.length) });
      res.write(body.subarray(0, 600));
      setTimeout(() => res.destroy(), 50);
    };
    try {
      for (const p of [`/dicomweb/studies/${study}/series/${se1}/instances/${i1}`, `/dicomweb/studies/${study}/series/${se1}`]) {
        const r = await rawGet(p);
        assert.equal(r.status, 200, p);
        assert.ok(r.error, `${p}: expected a broken connection`);
        assert.ok(!r.body.toString('latin1').includes(`--${B}--`));
      }
    } finally {
      fake.handler = saved;
    }
  });

  it('client abort → the upstream request is aborted', async () => {
    const saved = fake.handler;
    let started!: () => void;
    const upstreamStarted = new Promise<void>((r) => (started = r));
    fake.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${B}` });
      res.write(`--${B}\r\nContent-Type: application/dicom\r\n\r\n`);
      res.write(parts.get(i1)!);
      res.write(`\r\n--${B}\r\nContent-Type: application/dicom\r\n\r\n`);
      res.write(parts.get(i2)!.subarray(0, 100));
      started();
      const timer = setInterval(() => res.write(Buffer.alloc(1024)), 20); // trickle, never finishes
      res.on('close', () => clearInterval(timer));
    };
    const abortedBefore = fake.aborted;
    const upstreamClosed = new Promise<void>((r) => (fake.onAbort = r));
    try {
      const req = http.get(`${base}/dicomweb/studies/${study}/series/${se1}`);
      req.on('error', () => {});
      req.on('response', (res) => {
        res.once('data', () => req.destroy());
      });
      await upstreamStarted;
      await Promise.race([upstreamClosed, new Promise((_, rej) => setTimeout(() => rej(new Error('upstream request not aborted within 5 s')), 5000))]);
      assert.equal(fake.aborted, abortedBefore + 1);
    } finally {
      fake.handler = saved;
      fake.onAbort = undefined;
    }
  });

  it('upstream 401 → 502 (our credential problem, not the client\'s 401); 5xx → 502; unreachable → 502', async () => {
    const saved = fake.handler;
    try {
      fake.handler = (_req, res) => res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
      const r = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}/instances/${i1}`);
      assert.equal(r.status, 502);
      assert.equal(r.body.code, 'GW_UPSTREAM_AUTH');
      assert.equal(r.headers['www-authenticate'], undefined);
      fake.handler = (_req, res) => res.writeHead(500).end('boom');
      const r5 = await request(t.app).get(`/dicomweb/studies/${study}/series/${se1}`);
      assert.equal(r5.status, 502);
      assert.equal(r5.body.code, 'GW_UPSTREAM_ERROR');
    } finally {
      fake.handler = saved;
    }
  });
});
