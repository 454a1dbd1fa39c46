/**
 * `npm run bench:ingest` — ingest throughput and latency over HTTP:
 *  1. N typical manifests (1 study, 3 series, 300 instances; default N = 3,000) POSTed to
 *     /fhir/Binary by 8 concurrent clients, against a gateway child process (`mado-gateway serve`)
 *     on embedded PostgreSQL with production settings (fsync on), and in the same rounds against
 *     the same gateway with group commit off (ingest.groupCommitMax = 1), the index floor
 *     (bench/ingest-index-floor.ts) and the bytes floor, alternating. Goal: gateway ≥ 0.8× the
 *     index floor. Medians and ranges of the rounds.
 *  2. One 20,000-reference KOS, end-to-end latency. Target < 1 s.
 * Writes bench/results-ingest.md (finishBench: summary rows + `RESULT ingest/index-floor=…`).
 *
 * Options: --count N (3000) --runs R (3) --clients C (8) --big-runs B (3) --out FILE (bench/results-ingest.md)
 *          --no-floor (skip the calibration floors: bare servers storing each KOS verbatim, or verbatim
 *          plus parse, instance index and search tokens — bench/ingest-index-floor.ts)
 *          --no-unbatched (skip the group-commit-off gateway)
 *          --group-commit-max N, --groups-in-flight N (the measured gateway's ingest.* settings)
 *
 * Manifests are made distinct cheaply: one KOS is written from a synthetic model whose UIDs,
 * patient id and accession all contain the token 19999999; each request replaces that token with
 * its own 8-digit number (same length, so the Part 10 encoding stays valid).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { readKos, syntheticManifest, writeKos } from '../src/dicom/index.js';
import type { Manifest } from '../src/model/manifest.js';
import pgClient from 'pg';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';
import { cpuMs, cpuMsOfTree, parentPid, selfCpuMs } from './lib/cpu.js';
import { benchHeader, finishBench, loadNow, median, numArg, pgVersion, range, type SummaryRow } from './lib/report.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TOKEN = '19999999';

/** A KOS template whose identifying values contain TOKEN. */
function template(series: number, perSeries: number): Buffer {
  const m: Manifest = syntheticManifest({ series, instancesPerSeries: perSeries, seed: `bench-${series}x${perSeries}` });
  const map = new Map<string, string>();
  const u = (uid: string) => {
    let v = map.get(uid);
    if (!v) {
      v = `1.2.826.0.1.3680043.10.543.${TOKEN}.${map.size + 1}`;
      map.set(uid, v);
    }
    return v;
  };
  m.document.sopInstanceUid = u(m.document.sopInstanceUid);
  m.document.seriesInstanceUid = u(m.document.seriesInstanceUid ?? 'kos-series');
  m.study.studyInstanceUid = u(m.study.studyInstanceUid);
  for (const r of m.study.requests) if (r.studyInstanceUid) r.studyInstanceUid = u(r.studyInstanceUid);
  for (const e of m.evidence) {
    e.studyInstanceUid = u(e.studyInstanceUid);
    for (const s of e.series) {
      s.uid = u(s.uid);
      for (const i of s.instances) i.sopInstanceUid = u(i.sopInstanceUid);
    }
  }
  const pid = `P${TOKEN}`;
  if (m.patient.id) m.patient.id.value = pid;
  for (const o of m.patient.otherIds) o.value = pid;
  if (m.study.accession) m.study.accession.value = `A${TOKEN}`;
  for (const r of m.study.requests) if (r.accession) r.accession.value = `A${TOKEN}`;
  return Buffer.from(writeKos(m));
}

function positions(buf: Buffer): number[] {
  const out: number[] = [];
  const tok = Buffer.from(TOKEN);
  for (let at = buf.indexOf(tok); at !== -1; at = buf.indexOf(tok, at + tok.length)) out.push(at);
  return out;
}

function instance(tpl: Buffer, pos: number[], n: number): Buffer {
  const b = Buffer.from(tpl);
  const s = String(10_000_000 + n);
  for (const p of pos) b.write(s, p, 'latin1');
  return b;
}

/** Gateway environment from the command line: --group-commit-max N, --groups-in-flight N (config ingest.*). */
function ingestEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  if (process.argv.includes('--group-commit-max')) env.INGEST_GROUP_COMMIT_MAX = String(numArg('group-commit-max', 32));
  if (process.argv.includes('--groups-in-flight')) env.INGEST_GROUPS_IN_FLIGHT = String(numArg('groups-in-flight', 2));
  return env;
}

