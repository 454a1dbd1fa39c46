/**
 * KOS codec benchmark: our reader (parse + validate + model) vs bare dcmjs
 * DicomMessage.readFile + naturalizeDataset on the same bytes; our writer vs bare dcmjs
 * denaturalizeDataset + DicomDict.write. Medians (and ranges) of interleaved runs after warm-up.
 * Sizes: the typical ingest manifest (3 series × 100, as bench/ingest.ts), 1k and 20k references.
 * Small sizes repeat each operation REPS times inside one timed run (per-call time reported).
 * Writes bench/results-kos.md (finishBench); last line `RESULT kos.read/dcmjs.1k=… …`.
 * Run: npm run bench:kos [-- --runs 5 --runs-20k 3]  (--max-refs 1000 --out FILE: a quick check)
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import dcmjs from 'dcmjs';
import { readKos, syntheticManifest, writeKos } from '../src/dicom/index.js';
import { benchHeader, finishBench, loadNow, median, numArg, range, type SummaryRow } from './lib/report.js';

dcmjs.log.setLevel('error'); // never print values (decisions.md D47)
const { DicomMessage, DicomMetaDictionary, DicomDict } = dcmjs.data;

const RUNS = Math.max(3, numArg('runs', 5));
/** 20k references: one dcmjs write takes tens of seconds, so fewer runs and one warm-up */
const RUNS_20K = Math.max(3, numArg('runs-20k', 3));
// A full GC before each timed operation (outside the timing): otherwise the garbage dcmjs leaves
// (gigabytes at 20k references) is collected during whichever operation runs next. 'regular':
// plain gc() is a memory-reducing GC that also flushes compiled code, and the next calls then run
// interpreted (measured: a 1k-reference read 5x slower for several calls).
v8.setFlagsFromString('--expose-gc');
const gcFn = vm.runInNewContext('gc') as (o: object) => void;
const gc = (): void => gcFn({ type: 'major', execution: 'sync', flavor: 'regular' });
const header = benchHeader();

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

function ab(b: Uint8Array): ArrayBuffer { return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer; }

/** Per-call ms of `fn` (run `reps` times on inputs made before the timing), after a full GC. */
function timed<T>(inputs: T[], fn: (x: T) => void): number {
  gc();
  const t = performance.now();
  for (const x of inputs) fn(x);
  return (performance.now() - t) / inputs.length;
}

interface Row { refs: number; bytes: number; op: 'read' | 'write'; ours: number[]; dcmjs: number[]; runs: number }

/** One size: RUNS interleaved runs of our read, dcmjs read, our write, dcmjs write. */
function measureSize(series: number, per: number, reps: number): Row[] {
  const m = syntheticManifest({ series, instancesPerSeries: per, seed: `bench-${series}x${per}` });
  const refs = series * per;
  const bytes = writeKos(m);
  // dcmjs inputs prepared outside the timed region
  const nat = DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(ab(bytes)).dict);
  const metaNat = { FileMetaInformationVersion: new Uint8Array([0, 1]).buffer, MediaStorageSOPClassUID: nat.SOPClassUID,
    MediaStorageSOPInstanceUID: nat.SOPInstanceUID, TransferSyntaxUID: '1.2.840.10008.1.2.1', ImplementationClassUID: '2.25.1' };
  const [runs, warmup] = refs >= 10_000 ? [RUNS_20K, 1] : [RUNS, 2];
  process.stderr.write(`bench ${refs} refs, ${bytes.length} bytes\n`);
  const t = { readOurs: [] as number[], readTheirs: [] as number[], writeOurs: [] as number[], writeTheirs: [] as number[] };
  const n = Array.from({ length: reps }, (_, k) => k);
  for (let i = 0; i < warmup + runs; i++) {
    const r = {
      readOurs: timed(n, () => {
        const x = readKos(bytes, { maxReferences: 100_000 });
        if (!x.manifest || x.issues.some((y) => y.severity === 'error')) throw new Error('bench manifest did not read cleanly');
      }),
      // dcmjs needs its own ArrayBuffer; copying is outside the timing
      readTheirs: timed(n.map(() => ab(bytes)), (copy) => DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(copy).dict)),
      writeOurs: timed(n, () => {
        if (writeKos(m).length !== bytes.length) throw new Error('writer not deterministic');
      }),
      // dcmjs mutates its input: a fresh deep copy per call, made outside the timing
      writeTheirs: timed(n.map(() => [deepCopy(nat), { ...metaNat, FileMetaInformationVersion: new Uint8Array([0, 1]).buffer }] as const), ([natCopy, metaCopy]) => {
        const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(metaCopy));
        dict.dict = DicomMetaDictionary.denaturalizeDataset(natCopy);
        dict.write();
      }),
    };
    if (i >= warmup) for (const k of Object.keys(t) as Array<keyof typeof t>) t[k].push(r[k]);
    process.stderr.write(`  run ${i}: ours read ${r.readOurs.toFixed(2)} / dcmjs ${r.readTheirs.toFixed(1)} ms; ours write ${r.writeOurs.toFixed(2)} / dcmjs ${r.writeTheirs.toFixed(1)} ms\n`);
  }
  return [
    { refs, bytes: bytes.length, op: 'read', ours: t.readOurs, dcmjs: t.readTheirs, runs },
    { refs, bytes: bytes.length, op: 'write', ours: t.writeOurs, dcmjs: t.writeTheirs, runs },
  ];
}

