/**
 * `mado-gateway publish --url BASE (--study UID… | --since YYYYMMDD | --all) [--upstream NAME]
 * [--token TOKEN] [--concurrency N]`: asks a running gateway to build and publish the MADO
 * manifests of studies in its upstream (POST /fhir/ImagingStudy/$publish, one study per call).
 * --since / --all first ask the same operation for the upstream's study list. Progress bar on
 * stderr when it is a terminal, one line per study otherwise; a summary on stdout.
 * Exit codes: 0 nothing failed, 1 some study refused (cannot make a valid manifest, not found),
 * 2 usage, 3 gateway unreachable / refusing our credentials / failing.
 */

const USAGE = `usage: mado-gateway publish --url BASE (--study UID... | --since YYYYMMDD | --all) [--upstream NAME] [--concurrency N]

  --url BASE         gateway base URL, e.g. http://127.0.0.1:8080 (a trailing /fhir is accepted)
  --study UID...     Study Instance UIDs to publish
  --since YYYYMMDD   every study of the upstream with a StudyDate from that day on
  --all              every study of the upstream
  --upstream NAME    configured upstream (default: the gateway's default upstream)
  --token TOKEN      bearer token sent as Authorization (or MADO_TOKEN in the environment)
  --concurrency N    studies published in parallel (default 4, 1–64)
`;

export interface PublishOptions {
  url: string;
  studies: string[];
  since?: string;
  all: boolean;
  upstream?: string;
  token?: string;
  concurrency: number;
}

type Outcome = 'created' | 'replaced' | 'unchanged' | 'refused' | 'failed';

interface StudyResult {
  study: string;
  outcome: Outcome;
  reason?: string;
}

class UsageError extends Error {}
class Unreachable extends Error {}

function optionValue(argv: string[], i: number, name: string): { v: string; i: number } {
  const a = argv[i]!;
  const eq = a.indexOf('=');
  if (eq !== -1) return { v: a.slice(eq + 1), i };
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return { v, i: i + 1 };
}

export function parsePublishArgs(argv: string[], env: Record<string, string | undefined> = process.env): PublishOptions {
  const o: PublishOptions = { url: '', studies: [], all: false, token: env.MADO_TOKEN || undefined, concurrency: 4 };
  let studyMode = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.split('=')[0]!;
    const take = () => { const r = optionValue(argv, i, name); i = r.i; return r.v; };
    if (name === '--url') o.url = take();
    else if (name === '--study') { studyMode = true; if (a.includes('=')) o.studies.push(take()); }
    else if (name === '--since') o.since = take();
    else if (name === '--all') o.all = true;
    else if (name === '--upstream') o.upstream = take();
    else if (name === '--token') o.token = take();
    else if (name === '--concurrency') {
      o.concurrency = Number(take());
      if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 64) throw new UsageError('--concurrency must be an integer between 1 and 64');
    } else if (a === '--help' || a === '-h') throw new UsageError('');
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else if (studyMode) o.studies.push(a);
    else throw new UsageError(`unexpected argument "${a}"`);
  }
  if (!o.url) throw new UsageError('--url is required');
  try {
    const u = new URL(o.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError('--url must be http(s)');
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError(`--url "${o.url}" is not a URL`);
  }
  o.url = o.url.replace(/\/+$/, '').replace(/\/fhir$/, '');
  const modes = [o.studies.length > 0 || studyMode, o.since !== undefined, o.all].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('give exactly one of --study UID..., --since YYYYMMDD, --all');
  if (studyMode && !o.studies.length) throw new UsageError('--study needs at least one Study Instance UID');
  if (o.since !== undefined && !/^\d{8}$/.test(o.since)) throw new UsageError('--since must be a date YYYYMMDD');
  return o;
}

function reasonOf(status: number, body: string): string {
  try {
    const i = (JSON.parse(body) as { issue?: Array<{ details?: { text?: string; coding?: Array<{ code?: string }> } }> }).issue?.[0];
    const code = i?.details?.coding?.[0]?.code;
    if (i?.details?.text) return `${status}${code ? ` ${code}` : ''}: ${i.details.text}`;
  } catch {
    /* not JSON */
  }
  return `HTTP ${status}`;
}

/** POST $publish with the given parameters; throws Unreachable when the gateway cannot serve it. */
async function call(o: PublishOptions, parameter: Array<Record<string, unknown>>): Promise<{ status: number; body: string; result: string | null }> {
  const headers: Record<string, string> = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.upstream) parameter = [...parameter, { name: 'upstream', valueString: o.upstream }];
  let res: Response;
  try {
    res = await fetch(`${o.url}/fhir/ImagingStudy/$publish`, { method: 'POST', headers, body: JSON.stringify({ resourceType: 'Parameters', parameter }) });
  } catch (err) {
    throw new Unreachable(`cannot reach the gateway at ${o.url} (${(err as { cause?: { code?: string } })?.cause?.code ?? (err as Error).message})`);
  }
  const body = await res.text();
  if (res.status === 401 || res.status === 403) throw new Unreachable(`the gateway refused the request (${res.status}); check --token`);
  return { status: res.status, body, result: res.headers.get('x-publish-result') };
}

