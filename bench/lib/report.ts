/** Shared pieces of the bench scripts: numeric options, medians, and writing the results file. */
import fs from 'node:fs';
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

/** Write a results file (bench/<name>, or the path after --out) and print it. */
export function writeResults(name: string, md: string): void {
  const outIdx = process.argv.indexOf('--out');
  fs.writeFileSync(outIdx === -1 ? path.join(import.meta.dirname, '..', name) : path.resolve(process.argv[outIdx + 1]!), md);
  process.stdout.write(md);
}