const OP = {
  read: { label: 'read (parse + validate + model) vs dcmjs readFile + naturalizeDataset', target: 1.3 },
  write: { label: 'write (model → Part 10) vs dcmjs denaturalizeDataset + DicomDict.write', target: 1.5 },
};
const MAX_REFS = numArg('max-refs', 20_000); // a quick check of the script: --max-refs 1000 --out /tmp/x.md
const rows = ([[3, 100, 20], [10, 100, 5], [40, 500, 1]] as const).filter(([s, p]) => s * p <= MAX_REFS).flatMap(([series, per, reps]) => measureSize(series, per, reps));
const mbs = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1e3)).toFixed(1);
const ms = (x: number) => x.toFixed(x < 10 ? 2 : 1);
const ratio = (r: Row) => median(r.ours) / median(r.dcmjs);
const md = `# KOS codec benchmark (\`npm run bench:kos\`)

${header} · dcmjs 0.51.1

Medians of ${RUNS} interleaved runs after 2 warm-ups (20,000 references: ${RUNS_20K} runs after 1), ranges over the runs.
Times are per call: 300 and 1,000 references repeat each operation 20 and 5 times within a run. A full GC runs before
each timed operation (untimed). Load average at the end: ${loadNow()} (2 cores shared with other sessions' work).

| references | KOS size | operation | ours ms | range | ours MB/s | dcmjs ms | range | dcmjs MB/s | ours / dcmjs | target |
|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.map((r) => `| ${r.refs.toLocaleString('en')} | ${(r.bytes / 1e6).toFixed(2)} MB | ${OP[r.op].label} | ${ms(median(r.ours))} | ${range(r.ours, ms)} | ${mbs(r.bytes, median(r.ours))} | ${median(r.dcmjs).toFixed(1)} | ${range(r.dcmjs, (x) => x.toFixed(1))} | ${mbs(r.bytes, median(r.dcmjs))} | ${ratio(r).toFixed(3)}× | ≤ ${OP[r.op].target}× |`).join('\n')}

Command: \`npm run bench:kos -- --runs ${RUNS} --runs-20k ${RUNS_20K}\`
`;
const big = rows.filter((r) => r.refs >= 1000);
const key = (r: Row) => `kos.${r.op}/dcmjs.${r.refs / 1000}k`;
const summary: SummaryRow[] = big.map((r) => ({
  issue: '3',
  measure: `KOS ${r.op} ${r.refs.toLocaleString('en')} references ÷ dcmjs ${r.op === 'read' ? 'readFile + naturalizeDataset' : 'denaturalizeDataset + write'}`,
  result: `${ratio(r).toFixed(3)}× (${ms(median(r.ours))} ms vs ${median(r.dcmjs).toFixed(0)} ms)`,
  target: `≤ ${OP[r.op].target}×`,
}));
finishBench('results-kos.md', md, { summary, result: Object.fromEntries(big.map((r) => [key(r), +ratio(r).toFixed(4)])) });
