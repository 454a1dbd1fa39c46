/**
 * Content creator benchmark: N typical studies (3 series × 100 instances; pydicom templates
 * re-stamped with new UIDs) stored in a real Orthanc; the gateway (its own process, on embedded
 * PostgreSQL, DICOMWEB_UPSTREAM_URL = Orthanc) publishes every study through
 * POST /fhir/ImagingStudy/$publish at concurrency 4, as the CLI does.
 *
 * Floor, measured in the same run: the same QIDO-RS + WADO-RS series metadata requests straight
 * from Orthanc (the gateway's own DicomwebSource, every metadata document parsed), also at
 * concurrency 4. Each round runs the floor, a creating publish (empty manifest tables) and an
 * unchanged re-publish, in alternating order; medians and ranges of the rounds, and the CPU each
 * process spent per study.
 * Writes bench/results-publish.md; last line `RESULT …`.
 * Run: npm run bench:publish [-- --studies 200 --rounds 3 --concurrency 4]
 *   --orthanc-dir DIR  keep Orthanc's storage in DIR and reuse it on the next run (loading 60,000
 *                      instances takes minutes); the instances are the same every run
 *   --cpu-prof DIR     write a V8 CPU profile of the gateway process into DIR
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { UpstreamRegistry } from '../src/dicomweb/upstream.js';
import { DicomwebSource } from '../src/publish/source.js';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';
import { startGateway } from '../test/helpers/gateway-process.js';
import { fixedUid, makeInstances, restamp } from '../test/helpers/instances.js';
import { startOrthanc, type Orthanc } from '../test/helpers/orthanc.js';
import { cpuMs, cpuMsOfTree, parentPid, selfCpuMs } from './lib/cpu.js';
import { benchHeader, finishBench, loadNow, median, numArg, pgVersion, range, type SummaryRow } from './lib/report.js';

const STUDIES = numArg('studies', 200);
const ROUNDS = Math.max(3, numArg('rounds', 3));
const CONC = numArg('concurrency', 4);
const SERIES = 3;
const PER_SERIES = 100;
const ROOT_UID = '1.2.826.0.1.3680043.10.543.77';
const uid = (kind: number, n: number) => fixedUid(`${ROOT_UID}.${kind}`, n);

function strArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}
const ORTHANC_DIR = strArg('orthanc-dir');
const CPU_PROF = strArg('cpu-prof');

/** Three pydicom templates (CT, CT, MR) with placeholder UIDs; every instance is a re-stamped copy. */
function templates(): Array<{ bytes: Buffer; series: string; sop: string }> {
  const study = uid(1, 0);
  const specs = [0, 1, 2].map((j) => ({
    modality: j === 2 ? 'MR' : 'CT', study, series: uid(2, j), sop: uid(3, j), seriesNumber: j + 1, instanceNumber: 1,
    patientId: 'BENCH-0001', issuer: 'HOSP', issuerUid: '1.2.826.0.1.3680043.10.543.1', bodyPart: j === 2 ? 'HEAD' : 'CHEST',
  }));
  return makeInstances(specs).map((bytes, j) => ({ bytes, series: specs[j]!.series, sop: specs[j]!.sop }));
}

async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const studyUids = () => Array.from({ length: STUDIES }, (_, i) => uid(1, i + 1));

async function load(orthanc: Orthanc): Promise<void> {
  const tpl = templates();
  const studies = studyUids();
  const jobs: Array<[number, number, number]> = [];
  for (let i = 0; i < STUDIES; i++) for (let j = 0; j < SERIES; j++) for (let k = 0; k < PER_SERIES; k++) jobs.push([i, j, k]);
  const t0 = Date.now();
  let done = 0;
  await pool(jobs, 8, async ([i, j, k]) => {
    const t = tpl[j]!;
    await orthanc.upload(restamp(t.bytes, [[uid(1, 0), studies[i]!], [t.series, uid(2, (i + 1) * 10 + j)], [t.sop, uid(3, ((i + 1) * 10 + j) * 1000 + k)]]));
    if (++done % 5000 === 0) console.log(`#   ${done}/${jobs.length} instances stored (${Math.round((Date.now() - t0) / 1000)} s)`);
  });
  console.log(`# ${jobs.length} instances stored in Orthanc in ${Math.round((Date.now() - t0) / 1000)} s`);
}

