/**
 * Shared pieces of the bench scripts: numeric options, medians, the environment line, and the
 * results file. A results file is the bench's markdown followed by a machine-readable block
 * (summary rows and RESULT values); scripts/gen-benchmarks.ts builds BENCHMARKS.md from those
 * blocks, so every figure on that page comes from a run, none is typed by hand.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `--name N` from the command line, else dflt. */
export function numArg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** "min–max" of a sample, each formatted by fmt. */
export function range(xs: readonly number[], fmt: (x: number) => string = String): string {
  return xs.length ? `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}` : '–';
}

/** The 1, 5 and 15 minute load averages, e.g. "0.61 1.30 4.02". */
export function loadNow(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

/** server_version of a PostgreSQL connection: pass a knex instance or a pg Client/Pool. */
export async function pgVersion(db: { raw?: (sql: string) => Promise<unknown>; query?: (sql: string) => Promise<unknown> }): Promise<string> {
  const res = (await (db.raw ? db.raw('SHOW server_version') : db.query!('SHOW server_version'))) as { rows: Array<{ server_version: string }> };
  return res.rows[0]?.server_version ?? 'unknown';
}

/** One line for the top of a results file: date, Node, PostgreSQL/Orthanc when given, CPU, memory, load. */
export function benchHeader(versions: { postgres?: string; orthanc?: string } = {}): string {
  const cpus = os.cpus();
  const parts = [
    new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    `Node ${process.version}`,
    versions.postgres ? `PostgreSQL ${versions.postgres}` : '',
    versions.orthanc ? `Orthanc ${versions.orthanc}` : '',
    `${cpus.length} × ${cpus[0]?.model.trim() ?? 'CPU'}`,
    `${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`,
    `load average at start ${loadNow()}`,
  ];
  return parts.filter(Boolean).join(' · ');
}

/** One row of the BENCHMARKS.md summary table, built from this run's measured numbers. */
export interface SummaryRow {
  issue: string;
  measure: string;
  result: string;
  target: string;
}

export interface BenchOutcome {
  summary: SummaryRow[];
  /** Machine-readable values, printed as the last line: `RESULT k=v …`. */
  result: Record<string, number | string>;
}

const BLOCK_START = '<!-- bench-results';
const BLOCK_END = '-->';

/** `RESULT k=v …` with numbers rounded to 4 significant digits. */
export function resultLine(result: BenchOutcome['result']): string {
  const fmt = (v: number | string): string => (typeof v === 'number' ? String(Number(v.toPrecision(4))) : v.replace(/\s+/g, '_'));
  return `RESULT ${Object.entries(result).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`;
}

/**
 * Write bench/<file> (or the path after --out): the markdown, the RESULT line, and the
 * machine-readable block; print the markdown, then the RESULT line as the very last line.
 */
export function finishBench(file: string, md: string, outcome: BenchOutcome): void {
  const line = resultLine(outcome.result);
  const text = `${md.trimEnd()}\n\n\`${line}\`\n\n${BLOCK_START}\n${JSON.stringify(outcome, null, 1)}\n${BLOCK_END}\n`;
  const outIdx = process.argv.indexOf('--out');
  fs.writeFileSync(outIdx === -1 ? path.join(import.meta.dirname, '..', file) : path.resolve(process.argv[outIdx + 1]!), text);
  process.stdout.write(`${md.trimEnd()}\n`);
  process.stdout.write(`${line}\n`);
}

/** The block finishBench wrote into a results file, or undefined for an older file. */
export function readOutcome(text: string): BenchOutcome | undefined {
  const i = text.lastIndexOf(BLOCK_START);
  if (i === -1) return undefined;
  const j = text.indexOf(BLOCK_END, i);
  return JSON.parse(text.slice(i + BLOCK_START.length, j)) as BenchOutcome;
}

/** Write a results file without a summary block (kept for benches not yet on finishBench). */
export function writeResults(name: string, md: string): void {
  const outIdx = process.argv.indexOf('--out');
  fs.writeFileSync(outIdx === -1 ? path.join(import.meta.dirname, '..', name) : path.resolve(process.argv[outIdx + 1]!), md);
  process.stdout.write(md);
}
