/**
 * BENCHMARKS.md is generated from the bench results files: stale → fail; the summary rows and the
 * RESULT line survive the round trip through a results file.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { renderBenchmarks, SECTIONS } from '../../scripts/gen-benchmarks.js';
import { finishBench, readOutcome, resultLine } from '../../bench/lib/report.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

test('BENCHMARKS.md is up to date with bench/results-*.md (run: npx tsx scripts/gen-benchmarks.ts)', () => {
  assert.equal(fs.readFileSync(path.join(ROOT, 'BENCHMARKS.md'), 'utf8'), renderBenchmarks(ROOT));
});

test('a results file carries its summary rows and RESULT values into the page', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-page-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'bench'));
  const out = path.join(dir, 'bench', 'results-search.md');
  const argv = process.argv;
  const write = process.stdout.write;
  let printed = '';
  process.argv = [...argv, '--out', out];
  process.stdout.write = ((s: string) => ((printed += s), true)) as typeof process.stdout.write;
  try {
    finishBench('results-search.md', '# Search\n\nmeasured 0.7312', {
      summary: [{ issue: '20 search', measure: 'a ÷ floor', result: '0.73×', target: '≥ 0.7× ✔' }],
      result: { 'search.a/floor': 0.731234, note: 'two words' },
    });
  } finally {
    process.argv = argv;
    process.stdout.write = write;
  }
  const lines = printed.trimEnd().split('\n');
  assert.equal(lines.at(-1), 'RESULT search.a/floor=0.7312 note=two_words');
  const text = fs.readFileSync(out, 'utf8');
  assert.deepEqual(readOutcome(text)?.result, { 'search.a/floor': 0.731234, note: 'two words' });
  const page = renderBenchmarks(dir);
  assert.match(page, /\| 20 search \| a ÷ floor \| 0\.73× \| ≥ 0\.7× ✔ \| `bench\/results-search\.md` \|/);
  assert.match(page, /measured 0\.7312/);
  assert.doesNotMatch(page, /bench-results/, 'the machine-readable block stays out of the page');
});

test('RESULT values are rounded to four significant digits', () => {
  assert.equal(resultLine({ a: 1234.5678, b: 0.000123456, c: 2 }), 'RESULT a=1235 b=0.0001235 c=2');
});

test('every results file on the page carries its summary block (written by finishBench)', () => {
  for (const [file] of SECTIONS) {
    const text = fs.readFileSync(path.join(ROOT, 'bench', file), 'utf8');
    assert.ok(readOutcome(text)?.summary.length, `bench/${file} has no summary rows: re-run its bench`);
  }
});
