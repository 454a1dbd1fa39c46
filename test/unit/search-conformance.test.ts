/**
 * CONFORMANCE.md and the CapabilityStatement come from the same registry: the file must be what
 * scripts/gen-conformance.ts generates now (stale → fail), and the registry must list every MHD
 * Document Responder and MADO search parameter (SUPPL, §1.7.2, D16).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { CONFORMANCE_PATH, MARKER, registerAll, renderConformance } from '../../scripts/gen-conformance.js';
import { buildCapabilityStatement } from '../../src/fhir/capability.js';

test('CONFORMANCE.md is up to date (run: npx tsx scripts/gen-conformance.ts)', () => {
  const current = fs.readFileSync(CONFORMANCE_PATH, 'utf8');
  assert.ok(current.includes(MARKER), 'the dicomweb marker is kept');
  assert.equal(current, renderConformance(current), 'CONFORMANCE.md is stale: run `npx tsx scripts/gen-conformance.ts`');
});

test('CapabilityStatement: MHD Document Responder + MADO parameters, Binary/Bundle read, List', () => {
  registerAll();
  const cs = buildCapabilityStatement('http://x', 't');
  const res = (type: string) => cs.rest![0]!.resource!.find((r) => r.type === type)!;
  const dr = res('DocumentReference');
  const names = dr.searchParam!.map((p) => p.name);
  for (const p of ['_id', '_lastUpdated', 'author.given', 'author.family', 'category', 'creation', 'date', 'event', 'facility', 'format', 'identifier', 'patient', 'patient.identifier', 'period', 'related', 'security-label', 'setting', 'status', 'type', 'study-instance-uid', 'accession-number', 'modality', 'anatomical-region', 'bodysite']) {
    assert.ok(names.includes(p), `DocumentReference ${p}`);
  }
  assert.deepEqual(dr.interaction!.map((i) => i.code).filter((c) => c === 'read' || c === 'search-type').sort(), ['read', 'search-type']);
  const list = res('List').searchParam!.map((p) => p.name);
  for (const p of ['_id', '_lastUpdated', 'code', 'date', 'identifier', 'patient', 'patient.identifier', 'status', 'designationType', 'sourceId', 'source.given', 'source.family']) assert.ok(list.includes(p), `List ${p}`);
  // targetCommunityIdList (Target Communities Option) is stated as not supported, never as a searchParam
  for (const r of [dr, res('List')]) {
    assert.ok(!r.searchParam!.some((p) => p.name === 'targetCommunityIdList'), r.type);
    assert.match(r.documentation ?? '', /not supported.*`targetCommunityIdList`/, r.type);
  }
  assert.ok(res('Binary').interaction!.some((i) => i.code === 'read'));
  assert.ok(res('Bundle').interaction!.some((i) => i.code === 'read'));
  for (const t of ['ImagingStudy', 'Endpoint', 'Patient']) assert.ok(res(t).interaction!.some((i) => i.code === 'search-type'), t);
});