async function publishOne(o: PublishOptions, study: string): Promise<StudyResult> {
  const r = await call(o, [{ name: 'study', valueString: study }]);
  if (r.status === 200 || r.status === 201) return { study, outcome: (r.result as Outcome | null) ?? (r.status === 201 ? 'created' : 'unchanged') };
  if (r.status === 404 || r.status === 422 || r.status === 400) return { study, outcome: 'refused', reason: reasonOf(r.status, r.body) };
  return { study, outcome: 'failed', reason: reasonOf(r.status, r.body) };
}

async function listStudies(o: PublishOptions): Promise<string[]> {
  const r = await call(o, o.all ? [{ name: 'all', valueBoolean: true }] : [{ name: 'since', valueString: o.since }]);
  if (r.status !== 200) throw new Unreachable(`the gateway could not list the upstream's studies: ${reasonOf(r.status, r.body)}`);
  const p = JSON.parse(r.body) as { parameter?: Array<{ name?: string; valueString?: string }> };
  return (p.parameter ?? []).filter((x) => x.name === 'study' && x.valueString).map((x) => x.valueString!);
}

class Progress {
  private last = 0;
  constructor(private readonly tty: boolean, private readonly out: NodeJS.WriteStream) {}
  update(done: number, total: number, counts: Record<Outcome, number>, r: StudyResult): void {
    if (!this.tty) {
      this.out.write(`${r.outcome.padEnd(9)} ${r.study}${r.reason ? ` — ${r.reason}` : ''}\n`);
      return;
    }
    const now = Date.now();
    if (now - this.last < 80 && done !== total) return;
    this.last = now;
    const width = 30;
    const bar = '#'.repeat(Math.round((total ? done / total : 1) * width)).padEnd(width, '.');
    this.out.write(`\r[${bar}] ${done}/${total}  created ${counts.created + counts.replaced}  unchanged ${counts.unchanged}  refused ${counts.refused}  failed ${counts.failed}  `);
  }
  end(): void {
    if (this.tty) this.out.write('\n');
  }
}

async function publishAll(o: PublishOptions, studies: string[]): Promise<{ results: StudyResult[]; counts: Record<Outcome, number>; unreachable?: string }> {
  const counts: Record<Outcome, number> = { created: 0, replaced: 0, unchanged: 0, refused: 0, failed: 0 };
  const results: StudyResult[] = [];
  const progress = new Progress(Boolean(process.stderr.isTTY), process.stderr);
  let next = 0;
  let unreachable: string | undefined;
  const worker = async () => {
    while (!unreachable && next < studies.length) {
      const study = studies[next++]!;
      try {
        const r = await publishOne(o, study);
        results.push(r);
        counts[r.outcome]++;
        progress.update(results.length, studies.length, counts, r);
      } catch (err) {
        if (err instanceof Unreachable) unreachable = err.message;
        else throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, studies.length)) }, worker));
  progress.end();
  return { results, counts, unreachable };
}

export async function runPublish(argv: string[] = []): Promise<number> {
  let o: PublishOptions;
  try {
    o = parsePublishArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) process.stderr.write(`mado-gateway publish: ${err.message}\n`);
    process.stderr.write(USAGE);
    return 2;
  }
  try {
    const studies = o.studies.length ? o.studies : await listStudies(o);
    const { results, counts, unreachable } = await publishAll(o, studies);
    const out = process.stdout;
    out.write(`published: ${counts.created} created, ${counts.replaced} replaced, ${counts.unchanged} unchanged, ${counts.refused} refused, ${counts.failed} failed (of ${studies.length})\n`);
    const bad = results.filter((r) => r.outcome === 'refused' || r.outcome === 'failed');
    if (bad.length) {
      out.write('not published:\n');
      for (const r of bad) out.write(`  ${r.study}: ${r.reason}\n`);
    }
    if (unreachable) {
      process.stderr.write(`mado-gateway publish: ${unreachable}; ${studies.length - results.length} study(ies) not published\n`);
      return 3;
    }
    return counts.failed ? 3 : counts.refused ? 1 : 0;
  } catch (err) {
    if (!(err instanceof Unreachable)) throw err;
    process.stderr.write(`mado-gateway publish: ${err.message}\n`);
    return 3;
  }
}
