/**
 * `npm run bench:qido` — QIDO-RS from the manifest index (RAD-129), database side: one page
 * (limit 100) of /studies, /series and /instances without other criteria, through the same
 * searchIndex() the routes call, over N typical manifests (1 study, 3 series, 300 instances) on
 * embedded PostgreSQL. Baseline in the same run: the bare page — imaging_study rows of current
 * manifests in QIDO's order, no visibility filter, counts or series/instance rows.
 * Measured twice: with an empty rejected_instance table, then with R rejected instances (one per
 * tenth study plus R unrelated ones), since every count and visibility test consults it.
 * Medians and ranges of interleaved repetitions. Writes bench/results-qido.md (finishBench); last
 * line `RESULT qido.studies/bare=… …`.
 *
 * Options: --manifests N (1000) --rejected R (20000) --reps K (15) --out FILE
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { syntheticManifest, writeKos } from '../src/dicom/index.js';
import { mappingContext, parseKos, storeManifestTx } from '../src/ingest/service.js';
import type { PatientFilter } from '../src/auth/principal.js';
import { createDb } from '../src/store/db.js';
import { startEmbeddedPg } from '../src/store/embedded-pg.js';
import { searchIndex, type QidoLevel } from '../src/store/imaging-index.js';
import { runInTransaction } from '../src/store/manifests.js';
import { migrateLatest } from '../src/store/migrate.js';
import { benchHeader, finishBench, loadNow, median, numArg, pgVersion, range, type SummaryRow } from './lib/report.js';


const N = numArg('manifests', 1000);
const R = numArg('rejected', 20_000);
const REPS = numArg('reps', 15);
const ALL: PatientFilter = { all: true };
const BASELINE = `select st.* from imaging_study st join manifest m on m.id = st.manifest_id and m.status = 'current'
  order by st.study_date desc nulls last, st.study_time desc nulls last, st.study_instance_uid limit 101`;

type Times = Record<string, number[]>;

const LEVELS: Array<[label: string, key: string, path: string]> = [
  ['baseline: bare page of study rows', 'baseline', ''],
  ['/studies?limit=100', 'study', 'studies'],
  ['/series?limit=100', 'series', 'series'],
  ['/instances?limit=100', 'instance', 'instances'],
];

function report(header: string, clean: Times, rejected: Times, nRejected: number): void {
  const m = (t: Times, k: string) => median(t[k]!);
  const ms = (x: number) => x.toFixed(2);
  const cells = (t: Times, k: string) => `${ms(m(t, k))} | ${range(t[k]!, ms)} | ${(m(t, k) / m(t, 'baseline')).toFixed(1)}×`;
  const md = `# QIDO-RS benchmark (\`npm run bench:qido\`)

${header}

${N} typical manifests (1 study, 3 series, 300 instances each) on embedded PostgreSQL; one page
(limit 100, no other criteria) through \`searchIndex()\`, medians and ranges of ${REPS} interleaved repetitions
(after 2 warm-up rounds), milliseconds. Baseline: the bare page (imaging_study rows of current manifests in
QIDO's order, no visibility filter or counts). Right columns: with ${nRejected.toLocaleString('en')} rows in rejected_instance.
Load average at the end: ${loadNow()} (2 cores shared with other sessions' work).

| query | ms | range | ÷ baseline | ms, with rejections | range | ÷ baseline |
|---|---:|---:|---:|---:|---:|---:|
${LEVELS.map(([label, k]) => `| ${label} | ${cells(clean, k)} | ${cells(rejected, k)} |`).join('\n')}

Command: \`npm run bench:qido -- --manifests ${N} --rejected ${R} --reps ${REPS}\`
`;
  const summary: SummaryRow[] = LEVELS.slice(1).map(([label, k]) => ({
    issue: '7',
    measure: `QIDO-RS ${label} at ${N.toLocaleString('en')} manifests (database side) ÷ bare page of study rows; with ${nRejected.toLocaleString('en')} rejected instances`,
    result: `${(m(clean, k) / m(clean, 'baseline')).toFixed(1)}× (${ms(m(clean, k))} ms); ${(m(rejected, k) / m(rejected, 'baseline')).toFixed(1)}× (${ms(m(rejected, k))} ms)`,
    target: 'none set (tracked)',
  }));
  const result: Record<string, number> = {};
  for (const [, k, p] of LEVELS.slice(1)) {
    result[`qido.${p}/bare`] = +(m(clean, k) / m(clean, 'baseline')).toFixed(2);
    result[`qido.${p}.rejected/bare`] = +(m(rejected, k) / m(rejected, 'baseline')).toFixed(2);
  }
  finishBench('results-qido.md', md, { summary, result });
}

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-qido-'));
fs.chmodSync(base, 0o755);
const pg = await startEmbeddedPg({ baseDir: base });
const url = pg.url('postgres');
const db = createDb({ url, poolMax: 4 });
try {
  await migrateLatest(db);
  const config = loadConfig({ DATABASE_URL: url, PUBLIC_BASE_URL: 'http://bench.test' });
  const ctx = mappingContext(config);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < N) {
        const p = parseKos(writeKos(syntheticManifest({ series: 3, instancesPerSeries: 100, seed: `qido-${next++}` })), config);
        if (p.kind !== 'manifest') throw new Error('synthetic KOS is not a manifest');
        await runInTransaction(db, (tx) => storeManifestTx(tx, p.manifest, ctx));
      }
    }),
  );
  await db.raw('VACUUM ANALYZE');
  const header = benchHeader({ postgres: await pgVersion(db) });

  const levels: QidoLevel[] = ['study', 'series', 'instance'];
  const measure = async () => {
    const t: Record<string, number[]> = { baseline: [], study: [], series: [], instance: [] };
    for (let r = 0; r < REPS + 2; r++) {
      const time = async (k: string, f: () => Promise<unknown>) => {
        const a = performance.now();
        await f();
        if (r >= 2) t[k]!.push(performance.now() - a); // 2 warm-up rounds
      };
      await time('baseline', () => db.raw(BASELINE));
      for (const level of levels) await time(level, () => searchIndex(db, ALL, { level, criteria: {}, limit: 100, offset: 0 }));
    }
    return t;
  };
  const clean = await measure();
  await db.raw(`insert into rejected_instance (sop_instance_uid, study_instance_uid, series_instance_uid, rejected_by)
    select se.sop_instance_uids[1], se.study_instance_uid, se.series_instance_uid, 'bench' from imaging_series se
    where se.series_number = 1 and abs(hashtext(se.study_instance_uid)) % 10 = 0`);
  await db.raw(`insert into rejected_instance (sop_instance_uid, study_instance_uid, series_instance_uid, rejected_by)
    select '2.25.9' || g, '2.25.8', '2.25.7', 'bench' from generate_series(1, ?::int) g`, [R]);
  await db.raw('ANALYZE rejected_instance');
  const rejected = await measure();
  const nRejected = Number((await db.raw('select count(*) as n from rejected_instance')).rows[0].n);

  report(header, clean, rejected, nRejected);
} finally {
  await db.destroy();
  await pg.stop();
  fs.rmSync(base, { recursive: true, force: true });
}
