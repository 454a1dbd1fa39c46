/**
 * WADO-RS proxy benchmark (issue 7), one run against one real Orthanc (Debian packages):
 *  1. study retrieval throughput through the gateway ÷ direct from Orthanc (target ≥ 0.9);
 *     a ~100 MB study (2 series × 10 instances × 5 MB), medians of interleaved runs;
 *  2. added p50 latency of instance metadata through the gateway (warm series-metadata cache)
 *     versus direct (target ≤ 2 ms);
 *  3. gateway RSS growth while streaming a ≥ 1 GB study (6 multi-frame instances of ~180 MB,
 *     generated here, stored in Orthanc) through the proxy (target ≤ 50 MB).
 * The gateway runs as its own process (`mado-gateway serve` under tsx) so its RSS is its own.
 * Writes bench/results-wado.md. Run: npm run bench:wado [-- --runs 11] [-- --quick]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { syntheticManifest, writeKos } from '../src/dicom/index.js';
import { derivedUid } from '../src/dicom/uid.js';
import { IngestService } from '../src/ingest/service.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import type { Manifest } from '../src/model/manifest.js';
import { createDb } from '../src/store/db.js';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';
import { migrateLatest } from '../src/store/migrate.js';
import { startGateway } from '../test/helpers/gateway-process.js';
import { startOrthanc, type Orthanc } from '../test/helpers/orthanc.js';

const argRuns = process.argv.indexOf('--runs');
const RUNS = Math.max(5, argRuns > 0 ? Number(process.argv[argRuns + 1]) || 11 : 11);
/** --quick: medium study only (throughput + latency), no 1 GB study, results file not written */
const QUICK = process.argv.includes('--quick');
const LAT_ROUNDS = 5;
const LAT_PER_ROUND = 100;
const MF_CLASS = '1.2.840.10008.5.1.4.1.1.7.2'; // Multi-frame Grayscale Byte SC
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

// ---------------------------------------------------------------------------------------------
// A minimal valid multi-frame instance (Explicit VR LE), built in memory

function el(g: number, e: number, vr: string, value: Buffer | string): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(g, 0);
  h.writeUInt16LE(e, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(v.length, 8);
  else h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}
const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

function instance(o: { study: string; series: string; sop: string; seriesNumber: number; number: number; rows: number; frames: number }): Buffer {
  const metaBody = Buffer.concat([el(2, 1, 'OB', Buffer.from([0, 1])), el(2, 2, 'UI', MF_CLASS), el(2, 3, 'UI', o.sop), el(2, 0x10, 'UI', '1.2.840.10008.1.2.1'), el(2, 0x12, 'UI', '1.2.826.0.1.3680043.10.1')]);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(metaBody.length);
  const pixels = Buffer.alloc(o.rows * o.rows * o.frames);
  for (let i = 0; i < pixels.length; i += 4096) pixels[i] = (i / 4096 + o.number) & 0xff;
  const ds = Buffer.concat([
    el(8, 0x16, 'UI', MF_CLASS), el(8, 0x18, 'UI', o.sop), el(8, 0x20, 'DA', '20250101'), el(8, 0x30, 'TM', '120000'), el(8, 0x50, 'SH', 'BENCH'),
    el(8, 0x60, 'CS', 'OT'), el(8, 0x64, 'CS', 'WSD'), el(0x10, 0x10, 'PN', 'Bench^Patient'), el(0x10, 0x20, 'LO', 'BENCH-1'),
    el(0x20, 0x0d, 'UI', o.study), el(0x20, 0x0e, 'UI', o.series), el(0x20, 0x11, 'IS', String(o.seriesNumber)), el(0x20, 0x13, 'IS', String(o.number)),
    el(0x28, 0x02, 'US', us(1)), el(0x28, 0x04, 'CS', 'MONOCHROME2'), el(0x28, 0x08, 'IS', String(o.frames)),
    el(0x28, 0x10, 'US', us(o.rows)), el(0x28, 0x11, 'US', us(o.rows)), el(0x28, 0x100, 'US', us(8)), el(0x28, 0x101, 'US', us(8)), el(0x28, 0x102, 'US', us(7)), el(0x28, 0x103, 'US', us(0)),
    el(0x7fe0, 0x10, 'OB', pixels),
  ]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(2, 0, 'UL', gl), metaBody, ds]);
}

