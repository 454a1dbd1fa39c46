/**
 * Search benchmark: N synthetic manifests bulk-loaded straight into the tables
 * (generate_series, test/helpers/search-bulk-load.ts), the real app on embedded PostgreSQL,
 * autocannon with 16 connections, each request for a random patient / study:
 *   DocumentReference?patient.identifier=…&status=current   target p50 ≤ 5 ms, p99 ≤ 25 ms
 *   DocumentReference?study-instance-uid=…                   same
 *   ImagingStudy?identifier=…                                same
 * and at a larger N within 1.5× of those. Writes bench/results-search.md.
 * With --floor on (default) each query is also measured against two floors: a static server
 * answering the same bytes, and a database floor (bench/search-db-floor.ts).
 * Run: npm run bench:search [-- --sizes 100000,1000000 --duration 10 --connections 16 --audit on|off --database-url URL --out FILE --floor on|off]
 */
import { writeFileSync } from 'node:fs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { cpuMs, cpuMsOfTree, parentPid, selfCpuMs } from './lib/cpu.js';
import { loadConfig } from '../src/config.js';
import { syntheticManifest } from '../src/dicom/index.js';
import { manifestToDocumentReferences } from '../src/fhir/mapping/index.js';
import { createDb } from '../src/store/db.js';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';
import { migrateLatest } from '../src/store/migrate.js';
import { analyzeSearchTables, BENCH_ISSUER, benchStudyUid, bulkLoadManifests, countManifests, withIndexesRebuilt } from '../test/helpers/search-bulk-load.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}
const SIZES = arg('sizes', '100000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const DURATION = Number(arg('duration', '10'));
const PER_PATIENT = 4;
const CONNECTIONS = Number(arg('connections', '16'));
const AUDIT = arg('audit', 'on') !== 'off';

// --database-url reuses an already loaded database (rows beyond its current count are added).
const EXISTING = arg('database-url', '');
const base = EXISTING ? '' : fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-search-'));
if (base) fs.chmodSync(base, 0o755);
const pg = base ? await startEmbeddedPg({ baseDir: base, ephemeral: true }) : undefined;
const url = pg ? pg.url('postgres') : EXISTING;
const db = createDb({ url, poolMax: 20 });
await migrateLatest(db);
// The PostgreSQL cluster's postmaster: CPU of it and its backends is the "pg" column.
const postmaster = parentPid(Number((await db.raw('select pg_backend_pid() as p')).rows[0].p));

const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', PORT: '0' });
const m = syntheticManifest({ series: 2, instancesPerSeries: 2, seed: 'bench-template' });
const docs = manifestToDocumentReferences(m, { publicBaseUrl: config.publicBaseUrl, defaults: config.documentDefaults }, { status: 'current', nativeFormat: 'kos', date: '2024-01-01T00:00:00Z' });
const templates = { model: m, kosDocRef: docs.kos, fhirDocRef: docs.fhir, patient: { resourceType: 'Patient', name: [{ family: 'Bench' }] } };

// The app runs in its own process (bench/search-server.ts): autocannon must not share its event loop.
// BENCH_APP_NODE_ARGS: extra node flags for the app process (e.g. --cpu-prof --cpu-prof-dir=DIR).
const child = spawn(process.execPath, [...(process.env.BENCH_APP_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', path.join(import.meta.dirname, 'search-server.ts')], {
  env: { ...process.env, DATABASE_URL: url, BENCH_AUDIT: AUDIT ? 'on' : 'off' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const origin = await new Promise<string>((resolve, reject) => {
  let out = '';
  child.stdout!.on('data', (c) => {
    out += c;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  child.once('exit', (c) => reject(new Error(`bench app exited ${c}`)));
});

interface Row { size: number; query: string; p50: number; p90: number; p99: number; rps: number; errors: number; non2xx: number; cpu: { app: number; pg: number; client: number } }
const rows: Row[] = [];
const loadTimes: Array<{ size: number; seconds: number }> = [];
const loadAvg: Array<{ size: number; load: string }> = [];

async function run(title: string, size: number, pathFor: () => string, duration: number): Promise<Row> {
  const a0 = cpuMs(child.pid!), p0 = cpuMsOfTree(postmaster), c0 = selfCpuMs();
  const r = await autocannon({
    url: origin,
    connections: CONNECTIONS,
    duration,
    requests: [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: pathFor() }) }],
  } as never);
  const res = r as unknown as { latency: { p50: number; p90: number; p99: number }; requests: { average: number; total: number }; errors: number; non2xx: number };
  const n = Math.max(1, res.requests.total);
  const cpu = { app: (cpuMs(child.pid!) - a0) / n, pg: (cpuMsOfTree(postmaster) - p0) / n, client: (selfCpuMs() - c0) / n };
  return { size, query: title, p50: res.latency.p50, p90: res.latency.p90, p99: res.latency.p99, rps: Math.round(res.requests.average), errors: res.errors, non2xx: res.non2xx, cpu };
}

/**
 * Calibration floor: a bare Node HTTP server in its own process that answers every request with
 * the same bytes as a real response of this query (no routing, auth, database or rendering),
 * under the same autocannon load. No implementation of the query can beat it on this machine.
 */
const FLOOR = arg('floor', 'on') !== 'off';
const floors: Row[] = [];
const FLOOR_SERVER = `const http = require('http'); const body = require('fs').readFileSync(process.argv[1]);
http.createServer((q, s) => { s.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': body.length }); s.end(body); })
  .listen(0, '127.0.0.1', function () { console.log('listening on http://127.0.0.1:' + this.address().port); });`;

/** Start a server process that prints `listening on URL`. */
async function startServer(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ at: string; pid: number; kill: () => void }> {
  const srv = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const at = await new Promise<string>((resolve, reject) => {
    srv.stdout!.on('data', (c: Buffer) => {
      const m = /listening on (\S+)/.exec(String(c));
      if (m) resolve(m[1]!);
    });
    srv.once('exit', (c) => reject(new Error(`floor server exited ${c}`)));
  });
  return { at, pid: srv.pid!, kill: () => srv.kill() };
}

/** The same load against a floor server: warm-up, then CPU per request of it, PostgreSQL and autocannon. */
async function measureFloor(srv: { at: string; pid: number }, title: string, size: number, pathFor: () => string): Promise<Row> {
  const opts = { connections: CONNECTIONS, requests: [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: pathFor() }) }] };
  await autocannon({ url: srv.at, duration: 2, ...opts } as never);
  const a0 = cpuMs(srv.pid), p0 = cpuMsOfTree(postmaster), c0 = selfCpuMs();
  const r = (await autocannon({ url: srv.at, duration: DURATION, ...opts } as never)) as unknown as { latency: { p50: number; p90: number; p99: number }; requests: { average: number; total: number }; errors: number; non2xx: number };
  const n = Math.max(1, r.requests.total);
  const cpu = { app: (cpuMs(srv.pid) - a0) / n, pg: (cpuMsOfTree(postmaster) - p0) / n, client: (selfCpuMs() - c0) / n };
  return { size, query: title, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, rps: Math.round(r.requests.average), errors: r.errors, non2xx: r.non2xx, cpu };
}

async function floor(title: string, size: number, body: string, pathFor: () => string): Promise<Row> {
  const file = path.join(os.tmpdir(), `mado-bench-floor-${process.pid}.json`);
  fs.writeFileSync(file, body);
  const srv = await startServer(['-e', FLOOR_SERVER, file]);
  try {
    return await measureFloor(srv, title, size, pathFor);
  } finally {
    srv.kill();
    fs.rmSync(file, { force: true });
  }
}

/**
 * Database floor: bench/search-db-floor.ts — the app's own planner, SQL and prepared statement
 * through the same pool, rows' stored text concatenated; no express, auth, audit or rendering.
 */
const dbFloors: Row[] = [];
async function dbFloor(title: string, size: number, pathFor: () => string): Promise<Row> {
  const srv = await startServer(['--import', 'tsx', path.join(import.meta.dirname, 'search-db-floor.ts')], { ...process.env, DATABASE_URL: url });
  try {
    return await measureFloor(srv, title, size, pathFor);
  } finally {
    srv.kill();
  }
}

/**
 * After a bulk load the kernel is still writing gigabytes of dirty pages back (1M manifests ≈ 10 GB):
 * measure the queries, not that writeback. CHECKPOINT, then wait (≤ 3 min) until Dirty + Writeback
 * in /proc/meminfo is below 64 MB.
 */
async function settleWriteback(): Promise<void> {
  await db.raw('CHECKPOINT');
  const dirtyMb = () => {
    const m = fs.readFileSync('/proc/meminfo', 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(m)?.[1] ?? 0);
    return (kb('Dirty') + kb('Writeback')) / 1024;
  };
  const end = Date.now() + 180_000;
  while (dirtyMb() > 64 && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
}

let loaded = await countManifests(db);
for (const size of SIZES) {
  const t0 = Date.now();
  const BATCH = 50_000;
  if (loaded < size) await withIndexesRebuilt(db, async () => {
    for (let from = loaded; from < size; from += BATCH) {
      await bulkLoadManifests(db, from, Math.min(size, from + BATCH), PER_PATIENT, templates);
      process.stdout.write(`\rloaded ${Math.min(size, from + BATCH)} / ${size}`);
    }
  });
  await analyzeSearchTables(db);
  await db.raw('VACUUM ANALYZE document_reference');
  await settleWriteback();
  const wasLoaded = loaded >= size;
  loaded = Math.max(loaded, size);
  if (!wasLoaded) loadTimes.push({ size, seconds: Math.round((Date.now() - t0) / 100) / 10 });
  console.log(`\n${await countManifests(db)} manifests${wasLoaded ? ' (already loaded)' : ` (load ${loadTimes.at(-1)!.seconds} s)`}`);
  loadAvg.push({ size, load: os.loadavg().map((x) => x.toFixed(1)).join(' / ') });
  const patients = Math.ceil(size / PER_PATIENT);
  const rnd = (n: number) => Math.floor(Math.random() * n);
  const queries: Array<[string, () => string]> = [
    ['DocumentReference?patient.identifier=…&status=current', () => `/fhir/DocumentReference?patient.identifier=${encodeURIComponent(`${BENCH_ISSUER}|BMRN${rnd(patients)}`)}&status=current`],
    ['DocumentReference?study-instance-uid=…', () => `/fhir/DocumentReference?study-instance-uid=urn:oid:${benchStudyUid(rnd(size))}`],
    ['ImagingStudy?identifier=…', () => `/fhir/ImagingStudy?identifier=${encodeURIComponent(`urn:dicom:uid|urn:oid:${benchStudyUid(rnd(size))}`)}`],
  ];
  for (const [title, p] of queries) {
    // sanity: the query returns matches
    const check = await fetch(origin + p());
    const text = await check.text();
    const body = JSON.parse(text) as { entry?: unknown[] };
    if (check.status !== 200 || !body.entry?.length) throw new Error(`${title}: ${check.status}, ${body.entry?.length ?? 0} entries`);
    await run(title, size, p, 2); // warm-up
    const row = await run(title, size, p, DURATION);
    rows.push(row);
    console.log(`${size}\t${title}\tp50 ${row.p50} ms\tp99 ${row.p99} ms\t${row.rps} req/s\terrors ${row.errors} non2xx ${row.non2xx}\tcpu ms/req app ${row.cpu.app.toFixed(2)} pg ${row.cpu.pg.toFixed(2)} autocannon ${row.cpu.client.toFixed(2)}`);
    if (FLOOR) {
      const f = await floor(title, size, text, p);
      floors.push(f);
      console.log(`${size}\t${title} (floor: static server)\tp50 ${f.p50} ms\tp99 ${f.p99} ms\t${f.rps} req/s\tcpu ms/req server ${f.cpu.app.toFixed(2)} autocannon ${f.cpu.client.toFixed(2)}`);
      const d = await dbFloor(title, size, p);
      dbFloors.push(d);
      console.log(`${size}\t${title} (floor: database)\tp50 ${d.p50} ms\tp99 ${d.p99} ms\t${d.rps} req/s\tcpu ms/req server ${d.cpu.app.toFixed(2)} pg ${d.cpu.pg.toFixed(2)} autocannon ${d.cpu.client.toFixed(2)}`);
    }
  }
}

await new Promise((r) => {
  child.once('exit', r); // the app flushes queued AuditEvents before it exits
  child.kill('SIGTERM');
});
await db.destroy();
if (pg) {
  await pg.stop();
  fs.rmSync(base, { recursive: true, force: true });
}

const baseline = new Map(rows.filter((r) => r.size === SIZES[0]).map((r) => [r.query, r]));
const lines = [
  '# Search benchmark',
  '',
  `Generated by \`npm run bench:search\` on ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} CPU (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}.`,
  `App (its own process) and embedded PostgreSQL 18 on the same machine (fsync off: read-only benchmark), autocannon ${CONNECTIONS} connections, ${DURATION} s per query after a 2 s warm-up, a random patient/study per request, audit recorder ${AUDIT ? 'on' : 'off'}.`,
  `Machine load average while measuring (other sessions share the CPUs): ${loadAvg.map((l) => `${l.size.toLocaleString('en')}: ${l.load}`).join(', ')}.`,
  `Data: ${PER_PATIENT} manifests per patient (8 DocumentReferences), bulk-loaded with generate_series; ${loadTimes.map((l) => `${l.size.toLocaleString('en')} manifests loaded in ${l.seconds} s`).join(', ')}.`,
  '',
  'Targets: p50 ≤ 5 ms and p99 ≤ 25 ms at 100,000 manifests; larger sizes within 1.5× of that.',
  '',
  'CPU columns: milliseconds of CPU per request, from /proc, for the app process, its PostgreSQL cluster (postmaster and backends, incl. exited ones), and the bench process (autocannon).',
  '',
  '| manifests | query | p50 ms | p90 ms | p99 ms | req/s | errors | ×p50 vs smallest | CPU ms/req app · pg · autocannon | target met |',
  '|---:|---|---:|---:|---:|---:|---:|---:|---|---|',
  ...rows.map((r) => {
    const b = baseline.get(r.query)!;
    const ratio = r.size === SIZES[0] ? 1 : r.p50 / b.p50;
    const met = r.size === SIZES[0] ? r.p50 <= 5 && r.p99 <= 25 : r.p50 <= 1.5 * Math.max(5, b.p50) && r.p99 <= 1.5 * Math.max(25, b.p99);
    return `| ${r.size.toLocaleString('en')} | \`${r.query}\` | ${r.p50} | ${r.p90} | ${r.p99} | ${r.rps} | ${r.errors + r.non2xx} | ${ratio.toFixed(2)} | ${r.cpu.app.toFixed(2)} · ${r.cpu.pg.toFixed(2)} · ${r.cpu.client.toFixed(2)} | ${met ? 'yes' : '**no**'} |`;
  }),
  '',
  ...(floors.length
    ? [
        'Calibration floor, same load: a bare Node HTTP server process answering every request with the bytes of one real response of the query (no routing, auth, database or rendering). No implementation of the query can be faster than this on this machine.',
        '',
        '| manifests | response of | p50 ms | p90 ms | p99 ms | req/s | CPU ms/req server · autocannon | p50 ≤ 5 ms possible here? |',
        '|---:|---|---:|---:|---:|---:|---|---|',
        ...floors.map((f) => `| ${f.size.toLocaleString('en')} | \`${f.query}\` | ${f.p50} | ${f.p90} | ${f.p99} | ${f.rps} | ${f.cpu.app.toFixed(2)} · ${f.cpu.client.toFixed(2)} | ${f.p50 <= 5 ? 'yes' : 'no'} |`),
        '',
        'Database floor, same load: a bare node:http server process (bench/search-db-floor.ts) that parses the query with our planner, runs the same SQL as the app as a prepared statement through the same pool, and sends the rows\' stored JSON text concatenated — the work no implementation of the query on Node and PostgreSQL can skip (no express, auth, audit, links or rendering).',
        '',
        '| manifests | query | p50 ms | p90 ms | p99 ms | req/s | CPU ms/req server · pg · autocannon | p50 ≤ 5 ms and p99 ≤ 25 ms reached? |',
        '|---:|---|---:|---:|---:|---:|---|---|',
        ...dbFloors.map((f) => `| ${f.size.toLocaleString('en')} | \`${f.query}\` | ${f.p50} | ${f.p90} | ${f.p99} | ${f.rps} | ${f.cpu.app.toFixed(2)} · ${f.cpu.pg.toFixed(2)} · ${f.cpu.client.toFixed(2)} | ${f.p50 <= 5 && f.p99 <= 25 ? 'yes' : 'no'} |`),
        '',
      ]
    : []),
];
writeFileSync(path.resolve(import.meta.dirname, arg('out', 'results-search.md')), lines.join('\n'));
console.log(lines.join('\n'));
process.exit(0);