async function startGateway(dbUrl: string, extraEnv: Record<string, string>): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  // BENCH_APP_NODE_ARGS: extra node flags for the gateway process (e.g. --cpu-prof --cpu-prof-dir=DIR).
  const p = spawn(process.execPath, [...(process.env.BENCH_APP_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: '0', LOG_LEVEL: 'warn', DATABASE_URL: dbUrl, PUBLIC_BASE_URL: 'http://bench.test', MAX_BODY_BYTES: String(256 * 1024 * 1024), ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout!.on('data', (c) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    p.once('exit', (c) => reject(new Error(`gateway exited ${c}`)));
  });
  return {
    url,
    pid: p.pid!,
    stop: () =>
      new Promise((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      }),
  };
}

const FLOOR = !process.argv.includes('--no-floor');
const FLOOR_SERVER = `const http = require('http'); const crypto = require('crypto'); const { Pool } = require('pg');
const pool = new Pool({ connectionString: process.argv[1], max: 20 });
pool.query('CREATE TABLE IF NOT EXISTS bench_floor (id text PRIMARY KEY, sha256 text NOT NULL, content bytea NOT NULL)').then(() =>
http.createServer((q, s) => { const parts = []; q.on('data', (c) => parts.push(c)); q.on('end', async () => {
  const body = Buffer.concat(parts); const h = crypto.createHash('sha256').update(body).digest('hex');
  try { await pool.query({ name: 'ins', text: 'INSERT INTO bench_floor (id, sha256, content) VALUES ($1, $1, $2)', values: [h, body] }); s.writeHead(201).end(); }
  catch { s.writeHead(500).end(); } }); })
  .listen(0, '127.0.0.1', function () { console.log('listening on http://127.0.0.1:' + this.address().port); }));`;

/** A floor server: the bytes floor above, or `index` (bench/ingest-index-floor.ts: bytes + parse + instance index + tokens). */
async function startFloor(dbUrl: string, kind: 'bytes' | 'index'): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const args = kind === 'bytes' ? ['-e', FLOOR_SERVER, dbUrl] : ['--import', 'tsx', path.join(ROOT, 'bench/ingest-index-floor.ts'), dbUrl];
  const p = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout!.on('data', (c: Buffer) => {
      const m = /listening on (\S+)/.exec(String(c));
      if (m) resolve(m[1]!);
    });
    p.once('exit', (c) => reject(new Error(`floor server exited ${c}`)));
  });
  return { url, pid: p.pid!, stop: () => new Promise((resolve) => { p.once('exit', () => resolve()); p.kill('SIGTERM'); }) };
}

// A lean keep-alive client (node:http, no fetch/undici machinery): the bench client shares the 2
// cores with the gateway and PostgreSQL, so its own CPU per request is kept small.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/fhir/Binary`, { method: 'POST', agent, headers: { 'content-type': 'application/dicom', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

type Cpu = { gw: number; pg: number; client: number };
type Server = { url: string; pid: number; stop: () => Promise<void> };
interface Series {
  label: string;
  rates: number[];
  cpu: Cpu[];
  lat: number[];
}

/** What one round drives, in order: the gateway first, then its variant and the floors. */
interface Target extends Series {
  server: Server;
  warmBase: number;
}

/**
 * `count` distinct manifests from `clients` concurrent clients against one server: rate, CPU per
 * manifest (server = its pid, PostgreSQL = the postmaster's tree, client = this process).
 */
