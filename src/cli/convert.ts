/**
 * CLI converters (contract "Command line"): kos2fhir, fhir2kos, validate.
 * Exit codes: 0 success/valid, 1 invalid input, 2 usage error, 3 runtime failure.
 * Each run* function takes the arguments after the subcommand and an optional IO sink (tests).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { ValidationIssue } from '../model/manifest.js';
import { readKos, writeKos } from '../dicom/index.js';
import { fhirToManifest, issuesToOperationOutcome, kosToFhirLosses, manifestToFhirBundle, toKosWritable } from '../fhir/mapping/index.js';
import { validateFhirResource } from '../fhir/validate.js';

export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  env: Record<string, string | undefined>;
}

const processIo: CliIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  env: process.env,
};

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  options: Record<string, string>;
}

/** `valued` options take a value; `flags` take none (present → options[flag] = 'true'). */
function parseArgs(argv: string[], valued: string[], flags: string[] = []): Parsed {
  const positional: string[] = [];
  const options: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (flags.includes(a)) { options[a] = 'true'; continue; }
    if (a.startsWith('-') && a !== '-') {
      const [k, inline] = a.split(/=(.*)/s, 2) as [string, string | undefined];
      if (!valued.includes(k)) throw new UsageError(`unknown option ${k}`);
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`option ${k} needs a value`);
      options[k] = v;
    } else positional.push(a);
  }
  return { positional, options };
}

/** Config for the converters: environment + GATEWAY_CONFIG; the listener check does not apply to a converter. */
function config(io: CliIo): Readonly<Config> {
  return loadConfig({ ...io.env, HOST: '127.0.0.1' });
}

function issueLines(issues: ValidationIssue[], min: 'error' | 'warning' = 'warning'): string {
  return issues
    .filter((i) => i.severity === 'error' || (min === 'warning' && i.severity === 'warning'))
    .map((i) => `  ${i.severity}: ${i.path ? `${i.path}: ` : ''}${i.message}\n`)
    .join('');
}

async function readInput(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${file}: no such file` : code === 'EISDIR' ? `${file}: is a directory` : `${file}: cannot read (${code ?? (e as Error).message})`);
  }
}

class InputError extends Error {}

async function guard(io: CliIo, usage: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\nusage: ${usage}\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      io.stderr(`configuration error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof InputError) {
      io.stderr(`error: ${e.message}\n`);
      return 1;
    }
    io.stderr(`error: ${(e as Error).message ?? String(e)}\n`);
    return 3;
  }
}

const KOS2FHIR = 'mado-gateway kos2fhir FILE.dcm [--base-url URL] [--lenient]';
const FHIR2KOS = 'mado-gateway fhir2kos FILE.json -o OUT.dcm';
const VALIDATE = 'mado-gateway validate FILE';

/** The issues `validate` reports for a KOS: the reader's, plus "not a manifest" for another KOS kind. */
function kosIssues(r: ReturnType<typeof readKos>): ValidationIssue[] {
  const issues = [...r.issues];
  if (r.kind !== 'manifest' && !issues.some((i) => i.severity === 'error')) issues.push({ severity: 'error', code: 'GW_KOS_NOT_MANIFEST', path: '(0040,A043)', message: `not a MADO manifest (document kind: ${r.kind})` });
  return issues;
}

/** The one verdict on a KOS file that `validate` prints and `kos2fhir` refuses by: accepted, and the issues. */
function kosVerdict(bytes: Uint8Array, cfg: Readonly<Config>): { accepted: boolean; issues: ValidationIssue[] } {
  const issues = kosIssues(readKos(bytes, { maxInflatedBytes: cfg.limits.maxInflatedBytes }));
  return { accepted: !issues.some((i) => i.severity === 'error'), issues };
}

/**
 * `kos2fhir FILE.dcm [--base-url URL] [--lenient]`: prints the MADO FHIR document Bundle. Refuses
 * (exit 1, the OperationOutcome `validate` prints on stdout) what `validate` refuses; with
 * --lenient it converts anyway when a model could be read, the errors reported as warnings.
 */
