/**
 * Content creator benchmark: N typical studies (3 series × 100 instances; pydicom templates
 * re-stamped with new UIDs) stored in a real Orthanc; the gateway (its own process, on embedded
 * PostgreSQL, DICOMWEB_UPSTREAM_URL = Orthanc) publishes every study through
 * POST /fhir/ImagingStudy/$publish at concurrency 4, as the CLI does.
 *
 * Floor, measured in the same run: the same QIDO-RS + WADO-RS series metadata requests straight
 * from Orthanc (the gateway's own DicomwebSource, every metadata document parsed), also at
 * concurrency 4. Each round runs the floor, a creating publish (empty manifest tables) and an
 * unchanged re-publish, in alternating order; medians of the rounds.
 * Writes bench/results-publish.md; last line `RESULT …`.
 * Run: npm run bench:publish [-- --studies 200 --rounds 3 --concurrency 4]
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
import { median, numArg, writeResults } from './lib/report.js';

const STUDIES = numArg('studies', 200);
const ROUNDS = Math.max(3, numArg('rounds', 3));
const CONC = numArg('concurrency', 4);
const SERIES = 3;
const PER_SERIES = 100;
const ROOT_UID = '1.2.826.0.1.3680043.10.543.77';
const uid = (kind: number, n: number) => fixedUid(`${ROOT_UID}.${kind}`, n);

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

async function load(orthanc: Orthanc): Promise<string[]> {
  const tpl = templates();
  const studies = Array.from({ length: STUDIES }, (_, i) => uid(1, i + 1));
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
  return studies;
}

/** Floor: the requests the publisher makes, straight from Orthanc, every document parsed. */
async function direct(source: DicomwebSource, studies: string[]): Promise<number> {
  const t0 = performance.now();
  let docs = 0;
  await pool(studies, CONC, async (s) => {
    if (!(await source.study(s))) throw new Error('study missing');
    for (const se of await source.series(s)) for await (const _ of source.metadata(s, String(se['0020000E']?.Value?.[0]))) docs++;
  });
  if (docs !== studies.length * SERIES * PER_SERIES) throw new Error(`floor read ${docs} documents`);
  return performance.now() - t0;
}

async function publishAll(gw: string, studies: string[], expect: string): Promise<number> {
  const t0 = performance.now();
  await pool(studies, CONC, async (s) => {
    const r = await fetch(`${gw}/fhir/ImagingStudy/$publish`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: s }] }) });
    await r.arrayBuffer();
    if (r.headers.get('x-publish-result') !== expect) throw new Error(`publish answered ${r.status} ${r.headers.get('x-publish-result')}, expected ${expect}`);
  });
  return performance.now() - t0;
}

async function emptyManifestTables(c: pg.Client): Promise<void> {
  const r = await c.query(`select string_agg(quote_ident(table_name), ', ') as t from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' and table_name not like 'knex%'`);
  await c.query(`TRUNCATE ${r.rows[0].t} CASCADE`);
  await c.query('VACUUM ANALYZE');
}

