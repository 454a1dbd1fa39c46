/**
 * WADO-RS retrievals from https: upstreams (real sockets, a fake archive over TLS on
 * port 0, certificates made with openssl at test time). They stream through the gateway's own
 * HTTP/1.1 exchange over tls.connect, not undici: undici 7.30 crashes the process when a
 * close-delimited body ends while a slow client holds the response paused (nodejs/undici#5360).
 *
 * The gateway runs as a real child process trusting the test CA through NODE_EXTRA_CA_CERTS
 * (upstream TLS trust is Node's default store; there is no per-upstream CA setting), so "the
 * process did not crash" is observable. Covered: filtered study/series retrieval, credentials and
 * identity encoding upstream, a close-delimited body ending under backpressure (end to end, and
 * deterministically at Upstream.stream() in a child process: that one fails on undici 7.30 with
 * assert(!this.paused)), mid-stream failure,
 * slow headers → 504, an untrusted certificate → 502, client abort → upstream aborted; and the
 * exchange's TLS options (SNI, CA, name check) directly.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { exchange, type StreamResponse } from '../../src/dicomweb/http1.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { issueCert, makeCa, selfSignedCert, tryPki } from '../helpers/pki.js';
import { seedManifest, rejectInstance, testUid } from '../helpers/dicomweb-seed.js';
import { dicomPart, multipartBody, splitMultipart, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const B = 'tls-boundary-1';
const CT = `multipart/related; type="application/dicom"; boundary=${B}`;

/** A CA; a server certificate from it for 127.0.0.1 / pacs.test; a self-signed one for 127.0.0.1. */
function makePki(dir: string) {
  makeCa(dir, 'Test PACS CA');
  issueCert(dir, 'server', '/CN=pacs.test', 'IP:127.0.0.1,DNS:pacs.test');
  selfSignedCert(dir, 'rogue', '/CN=127.0.0.1', 'IP:127.0.0.1');
}

let dir: string;
let available = true;
let tdb: TestDb | undefined;
let fake: FakeUpstream;
let rogue: FakeUpstream;
let gw: GatewayProcess | undefined;

const study = testUid();
const seA = testUid();
const seB = testUid();
const a1 = testUid();
const a2 = testUid();
const aExtra = testUid(); // at the upstream, not in the manifest
const aRejected = testUid();
const b1 = testUid();
const bigStudy = testUid();
const seBig = testUid();
const big = testUid();
const rogueStudy = testUid();
const seRogue = testUid();
const r1 = testUid();

const parts = new Map<string, Buffer>([
  [a1, dicomPart(a1, 300, { fill: 1 })],
  [a2, dicomPart(a2, 70_000, { fill: 2, implicit: true })],
  [aExtra, dicomPart(aExtra, 200, { fill: 3 })],
  [aRejected, dicomPart(aRejected, 100, { fill: 4 })],
  [b1, dicomPart(b1, 5000, { fill: 5 })],
  [big, dicomPart(big, 16 * 1024 * 1024, { fill: 6 })], // far more than the socket buffers hold
  [r1, dicomPart(r1, 100, { fill: 7 })],
]);
const seriesContent: Record<string, string[]> = { [seA]: [a1, aExtra, aRejected, a2], [seB]: [b1], [seBig]: [big], [seRogue]: [r1] };

let closeDelimitedSent = false;

/** The archive: study/series/instance retrieval; close-delimited (no length, Connection: close) like Orthanc for the big series. */
function archive(req: http.IncomingMessage, res: http.ServerResponse) {
  const p = new URL(req.url!, 'http://x').pathname.replace(/^\/dicom-web/, '');
  let m: RegExpExecArray | null;
  let sops: string[] = [];
  if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)\/instances\/([\d.]+)$/.exec(p))) sops = [m[3]!];
  else if ((m = /^\/studies\/([\d.]+)\/series\/([\d.]+)$/.exec(p))) sops = seriesContent[m[2]!] ?? [];
  else if ((m = /^\/studies\/([\d.]+)$/.exec(p))) sops = m[1] === study ? [...seriesContent[seA]!, ...seriesContent[seB]!] : [];
  if (!sops.length) {
    res.writeHead(404).end();
    return;
  }
  const body = multipartBody(sops.map((s) => parts.get(s)!), B);
  if (sops.includes(big)) {
    // HTTP/1.1 with neither Content-Length nor chunked: the body ends with the connection
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, { 'content-type': CT, connection: 'close' });
    res.write(body.subarray(0, 100));
    closeDelimitedSent = res.chunkedEncoding === false && !res.hasHeader('content-length');
    res.end(body.subarray(100));
    return;
  }
  res.writeHead(200, { 'content-type': CT, 'content-length': String(body.length) });
  let off = 0;
  const step = () => {
    if (off >= body.length) return res.end();
    const n = 7 + ((off * 31) % 1500);
    res.write(body.subarray(off, off + n));
    off += n;
    setImmediate(step);
  };
  step();
}

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  error?: Error;
}

