/**
 * WADO-RS proxy benchmark: one run measures, against floors and peers of the same run, in
 * interleaved rounds (order rotated each round), medians:
 *  1. CPU of the gateway process per GB of a large study retrieval ÷ the TCP relay floor's (a Node
 *     process that only moves bytes: reused 1 MiB read buffer, no HTTP; bench/proxy-variants.ts);
 *  2. small retrievals at 8 concurrent clients — one frame, one instance, a 6-instance study —
 *     request rate through the gateway ÷ direct from Orthanc;
 *  3. frame by frame from an https: Orthanc through the gateway ÷ from the plain http: one.
 * Real Orthancs (Debian packages), embedded PostgreSQL, the gateway as its own process
 * (`mado-gateway serve`, default deployment: audit on); the load generator (autocannon,
 * bench/lib/load.ts) in its own process. Writes bench/results-wado.md via finishBench.
 * Run: npm run bench:wado [-- --rounds 3 --duration 4 --large-mb 200 --quick]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { benchHeader, finishBench, loadNow, median, numArg, range, type SummaryRow } from './lib/report.js';
import { cpuMs } from './lib/cpu.js';
import { startWorld, type World } from './wado-world.js';

const QUICK = process.argv.includes('--quick');
/** The options of this run as typed, without where the results file goes */
const ARGS = process.argv.slice(2).filter((a, i, all) => a !== '--out' && all[i - 1] !== '--out').join(' ');
const ROUNDS = Math.max(QUICK ? 1 : 3, numArg('rounds', QUICK ? 1 : 3));
const DURATION = numArg('duration', QUICK ? 2 : 4);
const CONNECTIONS = 8;
const LARGE_MB = numArg('large-mb', QUICK ? 100 : 200);
/** Retrievals of the large study per side and round */
const BULK_REPEAT = QUICK ? 1 : 2;
const DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const OCTETS = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET with the body counted and discarded. */
function fetchCount(url: string, accept: string): Promise<{ status: number; bytes: number; ms: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: { accept } }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode!, bytes, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------------------------------------------------------------------------------------------
// 1. Large study: core-ms per GB of the hop

type BulkSide = 'gateway' | 'relay' | 'direct';
interface BulkResult {
  coreMsPerGb: Record<BulkSide, number[]>;
  mbps: Record<BulkSide, number[]>;
  orthancCoreMsPerGb: number[];
  rss: { before: number; max: number };
}

async function bulkRounds(w: World): Promise<BulkResult> {
  const sides: BulkSide[] = ['gateway', 'relay', 'direct'];
  const base: Record<BulkSide, string> = { gateway: w.gw, relay: w.relay.url, direct: w.plain.dicomweb };
  const pid: Record<BulkSide, number | undefined> = { gateway: w.gateway.proc.pid, relay: w.relay.proc.pid, direct: undefined };
  const r: BulkResult = { coreMsPerGb: { gateway: [], relay: [], direct: [] }, mbps: { gateway: [], relay: [], direct: [] }, orthancCoreMsPerGb: [], rss: { before: rssMb(w.gateway.proc.pid!), max: 0 } };
  const url = (s: BulkSide) => `${base[s]}/studies/${w.studies.large.study}`;
  for (const s of sides) await expectOk(fetchCount(url(s), DICOM), `warm-up ${s}`);
  r.rss.before = rssMb(w.gateway.proc.pid!);
  const sampler = setInterval(() => (r.rss.max = Math.max(r.rss.max, rssMb(w.gateway.proc.pid!))), 20);
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < sides.length; i++) {
      const s = sides[(i + round) % sides.length]!;
      const p0 = pid[s] ? cpuMs(pid[s]) : 0;
      const o0 = cpuMs(w.plain.proc.pid!);
      let bytes = 0;
      let ms = 0;
      for (let k = 0; k < BULK_REPEAT; k++) {
        const x = await expectOk(fetchCount(url(s), DICOM), `large study ${s}`);
        bytes += x.bytes;
        ms += x.ms;
      }
      if (pid[s]) r.coreMsPerGb[s].push((cpuMs(pid[s]) - p0) / (bytes / 1e9));
      r.orthancCoreMsPerGb.push((cpuMs(w.plain.proc.pid!) - o0) / (bytes / 1e9));
      r.mbps[s].push(bytes / 1e6 / (ms / 1000));
    }
  }
  clearInterval(sampler);
  return r;
}

