/**
 * Conversion benchmark: kos2fhir and fhir2kos for 1,000 and 20,000 references, as a ratio to a bare
 * dcmjs parse of the same KOS bytes (DicomMessage.readFile; target ≤ 1.5×). Medians of interleaved
 * runs after a warm-up, a full (non-memory-reducing) GC before each timed call as bench:kos does.
 * Writes bench/results-convert.md (finishBench); last line `RESULT kos2fhir/dcmjs.1k=… …`.
 * Run: npm run bench:convert  [-- --runs 5 --runs-20k 3]  (--max-refs 1000 --out FILE: a quick check)
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import dcmjs from 'dcmjs';
import { readKos, syntheticManifest, writeKos } from '../src/dicom/index.js';
import { fhirToManifest, manifestToFhirBundle } from '../src/fhir/mapping/index.js';
import { loadConfig } from '../src/config.js';
import { benchHeader, finishBench, loadNow, median, numArg, range, type SummaryRow } from './lib/report.js';

const defaults = loadConfig({}).documentDefaults;
const ctx = { publicBaseUrl: 'http://127.0.0.1:8080', defaults };

// Fair baseline: dcmjs logs warnings through loglevel by default; silence them so only parsing is timed.
dcmjs.log?.setLevel?.('error');

const RUNS = Math.max(3, numArg('runs', 5) || 5);
/** 20k references: a dcmjs parse takes seconds, so fewer runs and one warm-up */
const RUNS_20K = Math.max(3, numArg('runs-20k', 3) || 3);
const MAX_REFS = numArg('max-refs', 20_000);

// A full GC before each timed call, so one operation's garbage is not charged to the next
// (interleaved runs). 'regular', not plain gc(): that one is memory-reducing, flushes compiled
// code, and the next call then runs interpreted (bench:kos measured a 5× slower read).
v8.setFlagsFromString('--expose-gc');
const gcFn = vm.runInNewContext('gc') as (o: object) => void;
const gc = (): void => gcFn({ type: 'major', execution: 'sync', flavor: 'regular' });
const header = benchHeader();