/** GET from the gateway; `slow` holds the response paused at first and then reads in small sips. */
function get(p: string, headers: Record<string, string> = {}, slow = false): Promise<Got> {
  return new Promise((resolve) => {
    const u = new URL(gw!.url);
    const req = http.get({ host: u.hostname, port: u.port, path: p, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const done = (error?: Error) => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), error });
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        if (slow) {
          res.pause();
          setTimeout(() => res.resume(), 2);
        }
      });
      res.on('end', () => done());
      res.on('error', (e) => done(e));
      res.on('aborted', () => done(new Error('aborted')));
      if (slow) {
        res.pause();
        setTimeout(() => res.resume(), 700); // the gateway's writes back up, it pauses the upstream, the upstream has long sent its FIN
      }
    });
    req.on('error', (error) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error }));
  });
}

async function json(p: string): Promise<{ status: number; body: { code?: string } }> {
  const r = await get(p);
  return { status: r.status, body: r.body.length ? JSON.parse(r.body.toString()) : {} };
}

function assertAlive() {
  assert.equal(gw!.proc.exitCode, null, `gateway exited:\n${gw!.output()}`);
  assert.doesNotMatch(gw!.output(), /AssertionError|uncaught/i);
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-tls-'));
  available = tryPki(() => makePki(dir));
  if (!available) return;
  const read = (f: string) => fs.readFileSync(path.join(dir, f));
  fake = await startFakeUpstream(archive, { tls: { key: read('server.key'), cert: read('server.pem') } });
  rogue = await startFakeUpstream(archive, { tls: { key: read('rogue.key'), cert: read('rogue.pem') } });
  tdb = await createTestDb();
  await seedManifest(tdb.db, {
    study,
    series: [
      { uid: seA, modality: 'CT', retrieveUrl: `${fake.url}/studies/${study}/series/${seA}`, instances: [{ sop: a1 }, { sop: a2 }, { sop: aRejected }] },
      { uid: seB, modality: 'CT', retrieveUrl: `${fake.url}/studies/${study}/series/${seB}`, instances: [{ sop: b1 }] },
    ],
  });
  await rejectInstance(tdb.db, study, seA, aRejected);
  await seedManifest(tdb.db, { study: bigStudy, series: [{ uid: seBig, modality: 'CT', retrieveUrl: `${fake.url}/studies/${bigStudy}/series/${seBig}`, instances: [{ sop: big }] }] });
  await seedManifest(tdb.db, { study: rogueStudy, series: [{ uid: seRogue, modality: 'CT', retrieveUrl: `${rogue.url}/studies/${rogueStudy}/series/${seRogue}`, instances: [{ sop: r1 }] }] });
  const cfg = path.join(dir, 'gateway.json');
  fs.writeFileSync(
    cfg,
    JSON.stringify({
      upstreams: [
        { name: 'default', url: fake.url, auth: { type: 'bearer', token: 'service-token' }, maxConnections: 4, headersTimeoutMs: 3000, bodyTimeoutMs: 5000 },
        { name: 'rogue', url: rogue.url },
      ],
    }),
  );
  gw = await startGateway({ DATABASE_URL: tdb.url, GATEWAY_CONFIG: cfg, PUBLIC_BASE_URL: 'http://gw.test', LOG_LEVEL: 'warn', NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') });
});

after(async () => {
  if (gw && gw.proc.exitCode === null) {
    gw.proc.kill('SIGTERM');
    await gw.exited;
  }
  await Promise.all([fake?.close(), rogue?.close()]);
  await tdb?.drop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('WADO-RS retrieve from an https: upstream (own HTTP/1.1 exchange over TLS)', () => {
  it('study retrieve: parts filtered while streaming (unreferenced and rejected gone), byte-identical; service credential and identity encoding upstream', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    const before = fake.requests.length;
    const r = await get(`/dicomweb/studies/${study}`, { authorization: 'Bearer caller-token' });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.error, undefined);
    const got = splitMultipart(r.body, String(r.headers['content-type']));
    assert.deepEqual(
      got.map((g) => g.body),
      [parts.get(a1), parts.get(a2), parts.get(b1)],
    );
    const up = fake.requests.slice(before);
    assert.ok(up.length >= 1);
    for (const q of up) {
      assert.equal(q.headers.authorization, 'Bearer service-token');
      assert.equal(q.headers['accept-encoding'], 'identity');
      assert.equal(q.headers.host, new URL(fake.url).host);
      assert.equal(q.headers.connection, undefined, 'kept alive (HTTP/1.1 default)');
      assert.equal(q.servername, false, 'no SNI for an IP literal');
    }
  });

  it('series retrieve keeps the archive boundary; instance retrieve passes the body through with its length', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    const s = await get(`/dicomweb/studies/${study}/series/${seA}`);
    assert.equal(s.status, 200);
    assert.match(String(s.headers['content-type']), new RegExp(`boundary=${B}`));
    assert.deepEqual(
      splitMultipart(s.body, String(s.headers['content-type'])).map((g) => g.body),
      [parts.get(a1), parts.get(a2)],
    );
    const i = await get(`/dicomweb/studies/${study}/series/${seA}/instances/${a1}`);
    assert.equal(i.status, 200);
    const expected = multipartBody([parts.get(a1)!], B);
    assert.deepEqual(i.body, expected);
    assert.equal(i.headers['content-length'], String(expected.length));
  });

  it('a close-delimited body (Connection: close, no length, as Orthanc sends it) that ends while a slow client keeps the gateway paused completes; the process lives (the #5360 scenario end to end; the timing does not make undici 7.30 fail reliably, the next test does)', { timeout: 60_000 }, async (tc) => {
    if (!available) return tc.skip('openssl not available');
    const expected = parts.get(big)!;
    closeDelimitedSent = false;
    for (const p of [`/dicomweb/studies/${bigStudy}/series/${seBig}`, `/dicomweb/studies/${bigStudy}/series/${seBig}/instances/${big}`]) {
      const r = await get(p, {}, true);
      assert.equal(r.status, 200, p);
      assert.equal(r.error, undefined, p);
      const got = splitMultipart(r.body, String(r.headers['content-type']));
      assert.equal(got.length, 1, p);
      assert.ok(got[0]!.body.equals(expected), `${p}: body byte-identical`);
      assertAlive();
    }
    assert.ok(closeDelimitedSent, 'the fake archive sent a close-delimited body');
    assert.equal((await get('/healthz')).status, 200);
  });

  it('Upstream.stream() in its own process: head read, body not read for a while, the close-delimited rest and the FIN arrive meanwhile → completes, no crash (undici 7.30 dies here deterministically)', { timeout: 30_000 }, (tc) => {
    if (!available) return tc.skip('openssl not available');
    // a separate process, so an uncatchable throw shows as its exit status; trust via NODE_EXTRA_CA_CERTS as the gateway's
    const script = path.join(dir, 'slow-start.mts');
    fs.writeFileSync(
      script,
      `import https from 'node:https';
import fs from 'node:fs';
import { Upstream } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../src/dicomweb/upstream.ts'))};
for (const size of [65536, 1000000]) {
  const body = Buffer.alloc(size, 0x61);
  const srv = https.createServer({ key: fs.readFileSync(${JSON.stringify(path.join(dir, 'server.key'))}), cert: fs.readFileSync(${JSON.stringify(path.join(dir, 'server.pem'))}) }, (_q, res) => {
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, { connection: 'close' });
    res.write(body.subarray(0, 10));
    res.end(body.subarray(10));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const u = new Upstream({ name: 'x', url: 'https://127.0.0.1:' + srv.address().port + '/dw', auth: { type: 'none' }, retrieveLocationUids: [], retrieveUrlPrefixes: [], aeTitles: [], maxConnections: 1, headersTimeoutMs: 2000, bodyTimeoutMs: 2000 });
  const r = await u.stream('/x', {}, new AbortController().signal);
  await new Promise((x) => setTimeout(x, 300));
  let n = 0;
  await new Promise((resolve, reject) => r.read({ data: (b) => { n += b.length; setTimeout(r.resume, 1); return false; }, end: resolve, error: reject }));
  if (n !== size) throw new Error('got ' + n + ' of ' + size);
  srv.close();
  await u.pool.close();
}
console.log('completed');
`,
    );
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') }, encoding: 'utf8', timeout: 25_000 });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /completed/);
  });

  it('upstream failure mid-stream → the client sees a broken connection, not a clean body', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    const saved = fake.handler;
    fake.handler = (_req, res) => {
      const body = multipartBody([parts.get(a1)!, parts.get(a2)!], B);
      res.writeHead(200, { 'content-type': CT, 'content-length': String(body.length) });
      res.write(body.subarray(0, 600));
      setTimeout(() => res.destroy(), 50);
    };
    try {
      for (const p of [`/dicomweb/studies/${study}/series/${seA}/instances/${a1}`, `/dicomweb/studies/${study}/series/${seA}`]) {
        const r = await get(p);
        assert.equal(r.status, 200, p);
        assert.ok(r.error, `${p}: expected a broken connection`);
        assert.ok(!r.body.toString('latin1').includes(`--${B}--`));
      }
      assertAlive();
    } finally {
      fake.handler = saved;
    }
  });

  it('slow upstream headers → 504 within headersTimeoutMs', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    const saved = fake.handler;
    fake.handler = (_req, res) => {
      // answers only long after the test's own timeout: a 504 can only come from headersTimeoutMs
      const timer = setTimeout(() => res.writeHead(200).end(), 600_000);
      res.on('close', () => clearTimeout(timer));
    };
    try {
      const r = await json(`/dicomweb/studies/${study}/series/${seA}/instances/${a1}`);
      assert.equal(r.status, 504);
      assert.equal(r.body.code, 'GW_UPSTREAM_TIMEOUT');
    } finally {
      fake.handler = saved;
    }
  });

  it('an upstream certificate the gateway does not trust → 502 before any request reaches it; the process lives', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    for (const p of [`/dicomweb/studies/${rogueStudy}/series/${seRogue}`, `/dicomweb/studies/${rogueStudy}/series/${seRogue}/instances/${r1}`]) {
      const r = await json(p);
      assert.equal(r.status, 502, p);
      assert.equal(r.body.code, 'GW_UPSTREAM_UNREACHABLE');
    }
    assert.equal(rogue.requests.length, 0);
    assertAlive();
    assert.equal((await get(`/dicomweb/studies/${study}/series/${seB}`)).status, 200);
  });

  it('client abort → the upstream TLS request is aborted', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    const saved = fake.handler;
    let started!: () => void;
    const upstreamStarted = new Promise<void>((r) => (started = r));
    fake.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': CT });
      res.write(`--${B}\r\nContent-Type: application/dicom\r\n\r\n`);
      res.write(parts.get(a1)!);
      res.write(`\r\n--${B}\r\nContent-Type: application/dicom\r\n\r\n`);
      started();
      const timer = setInterval(() => res.write(Buffer.alloc(1024)), 20); // trickle, never finishes
      res.on('close', () => clearInterval(timer));
    };
    const abortedBefore = fake.aborted;
    const upstreamClosed = new Promise<void>((r) => (fake.onAbort = r));
    try {
      const req = http.get(`${gw!.url}/dicomweb/studies/${study}/series/${seA}`);
      req.on('error', () => {});
      req.on('response', (res) => res.once('data', () => req.destroy()));
      await upstreamStarted;
      await Promise.race([upstreamClosed, new Promise((_, rej) => setTimeout(() => rej(new Error('upstream request not aborted within 5 s')), 5000))]);
      assert.equal(fake.aborted, abortedBefore + 1);
    } finally {
      fake.handler = saved;
      fake.onAbort = undefined;
    }
  });
});

