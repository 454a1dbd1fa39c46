/**
 * `npm run bench:ingest` — ingest throughput and latency over HTTP:
 *  1. N typical manifests (1 study, 3 series, 300 instances; default N = 10,000) POSTed to
 *     /fhir/Binary by 8 concurrent clients, against a gateway child process (`mado-gateway serve`)
 *     on embedded PostgreSQL with production settings (fsync on). Target ≥ 300 manifests/s.
 *  2. One 20,000-reference KOS, end-to-end latency. Target < 1 s.
 * Medians of several runs; writes bench/results-ingest.md.
 *
 * Options: --count N (10000) --runs R (3) --clients C (8) --big-runs B (3) --out FILE (bench/results-ingest.md)
 *          --no-floor (skip the calibration floors: bare servers storing each KOS verbatim, or verbatim
 *          plus parse, instance index and search tokens — bench/ingest-index-floor.ts)
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
import { median, numArg, writeResults } from './lib/report.js';

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

async function startGateway(dbUrl: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  // BENCH_APP_NODE_ARGS: extra node flags for the gateway process (e.g. --cpu-prof --cpu-prof-dir=DIR).
  const p = spawn(process.execPath, [...(process.env.BENCH_APP_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: '0', LOG_LEVEL: 'warn', DATABASE_URL: dbUrl, PUBLIC_BASE_URL: 'http://bench.test', MAX_BODY_BYTES: String(256 * 1024 * 1024), ...ingestEnv() },
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

async function main() {
  const count = numArg('count', 10_000);
  const runs = numArg('runs', 3);
  const clients = numArg('clients', 8);
  const bigRuns = numArg('big-runs', 3);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-ingest-'));
  fs.chmodSync(base, 0o755);
  console.error(`# embedded PostgreSQL in ${base}`);
  const pg = await startEmbeddedPg({ baseDir: base });
  const gw = await startGateway(pg.url('postgres'));
  // The cluster's postmaster: CPU of it and its backends is the PostgreSQL column.
  const probe = new pgClient.Client(pg.url('postgres'));
  await probe.connect();
  const postmaster = parentPid(Number((await probe.query('select pg_backend_pid() as p')).rows[0].p));
  await probe.end();
  console.error(`# gateway ${gw.url}`);
  try {
    const tpl = template(3, 100);
    const pos = positions(tpl);
    const check = readKos(instance(tpl, pos, 1));
    if (check.kind !== 'manifest' || !check.manifest?.document.sopInstanceUid.includes('10000001')) throw new Error('template patching broke the KOS');
    console.error(`# typical KOS: ${tpl.length} bytes, ${pos.length} patched values`);
    // warm-up (JIT, pool, caches)
    for (let i = 0; i < 50; i++) await post(gw.url, instance(tpl, pos, 9_000_000 + i));

    const rates: number[] = [];
    const cpuPer: Array<{ gw: number; pg: number; client: number }> = [];
    const lat: number[] = [];
    let n = 0;
    /** `count` distinct manifests from `clients` concurrent clients: rate, CPU per manifest (server = pid). */
    const drive = async (url: string, pid: number, label: string) => {
      const start = n;
      let next = 0;
      let failures = 0;
      const t0 = performance.now();
      const g0 = cpuMs(pid), p0 = cpuMsOfTree(postmaster), c0 = selfCpuMs();
      const times: number[] = [];
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (next < count) {
            const i = next++;
            const body = instance(tpl, pos, start + i);
            const a = performance.now();
            const s = await post(url, body);
            times.push(performance.now() - a);
            if (s !== 201) failures++;
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      const cpu = { gw: (cpuMs(pid) - g0) / count, pg: (cpuMsOfTree(postmaster) - p0) / count, client: (selfCpuMs() - c0) / count };
      n += count;
      console.error(`${label}: ${count} manifests in ${secs.toFixed(1)} s = ${(count / secs).toFixed(1)} manifests/s (${failures} non-201); CPU ms per manifest: server ${cpu.gw.toFixed(2)}, PostgreSQL ${cpu.pg.toFixed(2)}, client ${cpu.client.toFixed(2)}`);
      if (failures) throw new Error(`${label}: ${failures} requests failed`);
      return { rate: count / secs, cpu, times };
    };
    // Calibration floors, run interleaved with the gateway's runs under the same clients:
    // - bytes: a bare Node server that only stores each KOS verbatim (SHA-256, one INSERT of the
    //   bytes, autocommit with fsync). No ingest that keeps the bytes durably can beat it here.
    // - index: the same plus our KOS parser and the instance index + search tokens
    //   (bench/ingest-index-floor.ts) — the least an ingest serving the queries must do.
    type Cpu = { gw: number; pg: number; client: number };
    const floors = { bytes: { rates: [] as number[], cpu: [] as Cpu[] }, index: { rates: [] as number[], cpu: [] as Cpu[] } };
    const servers: Array<{ kind: 'bytes' | 'index'; url: string; pid: number; stop: () => Promise<void> }> = [];
    try {
      if (FLOOR) {
        for (const kind of ['bytes', 'index'] as const) {
          const fl = await startFloor(pg.url('postgres'), kind);
          servers.push({ kind, ...fl });
          for (let i = 0; i < 50; i++) await post(fl.url, instance(tpl, pos, (kind === 'bytes' ? 9_100_000 : 9_200_000) + i));
        }
      }
      for (let r = 0; r < runs; r++) {
        const d = await drive(gw.url, gw.pid, `run ${r + 1}`);
        rates.push(d.rate);
        cpuPer.push(d.cpu);
        lat.push(...d.times);
        for (const fl of servers) {
          const f = await drive(fl.url, fl.pid, `${fl.kind} floor ${r + 1}`);
          floors[fl.kind].rates.push(f.rate);
          floors[fl.kind].cpu.push(f.cpu);
        }
      }
    } finally {
      for (const fl of servers) await fl.stop();
    }
    const floorRow = (label: string, f: { rates: number[]; cpu: Cpu[] }) =>
      `| ${label} | ${runs} | ${median(f.rates).toFixed(1)} manifests/s (runs: ${f.rates.map((x) => x.toFixed(1)).join(', ')}); CPU ms server · PostgreSQL · client ${median(f.cpu.map((c) => c.gw)).toFixed(2)} · ${median(f.cpu.map((c) => c.pg)).toFixed(2)} · ${median(f.cpu.map((c) => c.client)).toFixed(2)} | |\n`;

    // One 20,000-reference KOS (20 series × 1000), end to end; and the KOS parse alone in-process.
    const bigTpl = template(20, 1000);
    const bigPos = positions(bigTpl);
    const bigMs: number[] = [];
    const parseMs: number[] = [];
    for (let r = 0; r < bigRuns; r++) {
      const body = instance(bigTpl, bigPos, 8_000_000 + r);
      const a = performance.now();
      const s = await post(gw.url, body);
      bigMs.push(performance.now() - a);
      if (s !== 201) throw new Error(`big KOS: HTTP ${s}`);
      const p0 = performance.now();
      readKos(body);
      parseMs.push(performance.now() - p0);
      console.error(`20k-reference KOS (${(body.length / 1e6).toFixed(1)} MB): ${bigMs.at(-1)!.toFixed(0)} ms end to end; readKos alone ${parseMs.at(-1)!.toFixed(0)} ms`);
    }

    const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
    const p50 = median(lat);
    const p95 = [...lat].sort((a, b) => a - b)[Math.floor(lat.length * 0.95)]!;
    const md = `# Ingest benchmark (\`npm run bench:ingest\`)

Gateway child process (\`mado-gateway serve\`) on embedded PostgreSQL (production settings, fsync on),
${clients} concurrent HTTP clients POSTing raw KOS to \`/fhir/Binary\`. Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'},
Node ${process.version}; load average at the end ${load} (the machine is shared with other sessions' tests and benches).

| measure | runs | median | target |
|---|---|---|---|
| typical manifests (1 study, 3 series, 300 instances; ${(tpl.length / 1024).toFixed(0)} KiB KOS), ${count} per run | ${runs} | **${median(rates).toFixed(1)} manifests/s** (runs: ${rates.map((x) => x.toFixed(1)).join(', ')}) | ≥ 300/s |
| request latency, typical manifest | ${lat.length} | p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms | |
| CPU per typical manifest (from /proc): gateway · PostgreSQL · bench client, ms | ${runs} | ${median(cpuPer.map((c) => c.gw)).toFixed(2)} · ${median(cpuPer.map((c) => c.pg)).toFixed(2)} · ${median(cpuPer.map((c) => c.client)).toFixed(2)} | |
${FLOOR ? floorRow('bytes floor: bare Node server storing each KOS verbatim (SHA-256 + one INSERT, fsync on), same clients', floors.bytes) + floorRow('index floor: the bytes floor + our KOS parser + instance index (series rows with instance arrays) + search tokens, one INSERT, same clients', floors.index) : ''}| one 20,000-reference KOS (${(bigTpl.length / 1e6).toFixed(1)} MB), end to end | ${bigRuns} | **${median(bigMs).toFixed(0)} ms** (runs: ${bigMs.map((x) => x.toFixed(0)).join(', ')}) | < 1000 ms |
| of which KOS parse alone (\`readKos\`, in the bench process) | ${bigRuns} | ${median(parseMs).toFixed(0)} ms | |

Command: \`npm run bench:ingest -- --count ${count} --runs ${runs} --clients ${clients}\`
`;
    writeResults('results-ingest.md', md);
  } finally {
    await gw.stop();
    await pg.stop();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
