/**
 * Search benchmark: the gateway against its database floor, in the same run, interleaved.
 * N synthetic manifests are bulk-loaded straight into the tables (test/helpers/search-bulk-load.ts)
 * of an embedded PostgreSQL started as a default deployment would (memory settings sized from
 * this machine, store/pg-tuning.ts; fsync off: a read benchmark). Three processes serve:
 *   - the gateway (bench/search-server.ts): JWT authentication (a real OpenID provider,
 *     test/helpers/oidc.ts) + policy + audit trail on, as deployed;
 *   - the database floor (bench/search-db-floor.ts): the same planner, SQL and prepared statement
 *     through the same pool, rows' stored JSON concatenated — no express, auth, audit or rendering;
 * and the load generator runs in a fourth (bench/lib/load.ts: autocannon, 16 connections, a random
 * patient / study per request). Queries:
 *   a: DocumentReference?patient.identifier=…&status=current
 *   b: DocumentReference?study-instance-uid=…
 *   c: ImagingStudy?identifier=…
 * Each size: a warm-up per target and query, then --rounds rounds; in each round every query runs
 * against the gateway and the floor back to back (order alternating per round). Medians and ranges.
 * Goals: gateway ≥ 0.7 × floor req/s at the first size; last size ÷ first size p50 ≤ 1.3, p99 ≤ 1.5.
 * Writes bench/results-search.md; last line `RESULT …`.
 * Run: npm run bench:search [-- --sizes 100000,1000000 --rounds 3 --duration 8 --connections 16 --auth jwt|off --audit on|off --database-url URL --out FILE]
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cpuMs, cpuMsOfTree, parentPid } from './lib/cpu.js';
import { benchHeader, finishBench, loadNow, median, numArg, pgVersion, range, type SummaryRow } from './lib/report.js';
import { loadConfig } from '../src/config.js';
import { syntheticManifest } from '../src/dicom/index.js';
import { manifestToDocumentReferences } from '../src/fhir/mapping/index.js';
import { createDb, type Db } from '../src/store/db.js';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';
import { migrateLatest } from '../src/store/migrate.js';
import { startOidcProvider } from '../test/helpers/oidc.js';
import { analyzeSearchTables, BENCH_ISSUER, benchStudyUid, bulkLoadParallel, countManifests, withIndexesRebuilt } from '../test/helpers/search-bulk-load.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}
const SIZES = arg('sizes', '100000,1000000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const ROUNDS = numArg('rounds', 3);
const DURATION = numArg('duration', 8);
const CONNECTIONS = numArg('connections', 16);
const AUTH = arg('auth', 'jwt') !== 'off';
const AUDIT = arg('audit', 'on') !== 'off';
const PER_PATIENT = 4;
const exec = promisify(execFile);

const QUERIES = [
  { key: 'a', title: 'DocumentReference?patient.identifier=…&status=current', path: (size: number, r: (n: number) => number) => `/fhir/DocumentReference?patient.identifier=${encodeURIComponent(`${BENCH_ISSUER}|BMRN${r(Math.ceil(size / PER_PATIENT))}`)}&status=current` },
  { key: 'b', title: 'DocumentReference?study-instance-uid=…', path: (size: number, r: (n: number) => number) => `/fhir/DocumentReference?study-instance-uid=urn:oid:${benchStudyUid(r(size))}` },
  { key: 'c', title: 'ImagingStudy?identifier=…', path: (size: number, r: (n: number) => number) => `/fhir/ImagingStudy?identifier=${encodeURIComponent(`urn:dicom:uid|urn:oid:${benchStudyUid(r(size))}`)}` },
] as const;
type QueryKey = (typeof QUERIES)[number]['key'];

interface Server { at: string; pid: number; stop: () => Promise<void> }

/** Start a server process that prints `listening on URL`; stop() sends SIGTERM and waits for exit. */
async function startServer(script: string, env: NodeJS.ProcessEnv): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const at = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += String(c);
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (c) => reject(new Error(`${script} exited ${c}`)));
  });
  const stop = () => new Promise<void>((r) => {
    child.once('exit', () => r()); // the gateway flushes queued AuditEvents before it exits
    child.kill('SIGTERM');
  });
  return { at, pid: child.pid!, stop };
}

interface Sample { rps: number; p50: number; p90: number; p99: number; cpuServer: number; cpuPg: number }