interface StudySpec {
  key: string;
  study: string;
  series: Array<{ uid: string; sops: string[] }>;
}

async function makeStudy(orthanc: Orthanc, key: string, nSeries: number, perSeries: number, rows: number, frames: number): Promise<{ spec: StudySpec; bytes: number }> {
  const study = derivedUid(`bench-wado:${key}:study`);
  const spec: StudySpec = { key, study, series: [] };
  let bytes = 0;
  let n = 0;
  for (let s = 0; s < nSeries; s++) {
    const se = { uid: derivedUid(`bench-wado:${key}:series:${s}`), sops: [] as string[] };
    for (let i = 0; i < perSeries; i++) {
      const sop = derivedUid(`bench-wado:${key}:sop:${s}:${i}`);
      const buf = instance({ study, series: se.uid, sop, seriesNumber: s + 1, number: ++n, rows, frames });
      bytes += buf.length;
      await orthanc.upload(buf);
      se.sops.push(sop);
    }
    spec.series.push(se);
  }
  return { spec, bytes };
}

function manifestFor(spec: StudySpec, dicomweb: string): Manifest {
  const m = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: `bench-wado-${spec.key}` });
  m.study = { ...m.study, studyInstanceUid: spec.study, requests: [], modalities: ['OT'], numberOfSeries: spec.series.length };
  m.evidence = [
    {
      studyInstanceUid: spec.study,
      series: spec.series.map((se, i) => ({
        uid: se.uid,
        modality: 'OT',
        number: i + 1,
        retrieveUrl: `${dicomweb}/studies/${spec.study}/series/${se.uid}`,
        retrieveLocationUid: '1.2.826.0.1.3680043.10.1.2',
        retrieveAeTitle: 'ORTHANC',
        numberOfInstances: se.sops.length,
        instances: se.sops.map((sop, k) => ({ sopClassUid: MF_CLASS, sopInstanceUid: sop, number: k + 1 })),
      })),
    },
  ];
  return m;
}