/** Orthanc with the bench's studies: loaded now, or (--orthanc-dir) reused from an earlier run. */
async function openOrthanc(): Promise<{ orthanc: Orthanc; reused: boolean }> {
  const storage = ORTHANC_DIR ? path.resolve(ORTHANC_DIR, `studies-${STUDIES}`) : undefined;
  const marker = storage && path.join(storage, 'loaded');
  const reused = !!marker && fs.existsSync(marker);
  if (storage && !reused) fs.rmSync(storage, { recursive: true, force: true });
  const started = await startOrthanc({ HttpThreadsCount: 8, ...(storage ? { StorageDirectory: storage, IndexDirectory: storage } : {}) });
  if ('skip' in started) {
    console.error(`bench:publish needs Orthanc: ${started.skip}`);
    process.exit(2);
  }
  if (!reused) {
    await load(started);
    if (marker) fs.writeFileSync(marker, new Date().toISOString());
  } else console.log(`# reusing the Orthanc storage in ${storage}`);
  return { orthanc: started, reused };
}

/** Floor: the requests the publisher makes, straight from Orthanc, every document parsed. */
async function direct(source: DicomwebSource, studies: string[]): Promise<void> {
  let docs = 0;
  await pool(studies, CONC, async (s) => {
    if (!(await source.study(s))) throw new Error('study missing');
    for (const se of await source.series(s)) for await (const _ of source.metadata(s, String(se['0020000E']?.Value?.[0]))) docs++;
  });
  if (docs !== studies.length * SERIES * PER_SERIES) throw new Error(`floor read ${docs} documents`);
}

async function publishAll(gw: string, studies: string[], expect: string): Promise<void> {
  await pool(studies, CONC, async (s) => {
    const r = await fetch(`${gw}/fhir/ImagingStudy/$publish`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: s }] }) });
    await r.arrayBuffer();
    if (r.headers.get('x-publish-result') !== expect) throw new Error(`publish answered ${r.status} ${r.headers.get('x-publish-result')}, expected ${expect}`);
  });
}

async function emptyManifestTables(c: pg.Client): Promise<void> {
  const r = await c.query(`select string_agg(quote_ident(table_name), ', ') as t from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' and table_name not like 'knex%'`);
  await c.query(`TRUNCATE ${r.rows[0].t} CASCADE`);
  await c.query('VACUUM ANALYZE');
}

/** Processes whose CPU is counted: the gateway, Orthanc, the PostgreSQL cluster, this process. */
interface Pids { gateways: number[]; orthanc: number; postmaster: number }
interface Sample { ms: number; gateway: number; orthanc: number; pg: number; bench: number }
type Phase = 'floor' | 'created' | 'unchanged' | 'mainThread';

/** Wall time and CPU ms of each process over one phase. */
async function measure(pids: Pids, fn: () => Promise<void>): Promise<Sample> {
  const cpu = () => ({ gateway: pids.gateways.reduce((a, p) => a + cpuMs(p), 0), orthanc: cpuMs(pids.orthanc), pg: cpuMsOfTree(pids.postmaster), bench: selfCpuMs() });
  const c0 = cpu();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const c1 = cpu();
  return { ms, gateway: c1.gateway - c0.gateway, orthanc: c1.orthanc - c0.orthanc, pg: c1.pg - c0.pg, bench: c1.bench - c0.bench };
}

/** `gatewayUrl`: the gateway as configured by default; `mainThreadUrl`: the same with publish.workers 0 */
interface Run { gatewayUrl: string; mainThreadUrl: string; pids: Pids; client: pg.Client; source: DicomwebSource; studies: string[] }

/**
 * ROUNDS rounds of floor / publish / unchanged re-publish / publish without worker threads (into
 * empty manifest tables again), the floor first and last alternately.
 */