/** One load run in its own process; CPU ms per request of the server process and of PostgreSQL. */
async function measure(srv: Server, pathsFile: string, headers: Record<string, string>, duration: number, postmaster: number): Promise<Sample> {
  const s0 = cpuMs(srv.pid), p0 = cpuMsOfTree(postmaster);
  const spec = JSON.stringify({ url: srv.at, headers, connections: CONNECTIONS, duration, pathsFile });
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'lib/load.ts'), spec], { cwd: path.join(import.meta.dirname, '..'), maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { rps: number; p50: number; p90: number; p99: number; total: number; non2xx: number; errors: number };
  if (r.non2xx || r.errors) throw new Error(`${srv.at}: non-2xx ${r.non2xx}, errors ${r.errors}`);
  const n = Math.max(1, r.total);
  return { rps: r.rps, p50: r.p50, p90: r.p90, p99: r.p99, cpuServer: (cpuMs(srv.pid) - s0) / n, cpuPg: (cpuMsOfTree(postmaster) - p0) / n };
}

/**
 * After a bulk load the kernel is still writing dirty pages back: measure the queries, not that
 * writeback. CHECKPOINT, then wait (≤ 3 min) until Dirty + Writeback is below 64 MB.
 */
async function settleWriteback(db: Db): Promise<void> {
  await db.raw('CHECKPOINT');
  const dirtyMb = () => {
    const m = fs.readFileSync('/proc/meminfo', 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(m)?.[1] ?? 0);
    return (kb('Dirty') + kb('Writeback')) / 1024;
  };
  const end = Date.now() + 180_000;
  while (dirtyMb() > 64 && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
}

/** Bring the database up to `size` manifests (indexes rebuilt once afterwards); seconds taken, or undefined if already there. */
async function loadUpTo(db: Db, size: number, templates: Parameters<typeof bulkLoadParallel>[4]): Promise<number | undefined> {
  const have = await countManifests(db);
  if (have >= size) return undefined;
  const t0 = Date.now();
  await withIndexesRebuilt(db, () =>
    bulkLoadParallel(db, have, size, PER_PATIENT, templates, { batch: 25_000, parallel: 2, progress: (d) => process.stdout.write(`\rloaded ${d} / ${size}`) }),
  );
  await analyzeSearchTables(db);
  await db.raw('VACUUM ANALYZE document_reference');
  await db.raw('VACUUM ANALYZE manifest');
  await settleWriteback(db);
  process.stdout.write('\n');
  return Math.round((Date.now() - t0) / 100) / 10;
}

interface Cell { gw: Sample[]; floor: Sample[] }
interface SizeResult { size: number; loadSeconds?: number; load: string; cells: Record<QueryKey, Cell> }

/** Warm-up, sanity check, then ROUNDS interleaved rounds of every query against both servers. */
async function measureSize(size: number, gw: Server, floor: Server, headers: Record<string, string>, postmaster: number, dir: string): Promise<Record<QueryKey, Cell>> {
  const cells = {} as Record<QueryKey, Cell>;
  const files = {} as Record<QueryKey, string>;
  for (const q of QUERIES) {
    const rnd = (n: number) => Math.floor(Math.random() * n);
    files[q.key] = path.join(dir, `paths-${q.key}-${size}.json`);
    fs.writeFileSync(files[q.key], JSON.stringify(Array.from({ length: 4000 }, () => q.path(size, rnd))));
    const check = (await (await fetch(gw.at + q.path(size, () => 7), { headers })).json()) as { entry?: unknown[] };
    if (!check.entry?.length) throw new Error(`${q.title}: no matches on the gateway`);
    cells[q.key] = { gw: [], floor: [] };
    await measure(gw, files[q.key], headers, 2, postmaster);
    await measure(floor, files[q.key], {}, 2, postmaster);
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const q of QUERIES) {
      const order: Array<'gw' | 'floor'> = r % 2 ? ['floor', 'gw'] : ['gw', 'floor'];
      for (const t of order) {
        const s = await measure(t === 'gw' ? gw : floor, files[q.key], t === 'gw' ? headers : {}, DURATION, postmaster);
        cells[q.key][t].push(s);
        console.log(`${size}\tround ${r + 1}\t${q.key}\t${t}\t${Math.round(s.rps)} req/s\tp50 ${s.p50}\tp99 ${s.p99}\tcpu ms/req server ${s.cpuServer.toFixed(2)} pg ${s.cpuPg.toFixed(2)}`);
      }
    }
  }
  return cells;
}