function ms(fn: () => unknown): number {
  gc();
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function dcmjsParse(bytes: Uint8Array): void {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  dcmjs.data.DicomMessage.readFile(ab);
}

function kos2fhir(bytes: Uint8Array): string {
  const r = readKos(bytes);
  if (!r.manifest) throw new Error('readKos failed');
  return JSON.stringify(manifestToFhirBundle(r.manifest, ctx));
}

function fhir2kos(json: string): Uint8Array {
  const r = fhirToManifest(JSON.parse(json));
  if (!r.manifest) throw new Error(`fhirToManifest failed: ${r.issues.find((i) => i.severity === 'error')?.message}`);
  return writeKos(r.manifest);
}

type Times = Record<'dcmjs' | 'k2f' | 'dcmjsOut' | 'f2k' | 'readOnly' | 'writeOnly', number[]>;
interface Row { refs: number; kosBytes: number; jsonBytes: number; t: Times; runs: number }

/** One size: interleaved runs of every operation, each after a full GC. */
function measureSize(refs: number): Row {
  const series = refs >= 10_000 ? 20 : 10;
  const m = syntheticManifest({ series, instancesPerSeries: refs / series, seed: 42 });
  const kos = writeKos(m);
  const json = kos2fhir(kos);
  const out = fhir2kos(json);
  const [runs, warmup] = refs >= 10_000 ? [RUNS_20K, 1] : [RUNS, 2];
  for (let i = 0; i < warmup; i++) { dcmjsParse(kos); kos2fhir(kos); dcmjsParse(out); fhir2kos(json); }
  const m2 = fhirToManifest(JSON.parse(json)).manifest!;
  const t: Times = { dcmjs: [], k2f: [], dcmjsOut: [], f2k: [], readOnly: [], writeOnly: [] };
  for (let i = 0; i < runs; i++) {
    t.dcmjs.push(ms(() => dcmjsParse(kos)));
    t.k2f.push(ms(() => kos2fhir(kos)));
    t.dcmjsOut.push(ms(() => dcmjsParse(out)));
    t.f2k.push(ms(() => fhir2kos(json)));
    t.readOnly.push(ms(() => readKos(kos)));
    t.writeOnly.push(ms(() => writeKos(m2)));
  }
  console.log(`# ${refs} refs: dcmjs ${median(t.dcmjs).toFixed(1)} ms, kos2fhir ${median(t.k2f).toFixed(1)} ms, fhir2kos ${median(t.f2k).toFixed(1)} ms (dcmjs of output ${median(t.dcmjsOut).toFixed(1)} ms)`);
  return { refs, kosBytes: kos.length, jsonBytes: json.length, t, runs };
}

const rows = [1000, 20000].filter((r) => r <= MAX_REFS).map(measureSize);
const f = (x: number) => x.toFixed(1);
const med = (r: Row, k: keyof Times) => median(r.t[k]);
const k2f = (r: Row) => med(r, 'k2f') / med(r, 'dcmjs');
const f2k = (r: Row) => med(r, 'f2k') / med(r, 'dcmjsOut');
const withRange = (r: Row, k: keyof Times) => `${f(med(r, k))} (${range(r.t[k], f)})`;
const md = [
  '# Conversion benchmark (`npm run bench:convert`)',
  '',
  `${header} · no database`,
  '',
  `Medians of ${RUNS} interleaved runs after 2 warm-ups (20,000 references: ${RUNS_20K} runs after 1), a full regular GC before each timed call (outside the timing), as \`bench:kos\` does; ranges over the runs in brackets.`,
  'Baseline: `dcmjs.data.DicomMessage.readFile` of the same KOS bytes (parse only, no naturalize, dcmjs logging off). kos2fhir = readKos + manifestToFhirBundle + JSON.stringify;',
  'fhir2kos = JSON.parse + fhirToManifest + writeKos, compared with a dcmjs parse of the KOS it writes. Target ≤ 1.5×.',
  'For context, the codec alone: readKos (share of kos2fhir) and writeKos (share of fhir2kos); the rest is the FHIR mapping and JSON.',
  '',
  '| references | KOS bytes | Bundle JSON bytes | dcmjs parse (ms) | kos2fhir (ms) | kos2fhir / dcmjs | dcmjs parse of output (ms) | fhir2kos (ms) | fhir2kos / dcmjs | readKos alone (ms) | writeKos alone (ms) |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.refs.toLocaleString('en')} | ${r.kosBytes.toLocaleString('en')} | ${r.jsonBytes.toLocaleString('en')} | ${withRange(r, 'dcmjs')} | ${withRange(r, 'k2f')} | ${k2f(r).toFixed(3)}× | ${withRange(r, 'dcmjsOut')} | ${withRange(r, 'f2k')} | ${f2k(r).toFixed(3)}× | ${f(med(r, 'readOnly'))} | ${f(med(r, 'writeOnly'))} |`),
  '',
  `Load average at the end: ${loadNow()} (2 cores shared with other sessions' work: expect run-to-run noise).`,
  '',
  `Command: \`npm run bench:convert -- --runs ${RUNS} --runs-20k ${RUNS_20K}\``,
  '',
].join('\n');
const summary: SummaryRow[] = rows.flatMap((r) => [
  { issue: '4', measure: `KOS → FHIR (kos2fhir) ${r.refs.toLocaleString('en')} references ÷ dcmjs parse of the same bytes`, result: `${k2f(r).toFixed(3)}× (${f(med(r, 'k2f'))} ms vs ${f(med(r, 'dcmjs'))} ms)`, target: '≤ 1.5×' },
  { issue: '4', measure: `FHIR → KOS (fhir2kos) ${r.refs.toLocaleString('en')} references ÷ dcmjs parse of its output`, result: `${f2k(r).toFixed(3)}× (${f(med(r, 'f2k'))} ms vs ${f(med(r, 'dcmjsOut'))} ms)`, target: '≤ 1.5×' },
]);
const result: Record<string, number> = {};
for (const r of rows) {
  result[`kos2fhir/dcmjs.${r.refs / 1000}k`] = +k2f(r).toFixed(4);
  result[`fhir2kos/dcmjs.${r.refs / 1000}k`] = +f2k(r).toFixed(4);
}
finishBench('results-convert.md', md, { summary, result });