async function rounds(run: Run): Promise<Record<Phase, Sample[]>> {
  const out: Record<Phase, Sample[]> = { floor: [], created: [], unchanged: [], mainThread: [] };
  for (let r = 0; r < ROUNDS; r++) {
    await emptyManifestTables(run.client);
    const floor = async () => out.floor.push(await measure(run.pids, () => direct(run.source, run.studies)));
    if (r % 2 === 0) await floor();
    out.created.push(await measure(run.pids, () => publishAll(run.gatewayUrl, run.studies, 'created')));
    out.unchanged.push(await measure(run.pids, () => publishAll(run.gatewayUrl, run.studies, 'unchanged')));
    await emptyManifestTables(run.client);
    out.mainThread.push(await measure(run.pids, () => publishAll(run.mainThreadUrl, run.studies, 'created')));
    if (r % 2 === 1) await floor();
    const s = (p: Phase) => `${(out[p].at(-1)!.ms / 1000).toFixed(2)} s`;
    console.log(`# round ${r + 1}: floor ${s('floor')}, publish ${s('created')}, unchanged ${s('unchanged')}, publish without workers ${s('mainThread')}`);
  }
  return out;
}

const sec = (ms: number) => (ms / 1000).toFixed(2);
const LABEL: Record<Phase, string> = {
  floor: 'floor: QIDO-RS + metadata from Orthanc',
  created: 'publish (new manifests)',
  unchanged: 're-publish (unchanged, no new version)',
  mainThread: 'publish (new manifests), \`publish.workers: 0\` (all on the main thread)',
};

/** The results table: wall time medians and ranges, ratios to the floor, CPU ms per study. */
function table(res: Record<Phase, Sample[]>): string {
  const mf = median(res.floor.map((s) => s.ms));
  const rows = (['floor', 'created', 'unchanged', 'mainThread'] as Phase[]).map((p) => {
    const xs = res[p];
    const m = median(xs.map((s) => s.ms));
    const per = (k: keyof Sample) => (median(xs.map((s) => s[k])) / STUDIES).toFixed(1);
    return `| ${LABEL[p]} | ${sec(m)} | ${range(xs.map((s) => s.ms), sec)} | ${(STUDIES / (m / 1000)).toFixed(1)} | ${(m / mf).toFixed(2)}× | ${per('gateway')} | ${per('orthanc')} | ${per('pg')} | ${per('bench')} |`;
  });
  return `| run | wall time, s (median) | range, s | studies/s | ÷ floor | gateway CPU ms/study | Orthanc | PostgreSQL | bench process |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}`;
}

function report(res: Record<Phase, Sample[]>, header: string, orthancVersion: string, loadEnd: string, reused: boolean): void {
  const m = (p: Phase) => median(res[p].map((s) => s.ms));
  const ratio = m('created') / m('floor');
  const unchanged = m('unchanged') / m('floor');
  const mainThread = m('mainThread') / m('floor');
  const perS = STUDIES / (m('created') / 1000);
  const md = `# Content creator benchmark (\`npm run bench:publish\`)

${header}

${STUDIES} typical studies (${SERIES} series × ${PER_SERIES} instances = ${SERIES * PER_SERIES} per study, ${(STUDIES * SERIES * PER_SERIES).toLocaleString('en')} instances;
pydicom templates re-stamped with new UIDs; ${reused ? 'Orthanc storage loaded by an earlier run of this script and reused, `--orthanc-dir`' : 'loaded by this run'}) in Orthanc ${orthancVersion}; the gateway as its own process on embedded
PostgreSQL, upstream = Orthanc. Publish = \`POST /fhir/ImagingStudy/$publish\` per study at concurrency ${CONC}
(what \`mado-gateway publish\` sends): QIDO-RS study and series, WADO-RS metadata per series, manifest built, KOS
written, parsed and stored through the ingest path. Floor = the same QIDO-RS + metadata requests straight from Orthanc
in the bench process (the gateway's DicomwebSource, every metadata document parsed), concurrency ${CONC}. Each of
${ROUNDS} rounds: floor, publish into empty manifest tables, unchanged re-publish (the floor first and last
alternately), then, into empty tables again, publish by a second gateway process configured with \`publish.workers: 0\`
(metadata parsing and KOS writing on the main thread, as before decisions.md D143); medians and ranges over the rounds.
CPU columns: utime + stime of each process over the phase, ÷ studies (gateway: both gateway processes).
The machine's 2 cores are shared with other sessions' work. Load average at the end: ${loadEnd}.

${table(res)}

Goal: publish ÷ floor ≤ 1.3×.

Command: \`npm run bench:publish -- --studies ${STUDIES} --rounds ${ROUNDS} --concurrency ${CONC}\`
`;
  const summary: SummaryRow[] = [
    { issue: '18', measure: `publish ${STUDIES} studies × ${SERIES * PER_SERIES} instances from Orthanc, concurrency ${CONC}, ÷ direct QIDO-RS + metadata`, result: `${ratio.toFixed(2)}× (${perS.toFixed(1)} studies/s)`, target: '≤ 1.3×' },
    { issue: '18', measure: 'unchanged re-publish ÷ direct QIDO-RS + metadata', result: `${unchanged.toFixed(2)}×`, target: 'no new version' },
    { issue: '18', measure: 'publish with publish.workers 0 (all on the main thread) ÷ direct QIDO-RS + metadata', result: `${mainThread.toFixed(2)}×`, target: 'context for D143' },
  ];
  finishBench('results-publish.md', md, { summary, result: { 'publish/floor': +ratio.toFixed(2), 'publish.unchanged/floor': +unchanged.toFixed(2), 'publish.studies-per-s': +perS.toFixed(1), 'publish.main-thread/floor': +mainThread.toFixed(2) } });
}