// ---------------------------------------------------------------------------------------------
// HTTP client (keep-alive, body counted and discarded)

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function fetchCount(url: string, accept: string, onChunk?: () => void): Promise<{ status: number; bytes: number; ms: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { accept } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        onChunk?.();
      });
      res.on('end', () => resolve({ status: res.statusCode!, bytes, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** utime + stime of a process in ms (/proc/PID/stat fields 14 and 15, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const BARE_PROXY = `const http = require('http'); const T = new URL(process.argv[1]);
http.createServer((q, s) => {
  const u = http.request({ host: T.hostname, port: T.port, path: T.pathname + q.url, headers: { accept: q.headers.accept, 'accept-encoding': 'identity' } }, (r) => {
    s.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] }); r.pipe(s);
  });
  u.end();
}).listen(0, '127.0.0.1', function () { console.log('PORT ' + this.address().port); });`;

// ---------------------------------------------------------------------------------------------

const t0 = Date.now();
const started = await startOrthanc({ HttpThreadsCount: 8 });
if ('skip' in started) {
  console.error(`bench:wado needs Orthanc: ${started.skip}`);
  process.exit(2);
}
const orthanc = started;
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-wado-pg-'));
fs.chmodSync(base, 0o755);
const pg = await startEmbeddedPg({ baseDir: base, ephemeral: true });
const dbUrl = pg.url('postgres');
let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
try {
  console.log('# generating and storing instances in Orthanc …');
  const medium = await makeStudy(orthanc, 'medium', 2, 10, 512, 20); // 20 × 5.2 MB
  const big = QUICK ? { spec: undefined, bytes: 0 } : await makeStudy(orthanc, 'big', 2, 3, 512, 690); // 6 × 181 MB
  console.log(`# medium study ${(medium.bytes / 1e6).toFixed(0)} MB, big study ${(big.bytes / 1e6).toFixed(0)} MB stored (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  const config = loadConfig({ DATABASE_URL: dbUrl, DICOMWEB_UPSTREAM_URL: orthanc.dicomweb, LOG_LEVEL: 'warn' });
  const db = createDb({ url: dbUrl, poolMax: 4 });
  await migrateLatest(db);
  const svc = new IngestService({ db, config });
  for (const s of [medium.spec, big.spec]) if (s) await svc.submitKos(writeKos(manifestFor(s, orthanc.dicomweb)));

  gateway = await startGateway({ DATABASE_URL: dbUrl, DICOMWEB_UPSTREAM_URL: orthanc.dicomweb, LOG_LEVEL: 'warn' });
  const gw = `${gateway.url}/dicomweb`;
  const pid = gateway.proc.pid!;

  // Calibration: a bare Node pipe proxy (no parsing, no filtering, no DB, no auth) in its own
  // process — what any extra hop costs on this machine at this moment.
  const bare = spawn(process.execPath, ['-e', BARE_PROXY, orthanc.dicomweb], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bareUrl = await new Promise<string>((resolve) => bare.stdout!.on('data', (c: Buffer) => {
    const m = /PORT (\d+)/.exec(String(c));
    if (m) resolve(`http://127.0.0.1:${m[1]}`);
  }));

  const loadStart = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  // 1. Throughput (interleaved; order alternates each run)
  const studyPath = `/studies/${medium.spec.study}`;
  const warmD = await fetchCount(orthanc.dicomweb + studyPath, ACCEPT);
  const warmG = await fetchCount(gw + studyPath, ACCEPT);
  if (warmD.status !== 200 || warmG.status !== 200) throw new Error(`warm-up failed: direct ${warmD.status}, gateway ${warmG.status}`);
  await fetchCount(bareUrl + studyPath, ACCEPT);
  const direct: number[] = [];
  const via: number[] = [];
  const viaBare: number[] = [];
  const orders = [['d', 'g', 'b'], ['g', 'b', 'd'], ['b', 'd', 'g']];
  // CPU accounting (core-ms per GB moved) per process and side: shows whether the sides are
  // CPU-bound on this machine and what the extra hop costs, independent of wall-clock noise.
  const cpu = { d: { o: 0, c: 0, p: 0, gb: 0 }, g: { o: 0, c: 0, p: 0, gb: 0 }, b: { o: 0, c: 0, p: 0, gb: 0 } };
  for (let r = 0; r < RUNS; r++) {
    for (const o of orders[r % 3]!) {
      const proxyPid = o === 'g' ? pid : o === 'b' ? bare.pid! : undefined;
      const o0 = cpuMs(orthanc.proc.pid!), p0 = proxyPid ? cpuMs(proxyPid) : 0, c0 = process.cpuUsage();
      const x = await fetchCount((o === 'd' ? orthanc.dicomweb : o === 'g' ? gw : bareUrl) + studyPath, ACCEPT);
      const c1 = process.cpuUsage(c0);
      const acc = cpu[o as 'd' | 'g' | 'b'];
      acc.o += cpuMs(orthanc.proc.pid!) - o0;
      acc.p += proxyPid ? cpuMs(proxyPid) - p0 : 0;
      acc.c += (c1.user + c1.system) / 1000;
      acc.gb += x.bytes / 1e9;
      if (x.status !== 200) throw new Error(`study retrieval ${o} → ${x.status}`);
      (o === 'd' ? direct : o === 'g' ? via : viaBare).push(x.bytes / 1e6 / (x.ms / 1000));
    }
  }
  for (const [k, a] of Object.entries(cpu)) {
    console.log(`# cpu ${k === 'd' ? 'direct ' : k === 'g' ? 'gateway' : 'bare   '} core-ms/GB: orthanc ${(a.o / a.gb).toFixed(0)}, proxy ${(a.p / a.gb).toFixed(0)}, client ${(a.c / a.gb).toFixed(0)}`);
  }
  bare.kill();
  const ratio = median(via) / median(direct);
  const bareRatio = median(viaBare) / median(direct);
  console.log(`# throughput direct ${median(direct).toFixed(0)} MB/s, gateway ${median(via).toFixed(0)} MB/s, ratio ${ratio.toFixed(3)} (bare pipe proxy ${median(viaBare).toFixed(0)} MB/s, ratio ${bareRatio.toFixed(3)})`);

  // 2. Instance metadata latency (warm cache), interleaved rounds
  const se = medium.spec.series[0]!;
  const metaPath = (sop: string) => `/studies/${medium.spec.study}/series/${se.uid}/instances/${sop}/metadata`;
  await fetchCount(gw + metaPath(se.sops[0]!), 'application/dicom+json');
  const latD: number[] = [];
  const latG: number[] = [];
  for (let r = 0; r < LAT_ROUNDS; r++) {
    for (const o of r % 2 ? ['g', 'd'] : ['d', 'g']) {
      for (let i = 0; i < LAT_PER_ROUND; i++) {
        const sop = se.sops[i % se.sops.length]!;
        const x = await fetchCount((o === 'd' ? orthanc.dicomweb : gw) + metaPath(sop), 'application/dicom+json');
        if (x.status !== 200) throw new Error(`metadata ${o} → ${x.status}`);
        (o === 'd' ? latD : latG).push(x.ms);
      }
    }
  }
  const added = median(latG) - median(latD);
  console.log(`# instance metadata p50 direct ${median(latD).toFixed(2)} ms, gateway ${median(latG).toFixed(2)} ms, added ${added.toFixed(2)} ms`);

  // 2b. The same through an in-process app built without the audit recorder (AppDeps.disableAudit,
  // bench-only switch): isolates what the DICOMweb code adds from the audit trail's cost.
  const inproc = buildApp({ config, db, log: createLogger('silent'), version: 'bench', disableAudit: true });
  const srv = http.createServer(inproc.app);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const gwNoAudit = `http://127.0.0.1:${(srv.address() as import('node:net').AddressInfo).port}/dicomweb`;
  await fetchCount(gwNoAudit + metaPath(se.sops[0]!), 'application/dicom+json');
  const latD2: number[] = [];
  const latN: number[] = [];
  for (let r = 0; r < LAT_ROUNDS; r++) {
    for (const o of r % 2 ? ['g', 'd'] : ['d', 'g']) {
      for (let i = 0; i < LAT_PER_ROUND; i++) {
        const x = await fetchCount((o === 'd' ? orthanc.dicomweb : gwNoAudit) + metaPath(se.sops[i % se.sops.length]!), 'application/dicom+json');
        (o === 'd' ? latD2 : latN).push(x.ms);
      }
    }
  }
  srv.closeAllConnections();
  srv.close();
  await db.destroy();
  const addedNoAudit = median(latN) - median(latD2);
  console.log(`# instance metadata p50 (in-process, audit off) direct ${median(latD2).toFixed(2)} ms, gateway ${median(latN).toFixed(2)} ms, added ${addedNoAudit.toFixed(2)} ms`);

  if (big.spec) {
  // 3. RSS while streaming the ≥ 1 GB study through the proxy
  const bigPath = `/studies/${big.spec!.study}`;
  const bigDirect = await fetchCount(orthanc.dicomweb + bigPath, ACCEPT);
  await new Promise((r) => setTimeout(r, 500));
  const rssBefore = rssMb(pid);
  let rssMax = rssBefore;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMb(pid))), 25);
  const bigVia = await fetchCount(gw + bigPath, ACCEPT);
  clearInterval(sampler);
  rssMax = Math.max(rssMax, rssMb(pid));
  const growth = rssMax - rssBefore;
  if (bigVia.status !== 200 || bigVia.bytes < 1e9) throw new Error(`big study through gateway: ${bigVia.status}, ${bigVia.bytes} bytes`);
  console.log(`# big study ${(bigVia.bytes / 1e9).toFixed(2)} GB via gateway in ${(bigVia.ms / 1000).toFixed(1)} s (direct ${(bigDirect.ms / 1000).toFixed(1)} s); RSS ${rssBefore.toFixed(0)} → max ${rssMax.toFixed(0)} MB (+${growth.toFixed(1)} MB)`);

  const pass = (ok: boolean) => (ok ? 'pass' : '**FAIL**');
  const md = `# WADO-RS proxy benchmark (issue 7)

Command: \`npm run bench:wado\` (${RUNS} interleaved throughput runs, ${LAT_ROUNDS}×${LAT_PER_ROUND} interleaved metadata requests per side).
Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB RAM, Node ${process.version}. Date: ${new Date().toISOString()}.
Load average at start / end of the measurements: ${loadStart} / ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (other work on the machine competes with Orthanc, gateway and client for ${os.cpus().length} cores).
Upstream: one Orthanc (Debian packages, DICOMweb plugin) on loopback; gateway = \`mado-gateway serve\` as its own process (tsx), embedded PostgreSQL;
client, gateway and Orthanc share the machine. Instances are generated by this script (Multi-frame Grayscale Byte SC, Explicit VR LE) and stored in Orthanc.
Every study/series retrieval through the gateway is parsed and filtered part by part (src/dicomweb/multipart.ts), never passed through blindly.

| Measure | Direct (Orthanc) | Through gateway | Result | Target |
|---|---|---|---|---|
| Study retrieval throughput, ${(medium.bytes / 1e6).toFixed(0)} MB study (20 instances, 2 series), median MB/s | ${median(direct).toFixed(0)} | ${median(via).toFixed(0)} | ratio **${ratio.toFixed(3)}** | ≥ 0.9 ${pass(ratio >= 0.9)} |
| Calibration: bare Node pipe proxy (own process, no parsing/DB/auth), same runs, median MB/s | ${median(direct).toFixed(0)} | ${median(viaBare).toFixed(0)} | ratio ${bareRatio.toFixed(3)} | (context) |
| Instance metadata p50 latency (warm series-metadata cache), ms | ${median(latD).toFixed(2)} | ${median(latG).toFixed(2)} | added **${added.toFixed(2)} ms** | ≤ 2 ms ${pass(added <= 2)} |
| Same, in-process app without the audit recorder (isolates the DICOMweb code), ms | ${median(latD2).toFixed(2)} | ${median(latN).toFixed(2)} | added **${addedNoAudit.toFixed(2)} ms** | ≤ 2 ms ${pass(addedNoAudit <= 2)} |
| Gateway RSS growth while streaming a ${(bigVia.bytes / 1e9).toFixed(2)} GB study (6 × ${(big.bytes / 6 / 1e6).toFixed(0)} MB multi-frame instances) | – | ${rssBefore.toFixed(0)} → ${rssMax.toFixed(0)} MB | **+${growth.toFixed(1)} MB** | ≤ 50 MB ${pass(growth <= 50)} |
| ${(bigVia.bytes / 1e9).toFixed(2)} GB study retrieval time (single run, informative) | ${(bigDirect.ms / 1000).toFixed(1)} s | ${(bigVia.ms / 1000).toFixed(1)} s | | |

Throughput samples (MB/s) — direct: ${direct.map((x) => x.toFixed(0)).join(', ')}; gateway: ${via.map((x) => x.toFixed(0)).join(', ')}; bare proxy: ${viaBare.map((x) => x.toFixed(0)).join(', ')}.
`;
  fs.writeFileSync(path.join(import.meta.dirname, 'results-wado.md'), md);
  console.log(md);
  }
} finally {
  if (gateway) {
    gateway.proc.kill('SIGTERM');
    await gateway.exited;
  }
  agent.destroy();
  await orthanc.stop();
  await pg.stop();
  fs.rmSync(base, { recursive: true, force: true });
}