describe('exchange over TLS (options passed to tls.connect)', () => {
  const run = (servername: string, extra: tls.ConnectionOptions = {}) => {
    let released = 0;
    const p = exchange(
      {
        host: '127.0.0.1',
        port: Number(new URL(fake.url).port),
        authority: `${servername}:${new URL(fake.url).port}`,
        path: `/dicom-web/studies/${study}/series/${seB}/instances/${b1}`,
        headers: { accept: 'multipart/related; type="application/dicom"' },
        signal: new AbortController().signal,
        headersTimeoutMs: 2000,
        bodyTimeoutMs: 2000,
        tls: { servername, ca: fs.readFileSync(path.join(dir, 'ca.pem')), ...extra },
      },
      () => released++,
    );
    return { p, released: () => released };
  };
  const drain = (r: StreamResponse) =>
    new Promise<Buffer>((resolve, reject) => {
      const out: Buffer[] = [];
      r.read({
        data: (b) => {
          out.push(b);
          setTimeout(r.resume, 1); // keeps the chunk: reading waits for resume()
          return false;
        },
        end: () => resolve(Buffer.concat(out)),
        error: reject,
      });
    });

  it('SNI and the certificate name check use servername; the CA comes from the options; a name the certificate lacks is refused', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    const x = run('pacs.test');
    const r = await x.p;
    assert.equal(r.status, 200);
    assert.deepEqual(await drain(r), multipartBody([parts.get(b1)!], B));
    assert.equal(x.released(), 1);
    assert.equal(fake.requests.at(-1)!.headers.host, `pacs.test:${new URL(fake.url).port}`);
    assert.equal(fake.requests.at(-1)!.servername, 'pacs.test');

    const wrong = run('other.test');
    await assert.rejects(wrong.p, (e: NodeJS.ErrnoException) => e.code === 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.equal(wrong.released(), 1);
    const untrusted = run('pacs.test', { ca: fs.readFileSync(path.join(dir, 'rogue.pem')) });
    await assert.rejects(untrusted.p, (e: NodeJS.ErrnoException) => /CERT|SIGNATURE|ISSUER/.test(String(e.code)));
    assert.equal(untrusted.released(), 1);
  });
});