async function expectOk<T extends { status: number }>(p: Promise<T>, what: string): Promise<T> {
  const x = await p;
  if (x.status !== 200) throw new Error(`${what}: HTTP ${x.status}`);
  return x;
}

// ---------------------------------------------------------------------------------------------
// 2 + 3. Small retrievals at 8 clients (the load generator in its own process)

const exec = promisify(execFile);

interface LoadRun {
  rps: number;
  p50: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
}

async function load(url: string, accept: string): Promise<LoadRun> {
  const arg = JSON.stringify({ url, headers: { accept }, connections: CONNECTIONS, duration: DURATION, engine: 'http' });
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'lib/load.ts'), arg], { cwd: path.join(import.meta.dirname, '..') });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as LoadRun;
  if (r.non2xx || r.errors || !r.total) throw new Error(`load run against ${url}: ${JSON.stringify(r)}`);
  return r;
}

type Small = 'frame' | 'instance' | 'study6';
type SmallSide = 'direct' | 'gateway';
/** Request rates per retrieval and side, plus the gateway's frames from the https: Orthanc */
interface SmallResult {
  rps: Record<Small, Record<SmallSide, number[]>>;
  p50: Record<Small, Record<SmallSide, number[]>>;
  tlsFrame: number[];
  tlsP50: number[];
  /** Gateway and Orthanc CPU per request (core-ms), per retrieval and side, pooled over the rounds */
  cpu: Record<string, { gateway: number; orthanc: number; requests: number }>;
}

function smallPaths(w: World): Record<Small | 'tlsFrame', { path: string; accept: string }> {
  const { six, frames, framesTls } = w.studies;
  const inst = (s: typeof six, i = 0) => `/studies/${s.study}/series/${s.series[0]!.uid}/instances/${s.series[0]!.sops[i]!}`;
  return {
    frame: { path: `${inst(frames)}/frames/1`, accept: OCTETS },
    instance: { path: inst(six, 2), accept: DICOM },
    study6: { path: `/studies/${six.study}`, accept: DICOM },
    tlsFrame: { path: `${inst(framesTls)}/frames/1`, accept: OCTETS },
  };
}

