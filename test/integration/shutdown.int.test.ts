/**
 * Graceful shutdown: close() stops accepting new connections, lets an in-flight
 * request finish, and is bounded by limits.shutdownGraceMs for requests that would not finish.
 * The in-flight request is a WADO-RS retrieve held open by a slow fake upstream.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedManifest, testUid } from '../helpers/dicomweb-seed.js';
import { dicomPart, multipartBody, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

let tdb: TestDb;
let fake: FakeUpstream;
const study = testUid();
const series = testUid();
const sop = testUid();

before(async () => {
  tdb = await createTestDb();
  fake = await startFakeUpstream();
  await seedManifest(tdb.db, { study, series: [{ uid: series, instances: [{ sop }] }] });
});
after(async () => {
  await fake.close();
  await tdb.drop();
});

function get(url: string): Promise<{ status: number; body: Buffer; error?: string }> {
  return new Promise((resolve) => {
    http
      .get(url, { headers: { accept: 'multipart/related; type="application/dicom"' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        res.on('error', (e) => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), error: e.message }));
      })
      .on('error', (e) => resolve({ status: 0, body: Buffer.alloc(0), error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

async function start(graceMs: number): Promise<RunningServer> {
  const config = loadConfig({ DATABASE_URL: tdb.url, PORT: '0', DICOMWEB_UPSTREAM_URL: fake.url, SHUTDOWN_GRACE_MS: String(graceMs), LOG_LEVEL: 'silent' });
  return startServer(config, createLogger('silent'));
}

const path = () => `/dicomweb/studies/${study}/series/${series}/instances/${sop}`;

test('close() drains an in-flight request and refuses new connections', { timeout: 30_000 }, async () => {
  const boundary = 'b0undary';
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const upstreamHit = new Promise<void>((resolve) => {
    fake.handler = (_req, res) => {
      resolve();
      // answer only after the gateway has begun shutting down
      released.then(() => {
        res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` });
        res.end(multipartBody([dicomPart(sop)], boundary));
      });
    };
  });
  const running = await start(10_000);
  const inflight = get(running.url + path());
  await upstreamHit;
  const closing = running.close();
  await new Promise((r) => setTimeout(r, 100));
  const refused = await get(running.url + '/healthz');
  assert.equal(refused.status, 0, 'a new connection after close() is refused');
  release();
  const res = await inflight;
  assert.equal(res.status, 200, 'the in-flight retrieve completed');
  assert.ok(res.body.includes(Buffer.from(boundary)), 'with its body');
  await closing;
});

test('close() is bounded: a request that never finishes is cut after shutdownGraceMs', { timeout: 30_000 }, async () => {
  let hit!: () => void;
  const upstreamHit = new Promise<void>((r) => (hit = r));
  fake.handler = () => hit(); // never answers
  const running = await start(300);
  const inflight = get(running.url + path());
  await upstreamHit;
  const t0 = Date.now();
  await running.close();
  const waited = Date.now() - t0;
  const res = await inflight;
  assert.ok(res.status === 0 || res.error, `the hanging request was cut (${JSON.stringify({ status: res.status, error: res.error })})`);
  assert.ok(waited < 10_000, `close() returned after ${waited} ms, bounded by the grace period`);
});
