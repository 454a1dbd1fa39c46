/**
 * Conversion benchmark: kos2fhir and fhir2kos for 1,000 and 20,000 references, as a ratio to a bare
 * dcmjs parse of the same KOS bytes (DicomMessage.readFile; target ≤ 1.5×). Medians of interleaved
 * runs after a warm-up, a full (non-memory-reducing) GC before each timed call as bench:kos does.
 * Writes bench/results-convert.md; last line RESULT name=value ….
 * Run: npm run bench:convert  [-- --runs 7]
 */
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import dcmjs from 'dcmjs';
import { readKos, syntheticManifest, writeKos } from '../src/dicom/index.js';
import { fhirToManifest, manifestToFhirBundle } from '../src/fhir/mapping/index.js';
import { loadConfig } from '../src/config.js';
import { median, numArg, writeResults } from './lib/report.js';

const defaults = loadConfig({}).documentDefaults;
const ctx = { publicBaseUrl: 'http://127.0.0.1:8080', defaults };

// Fair baseline: dcmjs logs warnings through loglevel by default; silence them so only parsing is timed.
dcmjs.log?.setLevel?.('error');

const RUNS = Math.max(3, numArg('runs', 7) || 7);

// A full GC before each timed call, so one operation's garbage is not charged to the next
// (interleaved runs). 'regular', not plain gc(): that one is memory-reducing, flushes compiled
// code, and the next call then runs interpreted (bench:kos measured a 5× slower read).
v8.setFlagsFromString('--expose-gc');
const gcFn = vm.runInNewContext('gc') as (o: object) => void;
const gc = (): void => gcFn({ type: 'major', execution: 'sync', flavor: 'regular' });
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
const loadStart = load();

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

interface Row { refs: number; kosBytes: number; jsonBytes: number; dcmjs: number; k2f: number; dcmjsOut: number; f2k: number; readOnly: number; writeOnly: number }
const rows: Row[] = [];
for (const refs of [1000, 20000]) {
  const series = refs >= 10_000 ? 20 : 10;
  const m = syntheticManifest({ series, instancesPerSeries: refs / series, seed: 42 });
  const kos = writeKos(m);
  const json = kos2fhir(kos);
  const out = fhir2kos(json);
  for (let i = 0; i < 2; i++) { dcmjsParse(kos); kos2fhir(kos); dcmjsParse(out); fhir2kos(json); } // warm-up
  const m2 = fhirToManifest(JSON.parse(json)).manifest!;
  const t = { dcmjs: [] as number[], k2f: [] as number[], dcmjsOut: [] as number[], f2k: [] as number[], readOnly: [] as number[], writeOnly: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    t.dcmjs.push(ms(() => dcmjsParse(kos)));
    t.k2f.push(ms(() => kos2fhir(kos)));
    t.dcmjsOut.push(ms(() => dcmjsParse(out)));
    t.f2k.push(ms(() => fhir2kos(json)));
    t.readOnly.push(ms(() => readKos(kos)));
    t.writeOnly.push(ms(() => writeKos(m2)));
  }
  rows.push({ refs, kosBytes: kos.length, jsonBytes: json.length, dcmjs: median(t.dcmjs), k2f: median(t.k2f), dcmjsOut: median(t.dcmjsOut), f2k: median(t.f2k), readOnly: median(t.readOnly), writeOnly: median(t.writeOnly) });
  console.log(`${refs} refs: dcmjs ${median(t.dcmjs).toFixed(1)} ms, kos2fhir ${median(t.k2f).toFixed(1)} ms, fhir2kos ${median(t.f2k).toFixed(1)} ms (dcmjs of output ${median(t.dcmjsOut).toFixed(1)} ms)`);
}

const f = (x: number) => x.toFixed(1);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const md = [
  '# Conversion benchmark (bench/convert.ts)',
  '',
  `${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, no database. Medians of ${RUNS} interleaved runs after 2 warm-ups, a full regular GC before each timed call (outside the timing).`,
  'Baseline: `dcmjs.data.DicomMessage.readFile` of the same KOS bytes (parse only, no naturalize, dcmjs logging off). kos2fhir = readKos + manifestToFhirBundle + JSON.stringify;',
  'fhir2kos = JSON.parse + fhirToManifest + writeKos, compared with a dcmjs parse of the KOS it writes. Target ≤ 1.5×.',
  'For context, the codec alone: readKos (share of kos2fhir) and writeKos (share of fhir2kos); the rest is the FHIR mapping and JSON.',
  '',
  '| references | KOS bytes | Bundle JSON bytes | dcmjs parse (ms) | kos2fhir (ms) | kos2fhir / dcmjs | dcmjs parse of output (ms) | fhir2kos (ms) | fhir2kos / dcmjs | readKos alone (ms) | writeKos alone (ms) |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.refs.toLocaleString('en')} | ${r.kosBytes.toLocaleString('en')} | ${r.jsonBytes.toLocaleString('en')} | ${f(r.dcmjs)} | ${f(r.k2f)} | ${ratio(r.k2f, r.dcmjs)} | ${f(r.dcmjsOut)} | ${f(r.f2k)} | ${ratio(r.f2k, r.dcmjsOut)} | ${f(r.readOnly)} | ${f(r.writeOnly)} |`),
  '',
  `Load average (1/5/15 min) at the start: ${loadStart}; at the end: ${load()} (2-core VM shared with other sessions' test suites: expect run-to-run noise).`,
  '',
];
writeResults('results-convert.md', md.join('\n'));
const key = (r: Row) => (r.refs >= 1000 ? `${r.refs / 1000}k` : String(r.refs));
console.log(`RESULT ${rows.map((r) => `kos2fhir_ratio_${key(r)}=${(r.k2f / r.dcmjs).toFixed(3)} fhir2kos_ratio_${key(r)}=${(r.f2k / r.dcmjsOut).toFixed(3)}`).join(' ')} runs=${RUNS} load_start=${loadStart.split(' ')[0]} load_end=${load().split(' ')[0]}`);
