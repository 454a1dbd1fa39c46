/**
 * Module boundaries (docs/ARCHITECTURE.md "Layers"): one direction of dependencies between the
 * folders of src/, no cycles, each heavy dependency behind one module, honest package.json.
 * - dcmjs not at all (dev dependency for the benches)
 * - knex / pg only under src/store/
 * - src/fhir/mapping, src/dicom and src/model (pure mapping/codec) do no HTTP or SQL
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const SRC = path.resolve(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

const rel = (f: string) => path.relative(SRC, f).split(path.sep).join('/');

test('dcmjs (a dev dependency, the bench baseline) is not imported from src/', () => {
  const offenders = files(SRC).filter((f) => imports(f).some((i) => i === 'dcmjs' || i.startsWith('dcmjs/')));
  assert.deepEqual(offenders.map(rel), []);
});

test('knex and pg are imported only under src/store/', () => {
  const offenders = files(SRC).filter((f) => !rel(f).startsWith('store/') && imports(f).some((i) => i === 'knex' || i === 'pg'));
  assert.deepEqual(offenders.map(rel), []);
});

test('pure mapping and codec modules do no HTTP or SQL', () => {
  const pure = files(SRC).filter((f) => rel(f).startsWith('fhir/mapping/') || rel(f).startsWith('dicom/') || rel(f).startsWith('model/'));
  const offenders = pure.filter((f) => imports(f).some((i) => ['express', 'knex', 'pg', 'undici'].includes(i) || /\/store\//.test(i) || /\/http\//.test(i)));
  assert.deepEqual(offenders.map(rel), []);
});

const PKG = JSON.parse(fs.readFileSync(path.resolve(SRC, '../package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
const packageOf = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
const bare = (spec: string) => !spec.startsWith('.') && !spec.startsWith('node:');

/** Bare imports of a file, type imports included (a type-only package is still a dependency). */
function packagesOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g), ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  return specs.filter(bare).map(packageOf);
}

test('every package src/ imports is a (optional) dependency, and every dependency is imported by src/', () => {
  const runtime = new Set([...Object.keys(PKG.dependencies ?? {}), ...Object.keys(PKG.optionalDependencies ?? {})]);
  const used = new Set(files(SRC).flatMap(packagesOf));
  assert.deepEqual([...used].filter((p) => !runtime.has(p)).sort(), [], 'imported but not declared');
  assert.deepEqual([...runtime].filter((p) => !used.has(p)).sort(), [], 'declared but never imported');
});

test('tests, benches and scripts import only declared packages', () => {
  const declared = new Set([...Object.keys(PKG.dependencies ?? {}), ...Object.keys(PKG.optionalDependencies ?? {}), ...Object.keys(PKG.devDependencies ?? {})]);
  const root = path.resolve(SRC, '..');
  const others = ['test', 'bench', 'scripts'].flatMap((d) => files(path.join(root, d)));
  const missing = others.flatMap((f) => packagesOf(f).filter((p) => !declared.has(p)).map((p) => `${path.relative(root, f)}: ${p}`));
  assert.deepEqual(missing, []);
});

/**
 * One direction of dependencies (docs/ARCHITECTURE.md "Layers"): a unit (a folder under src/, or
 * a top-level file) may import only units of a LOWER rank. Type-only imports count: a type is a
 * dependency too. Same-rank units never import each other.
 */
const RANK: Record<string, number> = {
  log: 0,
  model: 0,
  config: 1,
  http: 1,
  dicom: 1,
  'fhir/mapping': 2,
  store: 2,
  deps: 3,
  audit: 3,
  auth: 4,
  fhir: 5,
  dicomweb: 5,
  ui: 5,
  ingest: 6,
  publish: 7,
  modules: 8,
  app: 9,
  server: 10,
  cli: 11,
};

/** The unit a file under src/ belongs to ('fhir/mapping' is its own unit below the rest of fhir/). */
function unitOf(relPath: string): string {
  const parts = relPath.split('/');
  if (parts[0] === 'fhir' && parts[1] === 'mapping') return 'fhir/mapping';
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
}

/** Relative imports of a file, type-only and re-exports included, resolved to paths under src/. */
function localImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g),
    ...text.matchAll(/(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]/g),
    ...text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) => path.relative(SRC, path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts'))).split(path.sep).join('/')).filter((r) => !r.startsWith('..'));
}

function unitEdges(): Array<{ from: string; to: string; file: string; target: string }> {
  return files(SRC).flatMap((f) => localImports(f).map((target) => ({ from: unitOf(rel(f)), to: unitOf(target), file: rel(f), target }))).filter((e) => e.from !== e.to);
}

test('every unit of src/ has a rank', () => {
  const units = new Set(files(SRC).map((f) => unitOf(rel(f))));
  assert.deepEqual([...units].filter((u) => RANK[u] === undefined).sort(), []);
});

test('imports go down the layers only (type imports included)', () => {
  const wrong = unitEdges()
    .filter((e) => !(RANK[e.to]! < RANK[e.from]!))
    .map((e) => `${e.file} imports ${e.target}: ${e.from} (rank ${RANK[e.from]}) may not depend on ${e.to} (rank ${RANK[e.to]})`);
  assert.deepEqual(wrong, []);
});

test('no cycle between units', () => {
  const next = new Map<string, Set<string>>();
  for (const e of unitEdges()) (next.get(e.from) ?? next.set(e.from, new Set()).get(e.from)!).add(e.to);
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (u: string, trail: string[]) => {
    if (state.get(u) === 'done') return;
    if (state.get(u) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(u)), u].join(' → '));
      return;
    }
    state.set(u, 'open');
    for (const v of next.get(u) ?? []) visit(v, [...trail, u]);
    state.set(u, 'done');
  };
  for (const u of next.keys()) visit(u, []);
  assert.deepEqual(cycles, []);
});

test('reasons live in the repository: src/ and migrations/ cite docs/ or the standards, never outside files or issue numbers', () => {
  const root = path.resolve(SRC, '..');
  const all = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? all(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  const bad = /digest|style\.md|toolchain\.md|HELPERS\.md|\.\.\/shared|issue [0-9]/;
  const hits = [...all(SRC), ...all(path.join(root, 'migrations'))].flatMap((f) =>
    fs.readFileSync(f, 'utf8').split('\n').flatMap((line, i) => (bad.test(line) ? [`${path.relative(root, f)}:${i + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(hits, []);
});
