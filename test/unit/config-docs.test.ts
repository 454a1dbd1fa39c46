/**
 * The README's configuration table is generated from the schema: stale → fail, and every key the
 * schema knows appears in it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { README_PATH, renderReadme } from '../../scripts/gen-config-docs.js';
import { describeKeys } from '../../src/config/describe.js';
import { configSchema } from '../../src/config/schema.js';

test('README configuration table is up to date (run: npx tsx scripts/gen-config-docs.ts)', () => {
  const current = fs.readFileSync(README_PATH, 'utf8');
  assert.equal(current, renderReadme(current));
});

test('the table lists every schema key, including the nested and list ones', () => {
  const keys = describeKeys(configSchema).map((r) => r.key);
  for (const k of ['upstreams[].retrieveUrlPrefixes', 'upstreams[].auth.tokenUrl', 'auth.jwt.issuer', 'publish.recipients[].url', 'ui.viewerUrl', 'publicEndpoints']) assert.ok(keys.includes(k), k);
});