async function drive(t: Target, label: string, o: { count: number; clients: number; first: number; postmaster: number; tpl: Buffer; pos: number[] }): Promise<void> {
  let next = 0;
  let failures = 0;
  const t0 = performance.now();
  const g0 = cpuMs(t.server.pid), p0 = cpuMsOfTree(o.postmaster), c0 = selfCpuMs();
  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      while (next < o.count) {
        const body = instance(o.tpl, o.pos, o.first + next++);
        const a = performance.now();
        const s = await post(t.server.url, body);
        t.lat.push(performance.now() - a);
        if (s !== 201) failures++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = { gw: (cpuMs(t.server.pid) - g0) / o.count, pg: (cpuMsOfTree(o.postmaster) - p0) / o.count, client: (selfCpuMs() - c0) / o.count };
  console.error(`${label}: ${o.count} manifests in ${secs.toFixed(1)} s = ${(o.count / secs).toFixed(1)} manifests/s (${failures} non-201); CPU ms per manifest: server ${cpu.gw.toFixed(2)}, PostgreSQL ${cpu.pg.toFixed(2)}, client ${cpu.client.toFixed(2)}`);
  if (failures) throw new Error(`${label}: ${failures} requests failed`);
  t.rates.push(o.count / secs);
  t.cpu.push(cpu);
}

/** The servers of one bench: the gateway, the gateway with group commit off, the floors (each warmed up). */
async function startTargets(dbUrl: string, tpl: Buffer, pos: number[]): Promise<Target[]> {
  const targets: Target[] = [];
  const add = async (label: string, server: Server, warmBase: number) => {
    const t: Target = { label, server, warmBase, rates: [], cpu: [], lat: [] };
    targets.push(t);
    // warm-up (JIT, pool, caches)
    for (let i = 0; i < 50; i++) await post(server.url, instance(tpl, pos, warmBase + i));
  };
  await add('gateway', await startGateway(dbUrl, ingestEnv()), 9_000_000);
  if (!process.argv.includes('--no-unbatched')) await add('gateway, group commit off', await startGateway(dbUrl, { INGEST_GROUP_COMMIT_MAX: '1' }), 9_300_000);
  if (FLOOR) {
    await add('index floor', await startFloor(dbUrl, 'index'), 9_200_000);
    await add('bytes floor', await startFloor(dbUrl, 'bytes'), 9_100_000);
  }
  return targets;
}

/** One 20,000-reference KOS (20 series × 1000), end to end; and the KOS parse alone in-process. */
async function bigKos(url: string, runs: number): Promise<{ bytes: number; ms: number[]; parseMs: number[] }> {
  const bigTpl = template(20, 1000);
  const bigPos = positions(bigTpl);
  const ms: number[] = [];
  const parseMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const body = instance(bigTpl, bigPos, 8_000_000 + r);
    const a = performance.now();
    const s = await post(url, body);
    ms.push(performance.now() - a);
    if (s !== 201) throw new Error(`big KOS: HTTP ${s}`);
    const p0 = performance.now();
    readKos(body);
    parseMs.push(performance.now() - p0);
    console.error(`20k-reference KOS (${(body.length / 1e6).toFixed(1)} MB): ${ms.at(-1)!.toFixed(0)} ms end to end; readKos alone ${parseMs.at(-1)!.toFixed(0)} ms`);
  }
  return { bytes: bigTpl.length, ms, parseMs };
}

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

/** "median (range a–b; rounds: …)" of a series' rates. */
function rateCell(t: Series): string {
  return `${f1(median(t.rates))} manifests/s (range ${range(t.rates, f1)}; rounds: ${t.rates.map(f1).join(', ')})`;
}

function cpuCell(t: Series): string {
  return `${f2(median(t.cpu.map((c) => c.gw)))} · ${f2(median(t.cpu.map((c) => c.pg)))} · ${f2(median(t.cpu.map((c) => c.client)))}`;
}

/** Per-round ratios a ÷ b (rounds are interleaved, so round i of each ran back to back). */
function ratios(a: Series, b: Series): number[] {
  return a.rates.map((r, i) => r / b.rates[i]!);
}

