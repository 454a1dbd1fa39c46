/**
 * KOS codec benchmark: our reader (parse + validate + model) vs bare dcmjs
 * DicomMessage.readFile + naturalizeDataset on the same bytes; our writer vs bare dcmjs
 * denaturalizeDataset + DicomDict.write. Median of RUNS interleaved runs after warm-up.
 * Sizes: the typical ingest manifest (3 series × 100, as bench/ingest.ts), 1k and 20k references.
 * Small sizes repeat each operation REPS times inside one timed run (per-call time reported).
 * Run: npm run bench:kos   → prints a markdown table and writes bench/results-kos.md
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { readKos, syntheticManifest, writeKos } from '../src/dicom/index.js';

dcmjs.log.setLevel('error'); // never print values (decisions.md D47)
const { DicomMessage, DicomMetaDictionary, DicomDict } = dcmjs.data;

const RUNS = Math.max(7, Number(process.env.RUNS ?? 7));
const WARMUP = 2;
// A full GC before each timed operation (outside the timing): otherwise the garbage dcmjs leaves
// (gigabytes at 20k references) is collected during whichever operation runs next. 'regular':
// plain gc() is a memory-reducing GC that also flushes compiled code, and the next calls then run
// interpreted (measured: a 1k-reference read 5x slower for several calls).
v8.setFlagsFromString('--expose-gc');
const gcFn = vm.runInNewContext('gc') as (o: object) => void;
const gc = (): void => gcFn({ type: 'major', execution: 'sync', flavor: 'regular' });
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
const loadStart = load();

function deepCopy<T>(v: T): T {
  if (Array.isArray(v)) return v.map(deepCopy) as T;
  if (v instanceof ArrayBuffer) return v.slice(0) as T;
  if (ArrayBuffer.isView(v)) return (v as unknown as Uint8Array).slice() as T;
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = deepCopy(x);
    return o as T;
  }
  return v;
}

function median(a: number[]): number { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]!; }
function ab(b: Uint8Array): ArrayBuffer { return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer; }

interface Row { refs: number; bytes: number; op: string; ours: number; dcmjs: number }
const rows: Row[] = [];

for (const [series, per, reps] of [[3, 100, 20], [10, 100, 5], [40, 500, 1]] as const) {
  const m = syntheticManifest({ series, instancesPerSeries: per, seed: `bench-${series}x${per}` });
  const refs = series * per;
  const bytes = writeKos(m);
  // dcmjs inputs prepared outside the timed region
  const nat = DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(ab(bytes)).dict);
  const metaNat = { FileMetaInformationVersion: new Uint8Array([0, 1]).buffer, MediaStorageSOPClassUID: nat.SOPClassUID,
    MediaStorageSOPInstanceUID: nat.SOPInstanceUID, TransferSyntaxUID: '1.2.840.10008.1.2.1', ImplementationClassUID: '2.25.1' };

  process.stderr.write(`bench ${refs} refs, ${bytes.length} bytes\n`);
  const readOurs: number[] = [], readTheirs: number[] = [], writeOurs: number[] = [], writeTheirs: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const keep = i >= WARMUP;
    gc();
    let t = performance.now();
    for (let k = 0; k < reps; k++) {
      const r = readKos(bytes, { maxReferences: 100_000 });
      if (!r.manifest || r.issues.some((x) => x.severity === 'error')) throw new Error('bench manifest did not read cleanly');
    }
    let dt = (performance.now() - t) / reps;
    if (keep) readOurs.push(dt);

    const copies = Array.from({ length: reps }, () => ab(bytes)); // dcmjs needs its own ArrayBuffer; copying is outside the timing
    gc();
    t = performance.now();
    for (const copy of copies) {
      const d = DicomMessage.readFile(copy);
      DicomMetaDictionary.naturalizeDataset(d.dict);
    }
    dt = (performance.now() - t) / reps;
    if (keep) readTheirs.push(dt);

    gc();
    t = performance.now();
    for (let k = 0; k < reps; k++) {
      const out = writeKos(m);
      if (out.length !== bytes.length) throw new Error('writer not deterministic');
    }
    dt = (performance.now() - t) / reps;
    if (keep) writeOurs.push(dt);

    // dcmjs mutates its input: a fresh deep copy per call, made outside the timing
    const inputs = Array.from({ length: reps }, () => [deepCopy(nat), { ...metaNat, FileMetaInformationVersion: new Uint8Array([0, 1]).buffer }] as const);
    gc();
    t = performance.now();
    for (const [natCopy, metaCopy] of inputs) {
      const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(metaCopy));
      dict.dict = DicomMetaDictionary.denaturalizeDataset(natCopy);
      dict.write();
    }
    dt = (performance.now() - t) / reps;
    if (keep) writeTheirs.push(dt);
    process.stderr.write(`  run ${i}: ours read ${readOurs.at(-1)?.toFixed(2)} / dcmjs ${readTheirs.at(-1)?.toFixed(1)} ms; ours write ${writeOurs.at(-1)?.toFixed(2)} / dcmjs ${writeTheirs.at(-1)?.toFixed(1)} ms\n`);
  }
  rows.push({ refs, bytes: bytes.length, op: 'read (parse + validate + model) vs dcmjs readFile + naturalizeDataset', ours: median(readOurs), dcmjs: median(readTheirs) });
  rows.push({ refs, bytes: bytes.length, op: 'write (model → Part 10) vs dcmjs denaturalizeDataset + DicomDict.write', ours: median(writeOurs), dcmjs: median(writeTheirs) });
}

const mbs = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1e3)).toFixed(1);
const lines = [
  `KOS codec benchmark — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${RUNS} interleaved runs (median) after ${WARMUP} warm-up, dcmjs 0.51.1.`,
  'Times are per call: 300 and 1,000 references repeat each operation 20 and 5 times within a run. A full GC runs before each timed operation (untimed).',
  '',
  '| references | KOS size | operation | ours ms | ours MB/s | dcmjs ms | dcmjs MB/s | ours / dcmjs | target |',
  '|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.refs.toLocaleString('en')} | ${(r.bytes / 1e6).toFixed(2)} MB | ${r.op} | ${r.ours.toFixed(r.ours < 10 ? 2 : 1)} | ${mbs(r.bytes, r.ours)} | ${r.dcmjs.toFixed(1)} | ${mbs(r.bytes, r.dcmjs)} | ${(r.ours / r.dcmjs).toFixed(3)}× | ${r.op.startsWith('read') ? '≤ 1.3×' : '≤ 1.5×'} |`),
  '',
];
lines.push(`Load average at the start: ${loadStart}; at the end: ${load()} (2-core VM shared with other sessions).`, '');
const md = lines.join('\n');
console.log(md);
writeFileSync(join(import.meta.dirname, 'results-kos.md'), md);
