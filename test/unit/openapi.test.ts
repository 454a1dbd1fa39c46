/**
 * openapi.yaml stays true to the code: every interaction the FHIR registry declares (the source
 * of the CapabilityStatement) has its OpenAPI operation, every search operation lists exactly the
 * search parameters the registry supports for its type, and the document parses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { systemInteractions } from '../../src/fhir/capability.js';
import { resourceRegistry, type ResourceDef } from '../../src/fhir/registry.js';
import { PARAMS, SORTS } from '../../src/fhir/search/params.js';
import { registerAll } from '../../scripts/gen-conformance.js';

interface Schema {
  type?: string;
  enum?: unknown[];
  items?: Schema;
}
interface Param {
  $ref?: string;
  name?: string;
  in?: string;
  schema?: Schema;
  description?: string;
}
interface Operation {
  parameters?: Param[];
}
const doc = parse(readFileSync(path.resolve(import.meta.dirname, '../../openapi.yaml'), 'utf8')) as {
  openapi: string;
  paths: Record<string, Record<string, Operation | undefined> | undefined>;
  components: { parameters: Record<string, Param> };
};

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
      if (i === 'search-type') {
        need(`/fhir/${r.type}`, 'get');
        need(`/fhir/${r.type}/_search`, 'post'); // FHIR R4 3.1.1: search by GET and by POST
      }
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

/**
 * Result parameters of the shared search engine (every type in PARAMS, src/fhir/search/params.ts):
 * CONTROL in src/fhir/search/plan.ts, less _sort / _include / _revinclude (listed where the registry
 * declares keys or values for the type) and _pretty (accepted and ignored, not documented).
 */
const ENGINE_RESULT_PARAMS = ['_count', '_total', '_summary', '_elements', '_format', '_cursor'];
/** Types with a search handler of their own: its result parameters (PARAMS in the handler's module). */
const OWN_HANDLER_RESULT_PARAMS: Record<string, string[]> = {
  AuditEvent: ['_count', '_cursor', '_total', '_format', '_summary'], // src/fhir/resources/audit-event.ts
};

/** name → modifiers accepted with it, for everything the type's search supports. */
function supported(r: ResourceDef): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const p of r.searchParams) out.set(p.name, new Set(p.modifiers ?? []));
  const result = PARAMS[r.type] ? ENGINE_RESULT_PARAMS : OWN_HANDLER_RESULT_PARAMS[r.type];
  assert.ok(result, `${r.type}: search handled neither by the shared engine nor by a handler known to this test`);
  for (const n of result) out.set(n, new Set());
  if (SORTS[r.type]) out.set('_sort', new Set());
  if (r.searchInclude?.length) out.set('_include', new Set());
  if (r.searchRevInclude?.length) out.set('_revinclude', new Set());
  return out;
}

const resolve = (p: Param): Param => {
  if (!p.$ref) return p;
  const target = doc.components.parameters[p.$ref.replace('#/components/parameters/', '')];
  assert.ok(target, `unresolved ${p.$ref}`);
  return target;
};

const sorted = (xs: unknown[] | undefined) => [...(xs ?? [])].map(String).sort();

test('every search operation lists exactly the search parameters the registry supports for its type', () => {
  registerAll();
  const searchable = resourceRegistry.filter((r) => r.interactions.includes('search-type'));
  assert.ok(searchable.length >= 6, 'registry has the searchable types');
  const problems: string[] = [];
  for (const r of searchable) {
    const want = supported(r);
    for (const [p, m] of [[`/fhir/${r.type}`, 'get'], [`/fhir/${r.type}/_search`, 'post']] as const) {
      const op = doc.paths[p]?.[m];
      const where = `${m.toUpperCase()} ${p}`;
      if (!op) continue; // reported by the interaction test
      const params = (op.parameters ?? []).map(resolve).filter((x) => x.in !== 'header');
      const listed = new Set<string>();
      for (const x of params) {
        const full = x.name ?? '';
        if (x.in !== 'query') problems.push(`${where}: ${full} is in ${x.in}, not query`);
        if (listed.has(full)) problems.push(`${where}: ${full} listed twice`);
        listed.add(full);
        const [name, modifier] = full.split(':') as [string, string | undefined];
        const mods = want.get(name);
        if (!mods) problems.push(`${where}: ${full} is not a search parameter of ${r.type} in the registry`);
        else if (modifier !== undefined && !mods.has(modifier)) problems.push(`${where}: modifier :${modifier} is not declared for ${name}`);
      }
      const names = new Set([...listed].map((n) => n.split(':')[0]));
      for (const n of want.keys()) if (!names.has(n)) problems.push(`${where}: ${n} missing`);

      // Values the registry enumerates are the parameter's enum, exactly.
      const enumOf = (n: string) => {
        const s = params.find((x) => x.name === n)?.schema;
        return s?.items?.enum ?? s?.enum;
      };
      const sameEnum = (n: string, values: string[]) => {
        if (!names.has(n)) return;
        const got = sorted(enumOf(n));
        if (JSON.stringify(got) !== JSON.stringify(sorted(values))) problems.push(`${where}: ${n} enum ${JSON.stringify(got)}, registry ${JSON.stringify(sorted(values))}`);
      };
      sameEnum('_include', r.searchInclude ?? []);
      sameEnum('_revinclude', r.searchRevInclude ?? []);
      const sortKeys = Object.keys(SORTS[r.type] ?? {});
      sameEnum('_sort', [...sortKeys, ...sortKeys.map((k) => `-${k}`)]);
    }
  }
  assert.deepEqual(problems, []);
});