export function runKos2Fhir(argv: string[], io: CliIo = processIo): Promise<number> {
  return guard(io, KOS2FHIR, async () => {
    const { positional, options } = parseArgs(argv, ['--base-url'], ['--lenient']);
    if (positional.length !== 1) throw new UsageError(positional.length ? 'expected exactly one FILE.dcm' : 'missing FILE.dcm');
    const cfg = config(io);
    const base = options['--base-url'] ?? cfg.publicBaseUrl;
    if (!/^https?:\/\/\S+$/.test(base)) throw new UsageError(`--base-url must be an http(s) URL, got "${base}"`);
    const bytes = await readInput(positional[0]!);
    const r = readKos(bytes, { maxInflatedBytes: cfg.limits.maxInflatedBytes });
    const v = kosVerdict(bytes, cfg);
    let issues = v.issues;
    const errors = issues.filter((i) => i.severity === 'error').length;
    const readable = !!r.manifest && r.kind === 'manifest';
    if ((!v.accepted || !readable) && !(options['--lenient'] && readable)) {
      io.stdout(`${JSON.stringify(issuesToOperationOutcome(issues), null, 2)}\n`);
      const what = readable ? `not a valid MADO manifest (${errors} error${errors > 1 ? 's' : ''}; --lenient converts it anyway)` : `not a readable MADO manifest (${r.kind})`;
      io.stderr(`error: ${positional[0]} is ${what}\n${issueLines(issues, 'error')}`);
      return 1;
    }
    if (errors) issues = issues.map((i) => (i.severity === 'error' ? { ...i, severity: 'warning' as const, message: `${i.message} (--lenient)` } : i));
    const bundle = manifestToFhirBundle(r.manifest!, { publicBaseUrl: base.replace(/\/+$/, ''), defaults: cfg.documentDefaults });
    issues.push(...kosToFhirLosses(r.manifest!));
    const warn = issueLines(issues);
    if (warn) io.stderr(`${positional[0]}:\n${warn}`);
    io.stdout(`${JSON.stringify(bundle, null, 2)}\n`);
    return 0;
  });
}

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new InputError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** `fhir2kos FILE.json -o OUT.dcm`: writes a KOS from a MADO FHIR Bundle or the legacy List form. */
export function runFhir2Kos(argv: string[], io: CliIo = processIo): Promise<number> {
  return guard(io, FHIR2KOS, async () => {
    const { positional, options } = parseArgs(argv, ['-o', '--output']);
    if (positional.length !== 1) throw new UsageError(positional.length ? 'expected exactly one FILE.json' : 'missing FILE.json');
    const out = options['-o'] ?? options['--output'];
    if (!out) throw new UsageError('missing -o OUT.dcm');
    const cfg = config(io);
    const json = parseJson(await readInput(positional[0]!), positional[0]!);
    const r = fhirToManifest(json, { defaultTitle: cfg.documentDefaults.kosTitle });
    if (!r.manifest) {
      io.stderr(`error: ${positional[0]} cannot become a KOS:\n${issueLines(r.issues)}`);
      return 1;
    }
    const w = toKosWritable(r.manifest);
    r.issues.push(...w.issues);
    let bytes: Uint8Array;
    try {
      bytes = writeKos(w.manifest);
    } catch (e) {
      const issues = (e as { issues?: ValidationIssue[] }).issues;
      if (Array.isArray(issues)) {
        io.stderr(`error: ${positional[0]} cannot become a valid KOS:\n${issueLines(issues)}`);
        return 1;
      }
      throw e;
    }
    const warn = issueLines(r.issues);
    if (warn) io.stderr(`${positional[0]}:\n${warn}`);
    try {
      await writeFile(out, bytes);
    } catch (e) {
      throw new Error(`cannot write ${out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return 0;
  });
}

function isPart10(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
}

/** `validate FILE`: KOS or FHIR (auto-detected); prints an OperationOutcome; exit 0 valid, 1 invalid. */
export function runValidate(argv: string[], io: CliIo = processIo): Promise<number> {
  return guard(io, VALIDATE, async () => {
    const { positional } = parseArgs(argv, []);
    if (positional.length !== 1) throw new UsageError(positional.length ? 'expected exactly one FILE' : 'missing FILE');
    const cfg = config(io);
    const bytes = await readInput(positional[0]!);
    let issues: ValidationIssue[];
    const first = bytes.find((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09 && c !== 0xef && c !== 0xbb && c !== 0xbf);
    if (!isPart10(bytes) && (first === 0x7b /* { */ || first === 0x5b)) {
      const json = parseJson(bytes, positional[0]!);
      issues = validateFhirResource(json);
      // Convertibility to a KOS (what fhir2kos would say), for manifest-shaped input.
      const rt = (json as { resourceType?: string })?.resourceType;
      if (rt === 'Bundle' || rt === 'List' || rt === 'ImagingStudy') issues.push(...fhirToManifest(json, { defaultTitle: cfg.documentDefaults.kosTitle }).issues);
    } else {
      issues = kosVerdict(bytes, cfg).issues;
    }
    io.stdout(`${JSON.stringify(issuesToOperationOutcome(issues), null, 2)}\n`);
    const errors = issues.filter((i) => i.severity === 'error').length;
    if (errors) io.stderr(`${positional[0]}: invalid (${errors} error${errors > 1 ? 's' : ''})\n`);
    return errors ? 1 : 0;
  });
}

const COMMANDS: Record<string, (argv: string[], io?: CliIo) => Promise<number>> = { kos2fhir: runKos2Fhir, fhir2kos: runFhir2Kos, validate: runValidate };

// Direct use: node --import tsx src/cli/convert.ts <kos2fhir|fhir2kos|validate> ...
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [cmd, ...rest] = process.argv.slice(2);
  const run = cmd ? COMMANDS[cmd] : undefined;
  if (!run) {
    process.stderr.write(`usage:\n  ${KOS2FHIR}\n  ${FHIR2KOS}\n  ${VALIDATE}\n`);
    process.exitCode = 2;
  } else process.exitCode = await run(rest);
}