async function smallRounds(w: World): Promise<SmallResult> {
  const paths = smallPaths(w);
  const kinds: Small[] = ['frame', 'instance', 'study6'];
  const empty = () => ({ direct: [] as number[], gateway: [] as number[] });
  const r: SmallResult = { rps: { frame: empty(), instance: empty(), study6: empty() }, p50: { frame: empty(), instance: empty(), study6: empty() }, tlsFrame: [], tlsP50: [], cpu: {} };
  for (const k of [...kinds, 'tlsFrame' as const]) await expectOk(fetchCount(w.gw + paths[k].path, paths[k].accept), `warm-up ${k}`);
  for (const k of kinds) await expectOk(fetchCount(w.plain.dicomweb + paths[k].path, paths[k].accept), `warm-up direct ${k}`);
  for (let round = 0; round < ROUNDS; round++) {
    // one round: every (retrieval, side) once, the order rotated by the round
    const runs: Array<{ k: Small | 'tlsFrame'; side: SmallSide }> = [...kinds.flatMap((k) => [{ k, side: 'direct' as const }, { k, side: 'gateway' as const }]), { k: 'tlsFrame', side: 'gateway' }];
    for (let i = 0; i < runs.length; i++) {
      const { k, side } = runs[(i + round * 3) % runs.length]!;
      const g0 = cpuMs(w.gateway.proc.pid!), o0 = cpuMs(w.plain.proc.pid!);
      const x = await load((side === 'direct' ? w.plain.dicomweb : w.gw) + paths[k].path, paths[k].accept);
      const c = (r.cpu[`${k} ${side}`] ??= { gateway: 0, orthanc: 0, requests: 0 });
      c.gateway += cpuMs(w.gateway.proc.pid!) - g0;
      c.orthanc += cpuMs(w.plain.proc.pid!) - o0;
      c.requests += x.total;
      console.log(`# round ${round + 1} ${k} ${side}: ${x.rps.toFixed(0)} req/s, p50 ${x.p50} ms, p99 ${x.p99} ms`);
      if (k === 'tlsFrame') {
        r.tlsFrame.push(x.rps);
        r.tlsP50.push(x.p50);
      } else {
        r.rps[k][side].push(x.rps);
        r.p50[k][side].push(x.p50);
      }
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Report

const f0 = (x: number) => x.toFixed(0);
const f2 = (x: number) => x.toFixed(2);

function bulkMarkdown(w: World, b: BulkResult): string {
  const rows = (['gateway', 'relay'] as const).map((s) => `| ${s === 'gateway' ? 'gateway (filtered multipart, auth, audit)' : 'TCP relay floor (no HTTP)'} | **${f0(median(b.coreMsPerGb[s]))}** | ${range(b.coreMsPerGb[s], f0)} | ${f0(median(b.mbps[s]))} |`);
  return `## 1. Large study: CPU of the hop per GB

${(w.studies.largeBytes / 1e6).toFixed(0)} MB study (10 multi-frame instances in 2 series), ${BULK_REPEAT} retrievals per side and round, ${ROUNDS} rounds, order rotated (gateway, relay, direct).
Core-ms per GB = utime + stime of the hop's process (/proc, 10 ms ticks) ÷ GB moved. Direct from Orthanc: ${f0(median(b.mbps.direct))} MB/s median; Orthanc itself ${f0(median(b.orthancCoreMsPerGb))} core-ms/GB.

| hop | core-ms/GB (median) | range | MB/s (median) |
|---|---|---|---|
${rows.join('\n')}

Gateway RSS while streaming: ${f0(b.rss.before)} MB before, ${f0(b.rss.max)} MB max (+${(b.rss.max - b.rss.before).toFixed(1)} MB).`;
}

function smallMarkdown(s: SmallResult): string {
  const label: Record<Small, string> = { frame: 'one frame (256 KiB)', instance: 'one instance (262 KB)', study6: '6-instance study (1.6 MB)' };
  const rows = (['frame', 'instance', 'study6'] as const).map((k) => {
    const d = s.rps[k].direct;
    const g = s.rps[k].gateway;
    return `| ${label[k]} | ${f0(median(d))} (${range(d, f0)}) | ${f0(median(g))} (${range(g, f0)}) | **${f2(median(g) / median(d))}** | ${median(s.p50[k].direct)} / ${median(s.p50[k].gateway)} |`;
  });
  const g = s.rps.frame.gateway;
  return `## 2. Small retrievals, ${CONNECTIONS} concurrent clients

${ROUNDS} rounds × ${DURATION} s per (retrieval, side), order rotated each round; the load generator (Node http client, keep-alive, bench/lib/load.ts) in its own process.

| retrieval | direct req/s (range) | gateway req/s (range) | gateway ÷ direct | p50 ms direct / gateway |
|---|---|---|---|---|
${rows.join('\n')}

## 3. Frame by frame from an https: upstream

The same frame request through the gateway, from an Orthanc speaking https (certificate from a CA the gateway trusts) and from the plain http one, in the same rounds.

| upstream | gateway req/s (range) | p50 ms |
|---|---|---|
| http: | ${f0(median(g))} (${range(g, f0)}) | ${median(s.p50.frame.gateway)} |
| https: | ${f0(median(s.tlsFrame))} (${range(s.tlsFrame, f0)}) | ${median(s.tlsP50)} |

https ÷ http: **${f2(median(s.tlsFrame) / median(g))}**

CPU per request (core-ms, utime + stime over all rounds ÷ requests; the gateway's includes its share of loopback TCP in the kernel):

| retrieval, side | gateway | Orthanc |
|---|---|---|
${Object.entries(s.cpu).map(([k, c]) => `| ${k} | ${f2(c.gateway / c.requests)} | ${f2(c.orthanc / c.requests)} |`).join('\n')}`;
}

function outcome(b: BulkResult, s: SmallResult): { summary: SummaryRow[]; result: Record<string, number> } {
  const result = {
    'wado.core-ms-per-GB/relay': median(b.coreMsPerGb.gateway) / median(b.coreMsPerGb.relay),
    'wado.frame/direct': median(s.rps.frame.gateway) / median(s.rps.frame.direct),
    'wado.instance/direct': median(s.rps.instance.gateway) / median(s.rps.instance.direct),
    'wado.study6/direct': median(s.rps.study6.gateway) / median(s.rps.study6.direct),
    'wado.tls/plain': median(s.tlsFrame) / median(s.rps.frame.gateway),
  };
  // a miss that two decimals would round onto the target (0.599 → "0.60") is shown with three
  const verdict = (x: number, ok: boolean, goal: number) => `${!ok && f2(x) === f2(goal) ? x.toFixed(3) : f2(x)}${ok ? '' : ' (not met)'}`;
  const row = (measure: string, k: keyof typeof result, target: string, ok: boolean): SummaryRow => ({ issue: '20', measure, result: verdict(result[k], ok, Number(target.replace(/[^\d.]/g, ''))), target });
  const summary = [
    row(`WADO-RS large study: gateway core-ms/GB ÷ TCP relay floor (${f0(median(b.coreMsPerGb.gateway))} ÷ ${f0(median(b.coreMsPerGb.relay))})`, 'wado.core-ms-per-GB/relay', '≤ 1.2', result['wado.core-ms-per-GB/relay'] <= 1.2),
    row(`WADO-RS one frame, ${CONNECTIONS} clients: gateway ÷ direct Orthanc req/s`, 'wado.frame/direct', '≥ 0.6', result['wado.frame/direct'] >= 0.6),
    row(`WADO-RS one instance, ${CONNECTIONS} clients: gateway ÷ direct Orthanc req/s`, 'wado.instance/direct', '≥ 0.6', result['wado.instance/direct'] >= 0.6),
    row(`WADO-RS 6-instance study, ${CONNECTIONS} clients: gateway ÷ direct Orthanc req/s`, 'wado.study6/direct', '≥ 0.6', result['wado.study6/direct'] >= 0.6),
    row('WADO-RS frame by frame through the gateway: https: ÷ http: upstream req/s', 'wado.tls/plain', '≥ 0.8', result['wado.tls/plain'] >= 0.8),
  ];
  return { summary, result };
}

const w = await startWorld(LARGE_MB);
try {
  const header = benchHeader({ postgres: w.versions.postgres, orthanc: w.versions.orthanc });
  console.log(`# ${header}`);
  const bulk = await bulkRounds(w);
  console.log(`# core-ms/GB gateway ${bulk.coreMsPerGb.gateway.map(f0).join(', ')}; relay ${bulk.coreMsPerGb.relay.map(f0).join(', ')}`);
  const small = await smallRounds(w);
  const md = `# WADO-RS proxy benchmark

Command: \`npm run bench:wado${ARGS ? ` -- ${ARGS}` : ''}\`. ${header}; load average at the end ${loadNow()}.
Two shared cores: the client, the gateway, Orthanc and PostgreSQL share them, and other work on the machine may compete (see the load averages); every ratio compares sides measured in the same rounds.
Upstream: Orthanc ${w.versions.orthanc} (Debian packages, DICOMweb plugin) on loopback, over http: and over an https: front (TLS terminated by a Node process in front of the same Orthanc: Orthanc 1.10.1's own https port resets every request here). Gateway: \`mado-gateway serve\` in its own process (tsx), embedded PostgreSQL ${w.versions.postgres}, default deployment (no auth configured, audit trail on). Instances generated here (Multi-frame Grayscale Byte SC, Explicit VR Little Endian).

${bulkMarkdown(w, bulk)}

${smallMarkdown(small)}
`;
  finishBench('results-wado.md', md, outcome(bulk, small));
} finally {
  agent.destroy();
  await w.stop();
}
