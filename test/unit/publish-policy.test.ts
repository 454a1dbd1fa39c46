/**
 * POST /fhir/ImagingStudy/$publish is a create (technologist role, create scopes) audited as an
 * Import; the $publish Parameters are checked before anything is read from an upstream.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildAuditEvent } from '../../src/audit/balp.js';
import { authorize, classifyRequest } from '../../src/auth/policy.js';
import type { Principal } from '../../src/auth/principal.js';
import { GatewayError } from '../../src/http/errors.js';
import { parsePublishArgs } from '../../src/cli/publish.js';
import { parsePublishParameters } from '../../src/publish/routes.js';

const P = (o: Partial<Principal>): Principal => ({ kind: 'user', subject: 'u', roles: [], scopes: [], breakGlass: false, authMethod: 'bearer', ...o });
const CFG = { rad107Scope: 'RAD-107', breakGlass: { purposeOfUseClaim: 'purpose_of_use', value: 'BTG' } };
const forbidden = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof GatewayError && e.status === 403);

test('$publish: create action, technologist only, create scopes needed', () => {
  const a = classifyRequest('POST', '/fhir/ImagingStudy/$publish');
  assert.equal(a.kind, 'create');
  assert.equal(a.subtype, 'publish');
  const all = ['user/*.cruds'];
  assert.deepEqual(authorize(P({ roles: ['technologist'], scopes: all }), a, CFG).filter, { all: true });
  forbidden(() => authorize(P({ roles: ['radiologist'], scopes: all }), a, CFG));
  forbidden(() => authorize(P({ roles: ['referring'], scopes: all }), a, CFG));
  forbidden(() => authorize(P({ roles: ['administrator'], scopes: all }), a, CFG));
  forbidden(() => authorize(P({ roles: ['technologist'], scopes: ['user/*.rs'] }), a, CFG));
  assert.equal(authorize(P({ roles: ['technologist'], scopes: ['user/ImagingStudy.c'] }), a, CFG).breakGlass, false);
});

test('$publish is audited as an Import with the restful interaction "operation"', () => {
  const e = buildAuditEvent({
    id: '00000000-0000-4000-8000-000000000001', recorded: new Date(), requestId: 'r', method: 'POST', path: '/fhir/ImagingStudy/$publish', status: 201, aborted: false,
    action: classifyRequest('POST', '/fhir/ImagingStudy/$publish'), info: { subtype: 'publish', action: 'C', entities: ['study:1.2.3'] },
  } as never);
  const r = e.resource as { type: { code: string }; subtype: Array<{ code: string }> };
  assert.equal(r.type.code, '110107');
  assert.ok(r.subtype.some((s) => s.code === 'operation'));
});

test('$publish Parameters: study required (a UID), or since / all for the study list', () => {
  const bad = (body: unknown, re: RegExp) => assert.throws(() => parsePublishParameters(body), (e: unknown) => e instanceof GatewayError && e.status === 400 && re.test(e.message));
  bad({ resourceType: 'Bundle' }, /Parameters/);
  bad({ resourceType: 'Parameters', parameter: [] }, /"study".*required/);
  bad({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: '1.02.x' }] }, /Study Instance UID/);
  bad({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: '1.2' }, { name: 'study', valueString: '1.3' }] }, /more than once/);
  bad({ resourceType: 'Parameters', parameter: [{ name: 'since', valueString: '2024' }] }, /YYYYMMDD/);
  bad({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: '1.2' }, { name: 'all', valueBoolean: true }] }, /cannot be combined/);
  assert.deepEqual(parsePublishParameters({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: '1.2.3' }, { name: 'upstream', valueString: 'pacs' }] }), { study: '1.2.3', upstream: 'pacs', since: undefined, all: false });
  assert.equal(parsePublishParameters({ resourceType: 'Parameters', parameter: [{ name: 'since', valueDate: '2024-01-02' }] }).since, '20240102');
});

test('CLI arguments: exactly one of --study / --since / --all', () => {
  const o = parsePublishArgs(['--url', 'http://gw/fhir/', '--study', '1.2', '1.3', '--upstream', 'pacs', '--concurrency', '8'], {});
  assert.deepEqual(o, { url: 'http://gw', studies: ['1.2', '1.3'], all: false, token: undefined, concurrency: 8, upstream: 'pacs' });
  assert.equal(parsePublishArgs(['--url', 'http://gw', '--since', '20240101'], {}).since, '20240101');
  for (const argv of [['--url', 'http://gw'], ['--url', 'http://gw', '--all', '--since', '20240101'], ['--url', 'http://gw', '--study'], ['--study', '1.2'], ['--url', 'http://gw', '--all', '--concurrency', '0'], ['--url', 'http://gw', '--since', '2024']]) {
    assert.throws(() => parsePublishArgs(argv, {}), (e: unknown) => (e as Error).name === 'Error', argv.join(' '));
  }
});
