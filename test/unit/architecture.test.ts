/**
 * Module boundaries (docs/ARCHITECTURE.md): each heavy dependency lives behind one module.
 * - dcmjs only under src/dicom/
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

test('dcmjs is imported only under src/dicom/', () => {
  const offenders = files(SRC).filter((f) => !rel(f).startsWith('dicom/') && imports(f).some((i) => i === 'dcmjs' || i.startsWith('dcmjs/')));
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