type Gateway = Awaited<ReturnType<typeof startGateway>>;

/** The gateway as configured by default, and a second one with publish.workers 0, on one database. */
async function startGateways(dbUrl: string, orthanc: Orthanc, dir: string): Promise<Gateway[]> {
  const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(CPU_PROF)}`] : [];
  const env = { DATABASE_URL: dbUrl, DICOMWEB_UPSTREAM_URL: orthanc.dicomweb, LOG_LEVEL: 'warn' };
  const mainThreadConfig = path.join(dir, 'main-thread.json');
  fs.writeFileSync(mainThreadConfig, JSON.stringify({ publish: { workers: 0 } }));
  const gateway = await startGateway(env, prof);
  return [gateway, await startGateway({ ...env, GATEWAY_CONFIG: mainThreadConfig })];
}

async function main(): Promise<void> {
  const { orthanc, reused } = await openOrthanc();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-publish-pg-'));
  fs.chmodSync(base, 0o755);
  const pgServer = await startEmbeddedPg({ baseDir: base, ephemeral: true });
  const dbUrl = pgServer.url('postgres');
  const client = new pg.Client({ connectionString: dbUrl });
  const gateways: Gateway[] = [];
  const registry = new UpstreamRegistry(loadConfig({ DICOMWEB_UPSTREAM_URL: orthanc.dicomweb }).upstreams);
  try {
    await client.connect();
    const orthancVersion = ((await (await fetch(`${orthanc.url}/system`)).json()) as { Version?: string }).Version ?? '?';
    const header = benchHeader({ postgres: await pgVersion(client), orthanc: orthancVersion });
    gateways.push(...(await startGateways(dbUrl, orthanc, base)));
    const postmaster = parentPid(Number((await client.query('select pg_backend_pid() as p')).rows[0].p));
    const pids = { gateways: gateways.map((g) => g.proc.pid!), orthanc: orthanc.proc.pid!, postmaster };
    const source = new DicomwebSource(registry.byName('default')!);
    const res = await rounds({ gatewayUrl: gateways[0]!.url, mainThreadUrl: gateways[1]!.url, pids, client, source, studies: studyUids() });
    report(res, header, orthancVersion, loadNow(), reused);
  } finally {
    await registry.close();
    await client.end().catch(() => {});
    for (const g of gateways) {
      g.proc.kill('SIGTERM');
      await g.exited;
    }
    await pgServer.stop();
    fs.rmSync(base, { recursive: true, force: true });
    await orthanc.stop();
  }
}

await main();
