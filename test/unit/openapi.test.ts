/**
 * openapi.yaml stays true to the code: every interaction the FHIR registry declares (the source
 * of the CapabilityStatement) has its OpenAPI operation, and the document parses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { systemInteractions } from '../../src/fhir/capability.js';
import { resourceRegistry } from '../../src/fhir/registry.js';
import { registerAll } from '../../scripts/gen-conformance.js';

const doc = parse(readFileSync(path.resolve(import.meta.dirname, '../../openapi.yaml'), 'utf8')) as { openapi: string; paths: Record<string, Record<string, unknown>> };

test('openapi.yaml declares every FHIR interaction of the registry', () => {
  registerAll(); // feature modules register their capabilities when mounted (no I/O)
  assert.match(doc.openapi, /^3\./);
  assert.ok(resourceRegistry.length >= 8, 'registry is populated');
  const missing: string[] = [];
  const need = (p: string, m: string) => {
    if (!doc.paths[p]?.[m]) missing.push(`${m.toUpperCase()} ${p}`);
  };
  for (const r of resourceRegistry) {
    for (const i of r.interactions) {
      if (i === 'search-type') need(`/fhir/${r.type}`, 'get');
      if (i === 'read') need(`/fhir/${r.type}/{id}`, 'get');
      if (i === 'create') need(`/fhir/${r.type}`, 'post');
      if (i === 'update') need(`/fhir/${r.type}/{id}`, 'put');
      if (i === 'patch') need(`/fhir/${r.type}/{id}`, 'patch');
    }
  }
  if (systemInteractions.includes('transaction')) need('/fhir', 'post');
  need('/fhir/metadata', 'get');
  need('/dicomweb/studies', 'get');
  need('/dicomweb/studies', 'post');
  assert.deepEqual(missing, []);
});

test('openapi.yaml lists every ITI-67 / ITI-66 search parameter of the registry', () => {
  registerAll();
  for (const type of ['DocumentReference', 'List']) {
    const op = doc.paths[`/fhir/${type}`]!.get as { parameters: Array<{ name?: string }> };
    const names = new Set(op.parameters.map((p) => p.name?.split(':')[0]));
    const missing = resourceRegistry.find((r) => r.type === type)!.searchParams.map((p) => p.name).filter((n) => !names.has(n));
    assert.deepEqual(missing, [], type);
  }
});
