/**
 * Forwarding published manifests as ITI-65 Provide Document Bundles to an MHD Document Recipient
 * that is a second gateway (a real process on its own database): delivered at once when it is up;
 * with it down the publish still stores the manifest locally, reports the forward as pending after
 * its retries, and the background retry delivers it once the recipient is up.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { testUid } from '../helpers/dicomweb-seed.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { makeInstances, pydicomUnavailable, type InstanceSpec } from '../helpers/instances.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';

const CI = process.env.CI === 'true';
const noPy = pydicomUnavailable();
if (noPy && CI) throw new Error(`CI=true and ${noPy}`);
const started = noPy ? { skip: noPy } : await startOrthanc();
const skip = 'skip' in started ? started.skip : false;
if (skip) console.log(`# SKIP publish-forward: ${skip}`);
const orthanc = 'skip' in started ? undefined : (started as Orthanc);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function studySpecs(patient: string): { uid: string; specs: InstanceSpec[] } {
  const uid = testUid();
  const series = testUid();
  return { uid, specs: [1, 2].map((k) => ({ modality: 'CT', study: uid, series, sop: testUid(), seriesNumber: 1, instanceNumber: k, patientId: patient, issuer: 'HOSP', issuerUid: '1.2.826.0.1.3680043.10.543.1' })) };
}

const procs: Array<ReturnType<typeof spawnGateway>> = [];
let source: TestDb;
let recipientDb: TestDb;
let gw: string;
let recipientPort: number;
let tmp: string;

async function publish(study: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${gw}/fhir/ImagingStudy/$publish`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: study }] }) });
  return { status: r.status, body: await r.json() };
}
const forwardOf = (body: any) => Object.fromEntries(body.parameter.find((p: any) => p.name === 'forward').part.map((p: any) => [p.name, p.valueString ?? p.valueCode ?? p.valueInteger]));

async function startRecipient(): Promise<void> {
  const g = spawnGateway({ DATABASE_URL: recipientDb.url, PORT: String(recipientPort), LOG_LEVEL: 'warn' });
  procs.push(g);
  await g.ready;
}

/** Wait until the recipient holds the manifest with these bytes (sha256), or the deadline passes. */
async function waitReceived(sha256: string, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const r = await recipientDb.db.raw('select 1 from manifest where sha256 = ?', [sha256]);
    if (r.rows.length) return true;
    if (Date.now() > end) return false;
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function sourceManifest(study: string): Promise<{ id: string; sha256: string }> {
  return (await source.db.raw(`select id, sha256 from manifest where study_instance_uid = ? and status = 'current'`, [study])).rows[0];
}

describe('forwarding to an MHD Document Recipient (ITI-65)', { skip, timeout: 240_000 }, () => {
  before(async () => {
    source = await createTestDb();
    recipientDb = await createTestDb();
    recipientPort = await freePort();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'publish-forward-'));
    const cfg = path.join(tmp, 'gateway.json');
    // workers: 0 — this suite covers building on the main thread; the others use the worker threads
    fs.writeFileSync(cfg, JSON.stringify({ upstreams: [{ name: 'pacs', url: orthanc!.dicomweb }], publish: { workers: 0, recipients: [{ name: 'peer', url: `http://127.0.0.1:${recipientPort}/fhir`, retries: 2, backoffMs: 200, timeoutMs: 5000 }] } }));
    const g = spawnGateway({ DATABASE_URL: source.url, GATEWAY_CONFIG: cfg, LOG_LEVEL: 'warn' });
    procs.push(g);
    gw = await g.ready;
  });
  after(async () => {
    for (const p of procs) if (p.proc.exitCode === null) { p.proc.kill('SIGKILL'); await p.exited; }
    await source?.drop();
    await recipientDb?.drop();
    await orthanc?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('recipient down: the manifest is stored, the forward is retried and reported pending, then delivered once the recipient is up', async () => {
    const s = studySpecs('F-1');
    for (const b of makeInstances(s.specs)) await orthanc!.upload(b);
    const r = await publish(s.uid);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const f = forwardOf(r.body);
    assert.equal(f.recipient, 'peer');
    assert.equal(f.status, 'pending');
    assert.equal(f.attempts, 2);
    assert.match(String(f.error), /unreachable/);
    const m = await sourceManifest(s.uid);
    assert.ok(m, 'the local manifest is stored');
    await startRecipient();
    assert.ok(await waitReceived(m.sha256, 60_000), 'the recipient received the manifest');
    const d = (await source.db.raw('select status, attempts from publish_delivery where manifest_id = ?', [m.id])).rows[0];
    for (let end = Date.now() + 10_000; d.status !== 'delivered' && Date.now() < end; ) {
      await new Promise((res) => setTimeout(res, 100));
      Object.assign(d, (await source.db.raw('select status, attempts from publish_delivery where manifest_id = ?', [m.id])).rows[0]);
    }
    assert.equal(d.status, 'delivered');
    assert.ok(d.attempts > 2, `attempts ${d.attempts}`);
  });

  it('recipient up: the forward is delivered at once and the recipient serves the KOS byte-identical', async () => {
    const s = studySpecs('F-2');
    for (const b of makeInstances(s.specs)) await orthanc!.upload(b);
    const r = await publish(s.uid);
    assert.equal(r.status, 201);
    const f = forwardOf(r.body);
    assert.equal(f.status, 'delivered');
    assert.equal(f.attempts, 1);
    const m = await sourceManifest(s.uid);
    const kosHere = (await source.db.raw('select content from manifest where id = ?', [m.id])).rows[0].content as Buffer;
    const there = (await recipientDb.db.raw('select content from manifest where sha256 = ?', [m.sha256])).rows[0]?.content as Buffer;
    assert.ok(there && there.equals(kosHere));
  });
});
