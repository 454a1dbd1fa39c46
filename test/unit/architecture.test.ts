/**
 * Module boundaries (docs/ARCHITECTURE.md): each heavy dependency lives behind one module.
 * - dcmjs not at all (dev dependency for the benches)
 * - knex / pg only under src/store/ (and src/server.ts types)
 * - src/fhir/mapping and src/dicom (pure mapping/codec) import neither express nor knex nor pg
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
