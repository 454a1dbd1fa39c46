/**
 * The world of bench/wado.ts: a real Orthanc (Debian packages) reached over http: and over an
 * https: front (certificate from a throw-away CA), an embedded PostgreSQL with the manifests, the
 * gateway as its own process (`mado-gateway serve`, trusting the CA through NODE_EXTRA_CA_CERTS,
 * one upstream per URL), and the TCP relay floor (bench/proxy-variants.ts) in its own process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeKos } from '../src/dicom/index.js';
import { loadConfig } from '../src/config.js';
import { IngestService } from '../src/ingest/service.js';
import { createDb } from '../src/store/db.js';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';
import { migrateLatest } from '../src/store/migrate.js';
import { startGateway, type GatewayProcess } from '../test/helpers/gateway-process.js';
import { startOrthanc, type Orthanc } from '../test/helpers/orthanc.js';
import { issueCert, makeCa } from '../test/helpers/pki.js';
import { pgVersion } from './lib/report.js';
import { startVariant } from './proxy-variants.js';
import { makeStudy, manifestFor, type StudySpec } from './wado-study.js';

export interface Studies {
  /** Large study: core-ms per GB */
  large: StudySpec;
  largeBytes: number;
  /** Six single-frame instances: study retrieval and one instance */
  six: StudySpec;
  /** One multi-frame instance at the plain Orthanc, and the same at the TLS Orthanc */
  frames: StudySpec;
  framesTls: StudySpec;
}

export interface World {
  plain: Orthanc;
  /** https: front of the same Orthanc (DICOMweb base URL) */
  tls: { url: string; proc: ChildProcess };
  gateway: GatewayProcess;
  /** The gateway's environment (to start another one like it) */
  gatewayEnv: Record<string, string>;
  /** Gateway base URL …/dicomweb */
  gw: string;
  relay: { url: string; proc: ChildProcess };
  studies: Studies;
  versions: { postgres: string; orthanc: string };
  stop: () => Promise<void>;
}

async function orthancOrExit(): Promise<Orthanc> {
  const o = await startOrthanc({ HttpThreadsCount: 16 });
  if ('skip' in o) {
    console.error(`bench:wado needs Orthanc: ${o.skip}`);
    process.exit(2);
  }
  return o;
}

/**
 * An https: front for the Orthanc (TLS terminated in its own Node process, then plain TCP to
 * Orthanc), with a certificate for 127.0.0.1 from a CA made here. Orthanc 1.10.1 from Debian
 * resets every request on its own https port after the handshake (SslEnabled; TLS 1.2 and 1.3
 * alike), so TLS is terminated in front of it, as a reverse proxy in front of an archive does.
 */
async function startTlsFront(dir: string, o: Orthanc): Promise<{ url: string; proc: ChildProcess; ca: string }> {
  makeCa(dir, 'bench CA');
  issueCert(dir, 'front', '/CN=127.0.0.1', 'IP:127.0.0.1');
  const code = `const tls = require('tls'); const net = require('net'); const fs = require('fs'); const [key, cert, port] = process.argv.slice(1);
tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (c) => {
  const u = net.connect({ port: Number(port), host: '127.0.0.1', noDelay: true });
  c.setNoDelay(true); c.pipe(u); u.pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
}).listen(0, '127.0.0.1', function () { console.log('PORT ' + this.address().port); });`;
  const proc = spawn(process.execPath, ['-e', code, path.join(dir, 'front.key'), path.join(dir, 'front.pem'), new URL(o.url).port], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      const m = /PORT (\d+)/.exec(String(c));
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`TLS front exited ${code}`)));
  });
  return { url: `https://127.0.0.1:${port}${new URL(o.dicomweb).pathname}`, proc, ca: path.join(dir, 'ca.pem') };
}

async function storeStudies(plain: Orthanc, largeMb: number): Promise<Studies> {
  // 10 instances of 512 × 512 × n frames (8 bit) in 2 series
  const frames = Math.max(1, Math.round((largeMb * 1e6) / 10 / (512 * 512)));
  const large = await makeStudy(plain, 'large', 2, 5, 512, frames);
  const six = await makeStudy(plain, 'six', 1, 6, 512, 1);
  const f = await makeStudy(plain, 'frames', 1, 1, 512, 8);
  const ft = await makeStudy(plain, 'frames-tls', 1, 1, 512, 8);
  return { large: large.spec, largeBytes: large.bytes, six: six.spec, frames: f.spec, framesTls: ft.spec };
}

async function ingest(dbUrl: string, s: Studies, plain: Orthanc, tlsBase: string): Promise<string> {
  const config = loadConfig({ DATABASE_URL: dbUrl, DICOMWEB_UPSTREAM_URL: plain.dicomweb, LOG_LEVEL: 'warn' });
  const db = createDb({ url: dbUrl, poolMax: 2 });
  try {
    await migrateLatest(db);
    const svc = new IngestService({ db, config });
    for (const spec of [s.large, s.six, s.frames]) await svc.submitKos(writeKos(manifestFor(spec, plain.dicomweb)));
    await svc.submitKos(writeKos(manifestFor(s.framesTls, tlsBase)));
    return await pgVersion(db);
  } finally {
    await db.destroy();
  }
}

async function orthancVersion(o: Orthanc): Promise<string> {
  const r = await fetch(`${o.url}/system`);
  return ((await r.json()) as { Version?: string }).Version ?? 'unknown';
}

/** Everything up; `largeMb`: size of the large study. Whatever started is stopped again when a later step fails. */
export async function startWorld(largeMb: number): Promise<World> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-wado-'));
  fs.chmodSync(dir, 0o755);
  const undo: Array<() => unknown> = [() => fs.rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const u of undo.reverse()) await u();
  };
  try {
    const pg = await startEmbeddedPg({ baseDir: path.join(dir, 'pg'), ephemeral: true });
    undo.push(() => pg.stop());
    const plain = await orthancOrExit();
    undo.push(() => plain.stop());
    const tls = await startTlsFront(dir, plain);
    undo.push(() => tls.proc.kill());
    const studies = await storeStudies(plain, largeMb);
    const dbUrl = pg.url('postgres');
    const postgres = await ingest(dbUrl, studies, plain, tls.url);
    const cfg = path.join(dir, 'gateway.json');
    fs.writeFileSync(cfg, JSON.stringify({ upstreams: [{ name: 'default', url: plain.dicomweb }, { name: 'tls', url: tls.url }] }));
    const gatewayEnv = { DATABASE_URL: dbUrl, GATEWAY_CONFIG: cfg, LOG_LEVEL: 'warn', NODE_EXTRA_CA_CERTS: tls.ca };
    const gateway = await startGateway(gatewayEnv);
    undo.push(async () => {
      gateway.proc.kill('SIGTERM');
      await gateway.exited;
    });
    const relay = await startVariant('net-onread', plain.dicomweb);
    undo.push(() => relay.proc.kill());
    return { plain, tls, gateway, gatewayEnv, gw: `${gateway.url}/dicomweb`, relay, studies, versions: { postgres, orthanc: await orthancVersion(plain) }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
