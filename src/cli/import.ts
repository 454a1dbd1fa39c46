/**
 * `mado-gateway import PATH… --url BASE [--token TOKEN] [--concurrency N]` (contract "Command line"):
 * bulk-ingests files and folders into a running gateway through the same HTTP paths any client uses
 * (one ingest service behind them): KOS (`.dcm`, or "DICM" at offset 128) → POST /fhir/Binary,
 * FHIR manifests (`.json`) → POST /fhir/Bundle. Progress bar on stderr when it is a TTY, plain lines
 * otherwise; a summary (ok / duplicate / replaced / failed with reasons) on stdout.
 * Exit codes: 0 all ok or duplicate, 1 some input invalid, 2 usage, 3 gateway unreachable (or
 * refusing our credentials).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

const USAGE = `usage: mado-gateway import PATH... --url BASE [--token TOKEN] [--concurrency N]

  PATH             files or folders (walked recursively): *.dcm / DICOM Part 10 → KOS, *.json → FHIR manifest
  --url BASE       gateway base URL, e.g. http://127.0.0.1:8080 (a trailing /fhir is accepted)
  --token TOKEN    bearer token sent as Authorization (or MADO_TOKEN in the environment)
  --concurrency N  parallel uploads (default 4, 1–64)
`;

export interface ImportOptions {
  paths: string[];
  url: string;
  token?: string;
  concurrency: number;
}

type Outcome = 'ok' | 'duplicate' | 'replaced' | 'rejection' | 'failed' | 'skipped';

interface FileResult {
  file: string;
  outcome: Outcome;
  reason?: string;
}

class UsageError extends Error {}
class Unreachable extends Error {}

export function parseImportArgs(argv: string[], env: Record<string, string | undefined> = process.env): ImportOptions {
  const paths: string[] = [];
  let url: string | undefined;
  let token = env.MADO_TOKEN || undefined;
  let concurrency = 4;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (name: string): string => {
      const eq = a.indexOf('=');
      if (eq !== -1) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (a === '--url' || a.startsWith('--url=')) url = value('--url');
    else if (a === '--token' || a.startsWith('--token=')) token = value('--token');
    else if (a === '--concurrency' || a.startsWith('--concurrency=')) {
      concurrency = Number(value('--concurrency'));
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency must be an integer between 1 and 64');
    } else if (a === '--help' || a === '-h') throw new UsageError('');
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else paths.push(a);
  }
  if (!paths.length) throw new UsageError('no PATH given');
  if (!url) throw new UsageError('--url is required');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--url "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError('--url must be http(s)');
  return { paths, url: url.replace(/\/+$/, '').replace(/\/fhir$/, ''), token, concurrency };
}

async function* walk(p: string): AsyncGenerator<{ file: string; error?: string }> {
  let st;
  try {
    st = await fs.stat(p);
  } catch {
    yield { file: p, error: 'not found' };
    return;
  }
  if (st.isDirectory()) {
    const names = (await fs.readdir(p)).sort();
    for (const n of names) {
      if (n.startsWith('.')) continue;
      yield* walk(path.join(p, n));
    }
  } else if (st.isFile()) yield { file: p };
}

function kindOf(file: string, head: Buffer): 'kos' | 'fhir' | undefined {
  if (head.length >= 132 && head.toString('latin1', 128, 132) === 'DICM') return 'kos';
  const ext = path.extname(file).toLowerCase();
  if (ext === '.dcm' || ext === '.dicom') return 'kos';
  if (ext === '.json') return 'fhir';
  return undefined;
}

function reasonOf(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as { issue?: Array<{ details?: { text?: string; coding?: Array<{ code?: string }> } }> };
    const i = j.issue?.[0];
    const code = i?.details?.coding?.[0]?.code;
    if (i?.details?.text) return `${status}${code ? ` ${code}` : ''}: ${i.details.text}`;
  } catch {
    /* not JSON */
  }
  return `HTTP ${status}`;
}

