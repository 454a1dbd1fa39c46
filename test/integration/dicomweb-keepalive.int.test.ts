/**
 * Upstream keep-alive of the retrieval path (decisions.md D130), against a fake archive on port 0
 * speaking HTTP/1.1 over raw sockets so it can misbehave exactly: frame requests reuse one
 * connection; an idle kept-alive connection that the upstream closes — while idle, or just as the
 * next request crosses the close — costs the client nothing (the GET is retried once on a new
 * connection, never a 502); a failure on the retry is a 502, with no second retry; a
 * close-delimited body is never reused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { seedManifest, testUid } from '../helpers/dicomweb-seed.js';
import { dicomPart, multipartBody } from '../helpers/fake-upstream.js';

const B = 'ka-boundary';
const study = testUid();
const series = testUid();
const sop = testUid();
const closeDelimitedSop = testUid();

/** What the archive does with the n-th request on a connection (1-based) */
type Behaviour = (nOnConn: number) => 'answer' | 'drop';

interface Archive {
  port: number;
  connections: number;
  requests: number;
  behaviour: Behaviour;
  sockets: Set<net.Socket>;
  close: () => Promise<void>;
}

function frameResponse(): Buffer {
  const body = multipartBody([Buffer.alloc(512, 7)], B, 'application/octet-stream');
  const head = `HTTP/1.1 200 OK\r\nContent-Type: multipart/related; type="application/octet-stream"; boundary=${B}\r\nContent-Length: ${body.length}\r\nKeep-Alive: timeout=5\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

function closeDelimitedResponse(): Buffer {
  const body = multipartBody([dicomPart(closeDelimitedSop, 100)], B);
  return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: multipart/related; type="application/dicom"; boundary=${B}\r\n\r\n`, 'latin1'), body]);
}

/** An HTTP/1.1 archive over raw sockets: answers each GET, or drops the connection when told to. */
async function startArchive(): Promise<Archive> {
  const a: Archive = { port: 0, connections: 0, requests: 0, behaviour: () => 'answer', sockets: new Set(), close: async () => {} };
  const srv = net.createServer((sock) => {
    a.connections++;
    a.sockets.add(sock);
    sock.on('close', () => a.sockets.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    let n = 0;
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        a.requests++;
        if (a.behaviour(++n) === 'drop') return void sock.destroy();
        if (head.includes(closeDelimitedSop)) return void sock.end(closeDelimitedResponse());
        sock.write(frameResponse());
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  a.port = (srv.address() as net.AddressInfo).port;
  a.close = () =>
    new Promise<void>((r) => {
      for (const s of a.sockets) s.destroy();
      srv.close(() => r());
    });
  return a;
}

let t: TestApp;
let archive: Archive;
let gw: { base: string; close: () => void };
const agent = new http.Agent({ keepAlive: false });

function get(p: string, accept: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${gw.base}${p}`, { agent, headers: { accept } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
const frame = () => get(`/dicomweb/studies/${study}/series/${series}/instances/${sop}/frames/1`, FRAME_ACCEPT);

/** Until the gateway has seen the upstream's close of every idle connection (no timing assumption: polls the archive's side). */
async function archiveSocketsGone(): Promise<void> {
  while (archive.sockets.size > 0) await new Promise((r) => setTimeout(r, 5));
}

before(async () => {
  archive = await startArchive();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-keepalive-'));
  const cfg = path.join(dir, 'gateway.json');
  const url = `http://127.0.0.1:${archive.port}/dicom-web`;
  fs.writeFileSync(cfg, JSON.stringify({ upstreams: [{ name: 'default', url, auth: { type: 'none' }, maxConnections: 4 }] }));
  t = await createTestApp({ GATEWAY_CONFIG: cfg });
  await seedManifest(t.tdb.db, {
    study,
    series: [{ uid: series, retrieveUrl: `${url}/studies/${study}/series/${series}`, instances: [{ sop, frames: 1 }, { sop: closeDelimitedSop }] }],
  });
  gw = await listenTestApp(t);
});

after(async () => {
  gw.close();
  agent.destroy();
  await t.close();
  await archive.close();
});

beforeEach(async () => {
  archive.behaviour = () => 'answer';
  for (const s of archive.sockets) s.destroy(); // every case starts without a kept connection
  await archiveSocketsGone();
  archive.connections = 0;
  archive.requests = 0;
});

describe('upstream keep-alive (WADO-RS retrieval path)', () => {
  it('sequential frame requests share one upstream connection', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await frame();
      assert.equal(r.status, 200);
      assert.ok(r.body.includes(Buffer.alloc(512, 7)));
    }
    assert.equal(archive.requests, 5);
    assert.equal(archive.connections, 1);
  });

  it('an idle connection the upstream closed is not used again', async () => {
    assert.equal((await frame()).status, 200);
    for (const s of archive.sockets) s.end(); // the archive's idle timeout
    await archiveSocketsGone();
    assert.equal((await frame()).status, 200);
    assert.equal(archive.connections, 2);
    assert.equal(archive.requests, 2);
  });

  it('a kept connection closed just as the next request arrives: retried once on a new connection, the client sees 200', async () => {
    assert.equal((await frame()).status, 200);
    archive.behaviour = (n) => (n === 2 ? 'drop' : 'answer'); // the close crosses the second request on the kept connection
    const r = await frame();
    assert.equal(r.status, 200);
    assert.ok(r.body.includes(Buffer.alloc(512, 7)));
    assert.equal(archive.connections, 2);
    assert.equal(archive.requests, 3, 'first request, the dropped one, its retry');
  });

  it('retried only once: a retry that fails too is a 502', async () => {
    assert.equal((await frame()).status, 200);
    archive.behaviour = (n) => (n >= 2 || archive.connections > 1 ? 'drop' : 'answer');
    const r = await frame();
    assert.equal(r.status, 502);
    assert.equal(archive.requests, 3, 'one request, the dropped one, one retry');
  });

  it('a fresh connection that fails is not retried', async () => {
    archive.behaviour = () => 'drop';
    const r = await frame();
    assert.equal(r.status, 502);
    assert.equal(archive.requests, 1);
  });

  it('a close-delimited body ends its connection: the next request opens a new one', async () => {
    const r = await get(`/dicomweb/studies/${study}/series/${series}/instances/${closeDelimitedSop}`, 'multipart/related; type="application/dicom"');
    assert.equal(r.status, 200);
    assert.equal((await frame()).status, 200);
    assert.equal(archive.connections, 2);
  });
});
