/**
 * The stored AuditEvent text is built from parts serialised once and reused (src/audit/json.ts):
 * it must be exactly JSON.stringify of the event, for every event shape and caller, however many
 * events share those parts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildAuditEvents, type AuditInput } from '../../src/audit/balp.js';
import { auditJson, expandAuditJson } from '../../src/audit/json.js';
import type { Principal } from '../../src/model/access.js';
import { deepFreeze } from '../../src/model/memo.js';

const user = (o: Partial<Principal> = {}): Principal => ({ kind: 'user', subject: 'dr-a', issuer: 'https://idp.test', clientId: 'viewer', jti: 'j-1', roles: ['radiologist'], scopes: ['user/*.rs'], breakGlass: false, authMethod: 'bearer', ...o });

function input(o: Partial<AuditInput>): AuditInput {
  return { id: crypto.randomUUID(), recorded: new Date(), requestId: 'req-1', method: 'GET', path: '/fhir/DocumentReference', status: 200, aborted: false, breakGlass: false, clientIp: '10.0.0.7', serverUrl: 'https://gw.test', ...o };
}

const cases: Array<[string, AuditInput]> = [
  ['ITI-67 search', input({ principal: user(), action: { kind: 'search', resourceType: 'DocumentReference', subtype: 'ITI-67' }, info: { subtype: 'ITI-67', action: 'E', patientIds: ['p1'], entities: ['DocumentReference/d1'], count: 1 }, rawQuery: 'patient=p1' })],
  ['ITI-67 over two patients', input({ principal: user(), action: { kind: 'search', resourceType: 'DocumentReference', subtype: 'ITI-67' }, info: { subtype: 'ITI-67', action: 'E', patientIds: ['p1', 'p2'], count: 2 }, rawQuery: 'subject.identifier=x' })],
  ['ITI-68 break-glass', input({ principal: user({ purposeOfUse: ['TREAT'], homeCommunityId: 'urn:oid:1.2' }), breakGlass: true, method: 'GET', path: '/fhir/Binary/b1', action: { kind: 'read', resourceType: 'Binary', subtype: 'ITI-68' }, info: { subtype: 'ITI-68', action: 'R', patientIds: ['p1'], entities: ['Binary/b1', 'DocumentReference/d1'] } })],
  ['RAD-107 retrieve', input({ principal: user(), userAgent: 'viewer/1.0 "quoted"\u2028', path: '/dicomweb/studies/1.2', action: { kind: 'retrieve-images', resourceType: 'ImagingStudy', subtype: 'RAD-107' }, info: { subtype: 'RAD-107', action: 'R', patientIds: ['p1', 'p2'], entities: ['study:1.2', 'series:1.2.3', 'instance:1.2.3.4'], count: 1 } })],
  ['401 without principal', input({ status: 401, clientIp: undefined, action: { kind: 'search', resourceType: 'DocumentReference' } })],
  ['aborted read, hash query', input({ principal: user({ roles: [] }), aborted: true, status: 200, storeQuery: 'hash', action: { kind: 'read', resourceType: 'Patient' } })],
];

test('the AuditEvent text equals JSON.stringify of the event, first and repeated builds alike', () => {
  for (let round = 0; round < 3; round++) {
    for (const [name, a] of cases) {
      for (const row of buildAuditEvents({ ...a, id: crypto.randomUUID(), recorded: new Date(Date.now() + round) })) {
        const fragments = new Map(row.fragments.map((f) => [f.key, f.text]));
        assert.equal(expandAuditJson(row.json, fragments), JSON.stringify(row.resource), `${name} (round ${round})`);
        assert.ok(row.json.length < JSON.stringify(row.resource).length / 2, `${name}: shared parts stored apart`);
      }
    }
  }
});

test('callers never share agents: each event names its own user, client and address', () => {
  const a = buildAuditEvents(input({ principal: user({ subject: 'u-1', jti: 'ja' }), action: { kind: 'read', resourceType: 'Patient' } }))[0]!;
  const b = buildAuditEvents(input({ principal: user({ subject: 'u-2', jti: 'jb' }), clientIp: '10.0.0.8', action: { kind: 'read', resourceType: 'Patient' } }))[0]!;
  const c = buildAuditEvents(input({ principal: user({ subject: 'u-1', jti: 'ja', roles: ['administrator'] }), action: { kind: 'read', resourceType: 'Patient' } }))[0]!;
  const who = (r: typeof a) => r.resource.agent.map((x) => [x.who, x.network, x.role]);
  assert.notDeepEqual(who(a), who(b));
  assert.notDeepEqual(who(a), who(c));
  assert.equal(c.resource.agent[2]!.role![0]!.coding![0]!.code, 'administrator');
  assert.notEqual(a.fragments.find((f) => f.text.includes('u-1'))?.key, b.fragments.find((f) => f.text.includes('u-2'))?.key);
});

test('auditJson: JSON.stringify semantics for mixed frozen and plain values', () => {
  const shared = deepFreeze({ a: [1, 'x', null], b: { c: true } });
  const v = { k: shared, 'odd "key"\n': 1, u: undefined, arr: [shared, undefined, 'é"\\'], n: 0, s: '\u0000' };
  assert.equal(auditJson(v), JSON.stringify(v));
  assert.equal(auditJson(v), JSON.stringify(v)); // from the cached text
  const fragments: Array<{ key: string; text: string }> = [];
  const stored = auditJson(v, fragments);
  assert.equal(fragments.length, 0, 'short parts stay inline');
  assert.equal(stored, JSON.stringify(v));
  const big = deepFreeze({ display: 'x'.repeat(80) });
  const w = { a: big, b: [big], c: 'the text {"$f":"abc"} inside a string is no marker' };
  const compact = auditJson(w, fragments);
  assert.equal(fragments.length, 1, 'one fragment, named twice');
  assert.equal(expandAuditJson(compact, new Map(fragments.map((f) => [f.key, f.text]))), JSON.stringify(w));
});