async function send(o: ImportOptions, file: string): Promise<FileResult> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    return { file, outcome: 'failed', reason: 'cannot read file' };
  }
  const kind = kindOf(file, bytes.subarray(0, 132));
  if (!kind) return { file, outcome: 'skipped', reason: 'neither DICOM nor .json' };
  const headers: Record<string, string> = { 'Content-Type': kind === 'kos' ? 'application/dicom' : 'application/fhir+json', Accept: 'application/fhir+json' };
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  let res: Response;
  try {
    res = await fetch(`${o.url}/fhir/${kind === 'kos' ? 'Binary' : 'Bundle'}`, { method: 'POST', headers, body: new Uint8Array(bytes) });
  } catch (err) {
    throw new Unreachable(`cannot reach the gateway at ${o.url} (${(err as { cause?: { code?: string } })?.cause?.code ?? (err as Error).message})`);
  }
  const body = await res.text();
  if (res.status === 401 || res.status === 403) throw new Unreachable(`the gateway refused the request (${res.status}); check --token`);
  if (res.status >= 500) return { file, outcome: 'failed', reason: reasonOf(res.status, body) };
  if (res.status >= 400) return { file, outcome: 'failed', reason: reasonOf(res.status, body) };
  const r = res.headers.get('x-ingest-result');
  if (r === 'duplicate') return { file, outcome: 'duplicate' };
  if (r === 'replaced') return { file, outcome: 'replaced' };
  if (r === 'rejection-applied') return { file, outcome: 'rejection' };
  return { file, outcome: 'ok' };
}

class Progress {
  private last = 0;
  constructor(private readonly tty: boolean, private readonly out: NodeJS.WriteStream) {}
  update(done: number, total: number | undefined, counts: Record<Outcome, number>, r?: FileResult): void {
    if (!this.tty) {
      if (r) this.out.write(`${r.outcome.padEnd(9)} ${r.file}${r.reason ? ` — ${r.reason}` : ''}\n`);
      return;
    }
    const now = Date.now();
    if (now - this.last < 80 && done !== total) return;
    this.last = now;
    const width = 30;
    const frac = total ? Math.min(1, done / total) : 0;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    this.out.write(`\r[${bar}] ${done}/${total ?? '?'}  ok ${counts.ok + counts.replaced + counts.rejection}  dup ${counts.duplicate}  failed ${counts.failed}  `);
  }
  end(): void {
    if (this.tty) this.out.write('\n');
  }
}

export async function runImport(argv: string[] = []): Promise<number> {
  let o: ImportOptions;
  try {
    o = parseImportArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`mado-gateway import: ${err.message}\n`);
      process.stderr.write(USAGE);
      return 2;
    }
    throw err;
  }
  // Reachability first: exit 3 before reading a single file when the gateway is down.
  try {
    await fetch(`${o.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    process.stderr.write(`mado-gateway import: cannot reach the gateway at ${o.url} (${(err as { cause?: { code?: string } })?.cause?.code ?? (err as Error).name})\n`);
    return 3;
  }
  const files: string[] = [];
  const results: FileResult[] = [];
  for (const p of o.paths) for await (const f of walk(p)) {
    if (f.error) results.push({ file: f.file, outcome: 'failed', reason: f.error });
    else files.push(f.file);
  }
  const counts: Record<Outcome, number> = { ok: 0, duplicate: 0, replaced: 0, rejection: 0, failed: 0, skipped: 0 };
  for (const r of results) counts[r.outcome]++;
  const progress = new Progress(Boolean(process.stderr.isTTY), process.stderr);
  let next = 0;
  let done = 0;
  let unreachable: string | undefined;
  const worker = async () => {
    while (!unreachable && next < files.length) {
      const file = files[next++]!;
      try {
        const r = await send(o, file);
        results.push(r);
        counts[r.outcome]++;
        done++;
        progress.update(done, files.length, counts, r);
      } catch (err) {
        if (err instanceof Unreachable) unreachable = err.message;
        else throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, files.length)) }, worker));
  progress.end();

  const out = process.stdout;
  out.write(`imported: ${counts.ok} ok, ${counts.duplicate} duplicate, ${counts.replaced} replaced, ${counts.rejection} rejection note(s) applied, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  const failed = results.filter((r) => r.outcome === 'failed');
  if (failed.length) {
    out.write('failed:\n');
    for (const f of failed) out.write(`  ${f.file}: ${f.reason}\n`);
  }
  const skipped = results.filter((r) => r.outcome === 'skipped');
  if (skipped.length) {
    out.write('skipped:\n');
    for (const f of skipped) out.write(`  ${f.file}: ${f.reason}\n`);
  }
  if (unreachable) {
    process.stderr.write(`mado-gateway import: ${unreachable}; ${files.length - done} file(s) not sent\n`);
    return 3;
  }
  return failed.length ? 1 : 0;
}