const f0 = (x: number) => String(Math.round(x));
const f2 = (x: number) => x.toFixed(2);
const med = (xs: Sample[], k: keyof Sample) => median(xs.map((s) => s[k]));
const ratios = (c: Cell) => c.gw.map((g, i) => g.rps / c.floor[i]!.rps);

function sizeTable(r: SizeResult): string[] {
  const rows = QUERIES.map((q) => {
    const c = r.cells[q.key];
    const cell = (xs: Sample[], k: keyof Sample, f = f0) => `${f(med(xs, k))} (${range(xs.map((s) => s[k]), f)})`;
    return `| ${q.key} | \`${q.title}\` | ${cell(c.gw, 'rps')} | ${cell(c.floor, 'rps')} | **${f2(med(c.gw, 'rps') / med(c.floor, 'rps'))}** (${range(ratios(c), f2)}) | ${cell(c.gw, 'p50')} / ${cell(c.gw, 'p99')} | ${cell(c.floor, 'p50')} / ${cell(c.floor, 'p99')} | ${f2(med(c.gw, 'cpuServer'))} · ${f2(med(c.gw, 'cpuPg'))} | ${f2(med(c.floor, 'cpuServer'))} · ${f2(med(c.floor, 'cpuPg'))} |`;
  });
  return [
    `### ${r.size.toLocaleString('en')} manifests${r.loadSeconds !== undefined ? ` (bulk load ${r.loadSeconds} s)` : ''} — load average before measuring: ${r.load}`,
    '',
    '| | query | gateway req/s median (range) | floor req/s median (range) | gateway ÷ floor, median req/s (per-round range) | gateway p50 / p99 ms | floor p50 / p99 ms | CPU ms/req gateway · its PostgreSQL | CPU ms/req floor · its PostgreSQL |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
}

function scaleTable(first: SizeResult, last: SizeResult): { lines: string[]; result: Record<string, number> } {
  const result: Record<string, number> = {};
  const lines = QUERIES.map((q) => {
    const a = first.cells[q.key].gw, b = last.cells[q.key].gw;
    const p50 = med(b, 'p50') / Math.max(1, med(a, 'p50'));
    const p99 = med(b, 'p99') / Math.max(1, med(a, 'p99'));
    result[`search.1m/100k.p50.${q.key}`] = p50;
    result[`search.1m/100k.p99.${q.key}`] = p99;
    return `| ${q.key} | ${med(a, 'p50')} → ${med(b, 'p50')} | **${f2(p50)}** | ${med(a, 'p99')} → ${med(b, 'p99')} | **${f2(p99)}** | ${p50 <= 1.3 && p99 <= 1.5 ? 'yes' : '**no**'} |`;
  });
  return {
    result,
    lines: [
      `### Scale: ${last.size.toLocaleString('en')} ÷ ${first.size.toLocaleString('en')} manifests (gateway, median latency of the rounds)`,
      '',
      '| | p50 ms | × p50 | p99 ms | × p99 | p50 ≤ 1.3× and p99 ≤ 1.5×? |',
      '|---|---:|---:|---:|---:|---|',
      ...lines,
      '',
    ],
  };
}

function report(header: string, results: SizeResult[], settings: string, loadEnd: string): void {
  const first = results[0]!, last = results.at(-1)!;
  const result: Record<string, number> = {};
  for (const q of QUERIES) result[`search.${q.key}/floor`] = med(first.cells[q.key].gw, 'rps') / med(first.cells[q.key].floor, 'rps');
  const scale = results.length > 1 ? scaleTable(first, last) : undefined;
  Object.assign(result, scale?.result ?? {});
  const md = [
    '# Search benchmark',
    '',
    header,
    '',
    `Command: \`npm run bench:search -- --sizes ${SIZES.join(',')} --rounds ${ROUNDS} --duration ${DURATION} --connections ${CONNECTIONS}\`. Gateway: authentication ${AUTH ? 'JWT (RS256, a real OpenID provider; role radiologist, scope user/*.rs)' : 'off (loopback)'} + policy + audit trail ${AUDIT ? 'on' : 'off'}. Embedded PostgreSQL sized from this machine's memory (${settings}; fsync off). The machine has 2 cores shared with other sessions' test runs: the load averages below say how busy it was.`,
    `Each size: ${ROUNDS} rounds × 3 queries × (gateway, database floor) back to back, order alternating per round, ${DURATION} s each after a 2 s warm-up, autocannon ${CONNECTIONS} connections in its own process, a random patient / study per request. Medians of the rounds, (min–max) ranges. CPU: ms per request from /proc, of the server process and of the PostgreSQL cluster.`,
    'Database floor (bench/search-db-floor.ts): a bare node:http process that runs our planner and the same SQL as a prepared statement through the same pool, and concatenates the rows\' stored JSON text — no express, authentication, policy, audit, links or rendering (for ImagingStudy it sends the stored manifest model, which the gateway renders into an ImagingStudy).',
    '',
    ...results.flatMap(sizeTable),
    ...(scale?.lines ?? []),
    `Load average at the end: ${loadEnd}.`,
  ].join('\n');
  const summary: SummaryRow[] = [
    { issue: '20', measure: `search at ${first.size.toLocaleString('en')} manifests, gateway (${AUTH ? 'JWT' : 'no auth'} + audit) ÷ database floor, median req/s of ${ROUNDS} interleaved rounds`, result: QUERIES.map((q) => `${q.key} ${f2(result[`search.${q.key}/floor`]!)}`).join(' · '), target: '≥ 0.7 each' },
  ];
  if (scale) summary.push({ issue: '20', measure: `search ${last.size.toLocaleString('en')} ÷ ${first.size.toLocaleString('en')} manifests, gateway p50 / p99`, result: QUERIES.map((q) => `${q.key} ${f2(result[`search.1m/100k.p50.${q.key}`]!)} / ${f2(result[`search.1m/100k.p99.${q.key}`]!)}`).join(' · '), target: 'p50 ≤ 1.3×, p99 ≤ 1.5×' });
  finishBench('results-search.md', md, { summary, result });
}

async function main(): Promise<void> {
  const existing = arg('database-url', '');
  const base = existing ? '' : fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-search-'));
  if (base) fs.chmodSync(base, 0o755);
  const pg = base ? await startEmbeddedPg({ baseDir: base, ephemeral: true }) : undefined;
  const url = pg ? pg.url('postgres') : existing;
  const db = createDb({ url, poolMax: 4 });
  await migrateLatest(db);
  const header = benchHeader({ postgres: await pgVersion(db) });
  const settings = pg ? Object.entries(pg.settings).map(([k, v]) => `${k} ${v} MB`).join(', ') : 'external database';
  const postmaster = parentPid(Number((await db.raw('select pg_backend_pid() as p')).rows[0].p));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-search-run-'));

  const idp = await startOidcProvider({ users: [{ sub: 'bench-user', claims: { roles: ['radiologist'] } }] });
  const cfgFile = path.join(work, 'gateway.json');
  fs.writeFileSync(cfgFile, JSON.stringify(AUTH ? { auth: { jwt: idp.jwtConfig() } } : {}));
  const headers: Record<string, string> = AUTH ? { authorization: `Bearer ${await idp.token({ sub: 'bench-user', scope: 'user/*.rs', expiresIn: 7200 })}` } : {};
  const gw = await startServer('search-server.ts', { DATABASE_URL: url, BENCH_AUDIT: AUDIT ? 'on' : 'off', GATEWAY_CONFIG: cfgFile, PUBLIC_BASE_URL: 'http://bench.test' });
  const floor = await startServer('search-db-floor.ts', { DATABASE_URL: url });

  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', PORT: '0' });
  const m = syntheticManifest({ series: 2, instancesPerSeries: 2, seed: 'bench-template' });
  const docs = manifestToDocumentReferences(m, { publicBaseUrl: config.publicBaseUrl, defaults: config.documentDefaults }, { status: 'current', nativeFormat: 'kos', date: '2024-01-01T00:00:00Z' });
  const templates = { model: m, kosDocRef: docs.kos, fhirDocRef: docs.fhir, patient: { resourceType: 'Patient', name: [{ family: 'Bench' }] } };

  const results: SizeResult[] = [];
  for (const size of SIZES) {
    const loadSeconds = await loadUpTo(db, size, templates);
    console.log(`${await countManifests(db)} manifests${loadSeconds !== undefined ? ` (load ${loadSeconds} s)` : ''}`);
    const load = loadNow();
    results.push({ size, loadSeconds, load, cells: await measureSize(size, gw, floor, headers, postmaster, work) });
  }
  const loadEnd = loadNow();
  await gw.stop();
  await floor.stop();
  await idp.close();
  await db.destroy();
  if (pg) await pg.stop();
  if (base) fs.rmSync(base, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
  report(header, results, settings, loadEnd);
}

await main();
process.exit(0);