function percentile(xs: number[], p: number): number {
  return [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
}

async function main() {
  const count = numArg('count', 3000);
  const runs = numArg('runs', 3);
  const clients = numArg('clients', 8);
  const bigRuns = numArg('big-runs', 3);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-ingest-'));
  fs.chmodSync(base, 0o755);
  console.error(`# embedded PostgreSQL in ${base}`);
  const pg = await startEmbeddedPg({ baseDir: base });
  // The cluster's postmaster: CPU of it and its backends is the PostgreSQL column.
  const probe = new pgClient.Client(pg.url('postgres'));
  await probe.connect();
  const postmaster = parentPid(Number((await probe.query('select pg_backend_pid() as p')).rows[0].p));
  const header = benchHeader({ postgres: await pgVersion(probe) });
  await probe.end();
  let targets: Target[] = [];
  try {
    const tpl = template(3, 100);
    const pos = positions(tpl);
    const check = readKos(instance(tpl, pos, 1));
    if (check.kind !== 'manifest' || !check.manifest?.document.sopInstanceUid.includes('10000001')) throw new Error('template patching broke the KOS');
    console.error(`# typical KOS: ${tpl.length} bytes, ${pos.length} patched values`);
    targets = await startTargets(pg.url('postgres'), tpl, pos);
    let first = 0;
    for (let r = 0; r < runs; r++) {
      for (const t of targets) {
        await drive(t, `${t.label}, round ${r + 1}`, { count, clients, first, postmaster, tpl, pos });
        first += count;
      }
    }
    const big = await bigKos(targets[0]!.server.url, bigRuns);
    report({ header, count, runs, clients, tplBytes: tpl.length, targets, big });
  } finally {
    for (const t of targets) await t.server.stop();
    await pg.stop();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

interface ReportInput {
  header: string;
  count: number;
  runs: number;
  clients: number;
  tplBytes: number;
  targets: Target[];
  big: { bytes: number; ms: number[]; parseMs: number[] };
}

/** The results file: markdown, summary rows and RESULT values, all from this run's numbers. */
function report(o: ReportInput): void {
  const find = (l: string) => o.targets.find((t) => t.label === l);
  const gw = find('gateway')!, off = find('gateway, group commit off'), index = find('index floor'), bytes = find('bytes floor');
  const rows: string[] = [];
  const row = (measure: string, n: number | string, value: string, target = '') => rows.push(`| ${measure} | ${n} | ${value} | ${target} |`);
  const ratio = index ? ratios(gw, index) : [];
  row(`gateway: typical manifests (1 study, 3 series, 300 instances; ${(o.tplBytes / 1024).toFixed(0)} KiB KOS), ${o.count} per round`, o.runs, `**${rateCell(gw)}**`);
  if (index) row('**gateway ÷ index floor** (per round, interleaved)', o.runs, `**${f2(median(ratio))}×** (range ${range(ratio, f2)})`, '≥ 0.8×');
  row('gateway request latency, typical manifest', gw.lat.length, `p50 ${f1(percentile(gw.lat, 0.5))} ms, p95 ${f1(percentile(gw.lat, 0.95))} ms`);
  row('gateway CPU per manifest (from /proc): gateway · PostgreSQL · bench client, ms', o.runs, cpuCell(gw));
  if (off) row('same gateway, group commit off (`ingest.groupCommitMax = 1`: one transaction per submission)', o.runs, `${rateCell(off)}; CPU ms ${cpuCell(off)}; group commit ÷ off ${f2(median(ratios(gw, off)))}×`);
  if (index) row('index floor: bare Node server, our KOS parser + instance index (series rows with instance arrays) + search tokens + the bytes, one autocommitted INSERT', o.runs, `${rateCell(index)}; CPU ms ${cpuCell(index)}`);
  if (bytes) row('bytes floor: bare Node server storing each KOS verbatim (SHA-256 + one INSERT)', o.runs, `${rateCell(bytes)}; CPU ms ${cpuCell(bytes)}`);
  row(`one 20,000-reference KOS (${(o.big.bytes / 1e6).toFixed(1)} MB), end to end`, o.big.ms.length, `**${median(o.big.ms).toFixed(0)} ms** (range ${range(o.big.ms, (x) => x.toFixed(0))})`, '< 1000 ms');
  row('of which KOS parse alone (`readKos`, in the bench process)', o.big.parseMs.length, `${median(o.big.parseMs).toFixed(0)} ms`);
  const md = `# Ingest benchmark (\`npm run bench:ingest\`)

${o.header}; load average at the end ${loadNow()}. The machine's 2 cores are shared with other sessions' tests and benches.

Gateway child process (\`mado-gateway serve\`, group commit on: default \`ingest.*\` settings) on embedded PostgreSQL
(production settings, fsync on), ${o.clients} concurrent HTTP clients POSTing raw KOS to \`/fhir/Binary\`. Each round drives,
back to back with the same clients and the same database: ${o.targets.map((t) => t.label).join(', ')}.
CPU columns are milliseconds per manifest: the server process · the PostgreSQL cluster (postmaster and all its processes) · this client.

| measure | rounds | median | goal |
|---|---|---|---|
${rows.join('\n')}

Command: \`npm run bench:ingest -- --count ${o.count} --runs ${o.runs} --clients ${o.clients}\`
`;
  const summary: SummaryRow[] = [];
  const result: Record<string, number> = { 'ingest.manifests-per-s': median(gw.rates) };
  if (index) {
    const r = median(ratio);
    summary.push({ issue: '20 ingest', measure: `gateway ÷ index floor, ${o.clients} clients, ${o.runs} interleaved rounds`, result: `${f2(r)}× (${f1(median(gw.rates))} vs ${f1(median(index.rates))} manifests/s; range ${range(ratio, f2)})`, target: `≥ 0.8× ${r >= 0.8 ? '✔' : '✘'}` });
    Object.assign(result, { 'ingest/index-floor': r, 'ingest.index-floor.manifests-per-s': median(index.rates) });
  }
  if (off) {
    summary.push({ issue: '20 ingest', measure: 'group commit on ÷ off (same gateway, same rounds)', result: `${f2(median(ratios(gw, off)))}× (${f1(median(gw.rates))} vs ${f1(median(off.rates))} manifests/s)`, target: 'informative' });
    result['ingest.group-commit-off.manifests-per-s'] = median(off.rates);
  }
  if (bytes) result['ingest.bytes-floor.manifests-per-s'] = median(bytes.rates);
  summary.push({ issue: 'ingest', measure: 'one 20,000-reference KOS end to end', result: `${median(o.big.ms).toFixed(0)} ms`, target: `< 1000 ms ${median(o.big.ms) < 1000 ? '✔' : '✘'}` });
  result['ingest.big-kos-ms'] = median(o.big.ms);
  finishBench('results-ingest.md', md, { summary, result });
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
