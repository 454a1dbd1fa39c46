/**
 * Assembles BENCHMARKS.md from the bench/results-*.md files each `npm run bench:*` writes, in
 * issue order. The summary table is built from the machine-readable block finishBench() appends
 * to each results file (rows made from that run's measured numbers), so no figure on the page is
 * typed by hand. Run after re-running benches: `npx tsx scripts/gen-benchmarks.ts`
 * (`--check` exits 1 when BENCHMARKS.md differs from what the results files give).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readOutcome, type SummaryRow } from '../bench/lib/report.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Results file → the command that writes it, in the order of the page. */
export const SECTIONS: ReadonlyArray<readonly [string, string]> = [
  ['results-kos.md', 'npm run bench:kos'],
  ['results-convert.md', 'npm run bench:convert'],
  ['results-ingest.md', 'npm run bench:ingest'],
  ['results-search.md', 'npm run bench:search'],
  ['results-wado.md', 'npm run bench:wado'],
  ['results-proxy-floor.md', 'npx tsx bench/proxy-floor.ts'],
  ['results-qido.md', 'npm run bench:qido'],
  ['results-auth.md', 'npm run bench:auth'],
  ['results-publish.md', 'npm run bench:publish'],
];

const HEAD = `# Benchmarks

Every figure on this page is produced by a script in \`bench/\` (\`npm run bench:*\`), which writes a
\`bench/results-*.md\` file: its report, a \`RESULT\` line, and a machine-readable block of summary rows
built from the numbers measured in that run. \`npx tsx scripts/gen-benchmarks.ts\` assembles this page
from those files; nothing here is typed by hand. Results are ratios against a floor or peer measured in
the same run (interleaved rounds, medians), because the machines are 2 shared, noisy cores: each
section states its date, Node, PostgreSQL and Orthanc versions and the load average during its run.`;

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function summaryTable(rows: Array<SummaryRow & { file: string }>): string {
  const lines = ['| issue | measure | result | target | source |', '|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${cell(r.issue)} | ${cell(r.measure)} | ${cell(r.result)} | ${cell(r.target)} | \`bench/${r.file}\` |`);
  return lines.join('\n');
}

/** The whole page from the results files present. */
export function renderBenchmarks(root = ROOT): string {
  const present = SECTIONS.filter(([f]) => existsSync(path.join(root, 'bench', f)));
  const rows: Array<SummaryRow & { file: string }> = [];
  const stale: string[] = [];
  const bodies = present.map(([f, cmd]) => {
    const text = readFileSync(path.join(root, 'bench', f), 'utf8');
    const outcome = readOutcome(text);
    if (outcome) rows.push(...outcome.summary.map((r) => ({ ...r, file: f })));
    else stale.push(f);
    const shown = text.replace(/<!-- bench-results[\s\S]*?-->\s*$/, '').trim().replace(/^(#+) /gm, '#$1 ');
    return `${shown}\n\n_Source: \`bench/${f}\`, written by \`${cmd}\`._`;
  });
  const note = stale.length
    ? `\n\nNot in the summary (written before results files carried summary rows; see their sections): ${stale.map((f) => `\`${f}\``).join(', ')}.`
    : '';
  return `${HEAD}\n\n${summaryTable(rows)}${note}\n\n---\n\n${bodies.join('\n\n---\n\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = path.join(ROOT, 'BENCHMARKS.md');
  const page = renderBenchmarks();
  if (process.argv.includes('--check')) {
    const same = existsSync(target) && readFileSync(target, 'utf8') === page;
    console.log(same ? 'BENCHMARKS.md is up to date' : 'BENCHMARKS.md differs from the results files: run npx tsx scripts/gen-benchmarks.ts');
    process.exit(same ? 0 : 1);
  }
  writeFileSync(target, page);
  console.log('BENCHMARKS.md written');
}