const started = await startOrthanc({ HttpThreadsCount: 8 });
if ('skip' in started) {
  console.error(`bench:publish needs Orthanc: ${started.skip}`);
  process.exit(2);
}
const orthanc = started;
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-publish-pg-'));
fs.chmodSync(base, 0o755);
const pgServer = await startEmbeddedPg({ baseDir: base, ephemeral: true });
const dbUrl = pgServer.url('postgres');
let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
const client = new pg.Client({ connectionString: dbUrl });
try {
  const loadStart = os.loadavg();
  const studies = await load(orthanc);
  gateway = await startGateway({ DATABASE_URL: dbUrl, DICOMWEB_UPSTREAM_URL: orthanc.dicomweb, LOG_LEVEL: 'warn' });
  await client.connect();
  const registry = new UpstreamRegistry(loadConfig({ DICOMWEB_UPSTREAM_URL: orthanc.dicomweb }).upstreams);
  const source = new DicomwebSource(registry.byName('default')!);
  const floor: number[] = [];
  const created: number[] = [];
  const unchanged: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    await emptyManifestTables(client);
    const runFloor = async () => floor.push(await direct(source, studies));
    if (r % 2 === 0) await runFloor();
    created.push(await publishAll(gateway.url, studies, 'created'));
    unchanged.push(await publishAll(gateway.url, studies, 'unchanged'));
    if (r % 2 === 1) await runFloor();
    console.log(`# round ${r + 1}: floor ${floor.at(-1)!.toFixed(0)} ms, publish ${created.at(-1)!.toFixed(0)} ms, unchanged ${unchanged.at(-1)!.toFixed(0)} ms`);
  }
  await registry.close();
  const mf = median(floor);
  const mc = median(created);
  const mu = median(unchanged);
  const pgVersion = (await client.query('show server_version')).rows[0].server_version as string;
  const orthancVersion = ((await (await fetch(`${orthanc.url}/system`)).json()) as { Version?: string }).Version;
  const loadEnd = os.loadavg();
  const fmt = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(', ');
  const md = `# Content creator benchmark (\`npm run bench:publish\`)

${STUDIES} typical studies (${SERIES} series × ${PER_SERIES} instances = ${SERIES * PER_SERIES} per study, ${(STUDIES * SERIES * PER_SERIES).toLocaleString('en')} instances;
pydicom templates re-stamped with new UIDs) in Orthanc ${orthancVersion}; the gateway as its own process on embedded
PostgreSQL ${pgVersion}, upstream = Orthanc. Publish = \`POST /fhir/ImagingStudy/$publish\` per study at concurrency
${CONC} (what \`mado-gateway publish\` sends): QIDO-RS study and series, WADO-RS metadata per series, manifest built, KOS
written, parsed and stored through the ingest path. Floor = the same QIDO-RS + metadata requests straight from Orthanc
in this process (the gateway's DicomwebSource, every metadata document parsed), concurrency ${CONC}. Each of ${ROUNDS} rounds:
floor, publish into empty manifest tables, unchanged re-publish (order alternating); medians.
Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'} shared with other sessions' test suites, Node ${process.version},
${new Date().toISOString().slice(0, 10)}; load average at the start ${loadStart.map((x) => x.toFixed(2)).join(' ')}, at the end ${loadEnd.map((x) => x.toFixed(2)).join(' ')}.

| run | wall time, s (median) | studies/s | ÷ floor | rounds, s |
|---|---:|---:|---:|---|
| floor: QIDO-RS + metadata from Orthanc | ${(mf / 1000).toFixed(2)} | ${(STUDIES / (mf / 1000)).toFixed(1)} | 1.00× | ${fmt(floor)} |
| publish (new manifests) | ${(mc / 1000).toFixed(2)} | ${(STUDIES / (mc / 1000)).toFixed(1)} | ${(mc / mf).toFixed(2)}× | ${fmt(created)} |
| re-publish (unchanged, no new version) | ${(mu / 1000).toFixed(2)} | ${(STUDIES / (mu / 1000)).toFixed(1)} | ${(mu / mf).toFixed(2)}× | ${fmt(unchanged)} |

Goal: publish ÷ floor ≤ 1.3×.

Command: \`npm run bench:publish -- --studies ${STUDIES} --rounds ${ROUNDS} --concurrency ${CONC}\`
`;
  writeResults('results-publish.md', md);
  console.log(`RESULT publish_studies_per_s=${(STUDIES / (mc / 1000)).toFixed(1)} publish_vs_floor=${(mc / mf).toFixed(2)} unchanged_vs_floor=${(mu / mf).toFixed(2)} floor_s=${(mf / 1000).toFixed(2)} load1=${loadEnd[0]!.toFixed(2)}`);
} finally {
  await client.end().catch(() => {});
  if (gateway) {
    gateway.proc.kill('SIGTERM');
    await gateway.exited;
  }
  await pgServer.stop();
  fs.rmSync(base, { recursive: true, force: true });
  await orthanc.stop();
}
