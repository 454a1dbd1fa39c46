/**
 * The policy without HTTP: scope grammar (SMART v1/v2, IUA, RAD-107), route classification, and
 * the decision table (roles × actions × patient limits × break-glass).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authorize, classifyRequest, type Action } from '../../src/auth/policy.js';
import type { Principal } from '../../src/auth/principal.js';
import { LOOPBACK_PRINCIPAL } from '../../src/auth/principal.js';
import { parseSmartScope, scopeGrants } from '../../src/auth/scopes.js';
import { GatewayError } from '../../src/http/errors.js';
import { rateLimitMiddleware } from '../../src/auth/request-limits.js';
import { outcomeCode } from '../../src/audit/balp.js';

test('SMART v2 and v1 scope grammar', () => {
  assert.deepEqual([...parseSmartScope('patient/DocumentReference.rs')!.interactions], ['r', 's']);
  assert.deepEqual([...parseSmartScope('user/*.cruds')!.interactions], ['c', 'r', 'u', 'd', 's']);
  assert.deepEqual([...parseSmartScope('system/Binary.read')!.interactions], ['r', 's']);
  assert.deepEqual([...parseSmartScope('user/*.write')!.interactions], ['c', 'u', 'd']);
  assert.deepEqual([...parseSmartScope('user/*.*')!.interactions], ['c', 'r', 'u', 'd', 's']);
  // granular scopes (SMART 2.x): supported parameters parse into token conditions
  assert.deepEqual(parseSmartScope('patient/DocumentReference.rs?category=http://loinc.org|18748-4,x&type=y')!.query, [
    { param: 'category', values: [{ system: 'http://loinc.org', code: '18748-4' }, { code: 'x' }] },
    { param: 'type', values: [{ code: 'y' }] },
  ]);
  assert.deepEqual(parseSmartScope('user/ImagingStudy.rs?modality=CT')!.query, [{ param: 'modality', values: [{ code: 'CT' }] }]);
  // other parameters, types without granular support, empty values: not a scope at all (fail closed)
  for (const bad of ['patient/DocumentReference.rs?date=ge2020', 'patient/Patient.rs?category=x', 'user/*.rs?category=x', 'user/DocumentReference.rs?category=', 'user/DocumentReference.rs?']) {
    assert.equal(parseSmartScope(bad), undefined, bad);
  }
  for (const bad of ['patient/DocumentReference.sr', 'launch/patient', 'openid', 'admin/*.rs', 'user/Doc-Ref.r', 'user/*.']) {
    assert.equal(parseSmartScope(bad), undefined, bad);
  }
});

test('scopeGrants: granular scopes narrow, a plain scope of the same reach lifts the narrowing', () => {
  const q = [{ param: 'category', values: [{ code: 'a' }] }];
  assert.deepEqual(scopeGrants(['user/DocumentReference.rs?category=a'], 'DocumentReference', 's'), { granted: true, patientOnly: false, restrictions: [q] });
  assert.deepEqual(scopeGrants(['user/DocumentReference.rs?category=a', 'user/DocumentReference.rs'], 'DocumentReference', 's'), { granted: true, patientOnly: false });
  assert.deepEqual(scopeGrants(['user/DocumentReference.rs?category=a', 'patient/DocumentReference.rs'], 'DocumentReference', 's'), { granted: true, patientOnly: false, restrictions: [q] });
});

test('scopeGrants: SMART, IUA transaction scopes, extra (RAD-107), patient-only', () => {
  assert.deepEqual(scopeGrants(['patient/*.rs'], 'DocumentReference', 's'), { granted: true, patientOnly: true });
  assert.deepEqual(scopeGrants(['patient/*.rs', 'user/DocumentReference.s'], 'DocumentReference', 's'), { granted: true, patientOnly: false });
  assert.equal(scopeGrants(['user/DocumentReference.r'], 'DocumentReference', 's').granted, false);
  assert.equal(scopeGrants(['user/ImagingStudy.rs'], 'DocumentReference', 'r').granted, false);
  assert.equal(scopeGrants(['ITI-67'], 'DocumentReference', 's').granted, true);
  assert.equal(scopeGrants(['ITI-67'], 'Binary', 'r').granted, false);
  assert.equal(scopeGrants(['ITI-68'], 'Binary', 'r').granted, true);
  assert.equal(scopeGrants(['ITI-68'], 'Binary', 'c').granted, false);
  assert.equal(scopeGrants(['ITI-65'], 'Bundle', 'c').granted, true);
  assert.equal(scopeGrants(['ITI-66'], 'List', 's').granted, true);
  assert.equal(scopeGrants(['RAD-107'], 'ImagingStudy', 'r').granted, false);
  assert.equal(scopeGrants(['RAD-107'], 'ImagingStudy', 'r', ['RAD-107']).granted, true);
});

test('route classification: FHIR and DICOMweb', () => {
  const c = (m: string, p: string) => {
    const a = classifyRequest(m, p);
    return `${a.kind}:${a.resourceType ?? ''}:${a.subtype ?? ''}`;
  };
  assert.equal(c('GET', '/fhir/DocumentReference'), 'search:DocumentReference:ITI-67');
  assert.equal(c('POST', '/fhir/DocumentReference/_search'), 'search:DocumentReference:ITI-67');
  assert.equal(c('GET', '/fhir/DocumentReference/abc'), 'read:DocumentReference:read');
  assert.equal(c('GET', '/fhir/Binary/abc'), 'read:Binary:ITI-68');
  assert.equal(c('GET', '/fhir/Bundle/abc'), 'read:Bundle:ITI-68');
  assert.equal(c('GET', '/fhir/List'), 'search:List:ITI-66');
  assert.equal(c('GET', '/fhir/ImagingStudy'), 'search:ImagingStudy:search');
  assert.equal(c('POST', '/fhir'), 'create:Bundle:ITI-65');
  assert.equal(c('POST', '/fhir/Binary'), 'create:Binary:ITI-65');
  assert.equal(c('POST', '/fhir/Bundle'), 'create:Bundle:ITI-65');
  assert.equal(c('PUT', '/fhir/DocumentReference/x'), 'update:DocumentReference:update');
  assert.equal(c('PATCH', '/fhir/DocumentReference/x'), 'update:DocumentReference:update');
  assert.equal(c('GET', '/fhir/AuditEvent'), 'audit-read:AuditEvent:search');
  assert.equal(c('GET', '/fhir/AuditEvent/1'), 'audit-read:AuditEvent:read');
  assert.equal(c('GET', '/fhir/metadata'), 'public::metadata');
  assert.equal(c('GET', '/dicomweb/studies'), 'query-images:ImagingStudy:RAD-129');
  assert.equal(c('GET', '/dicomweb/studies/1.2/series'), 'query-images:ImagingStudy:RAD-129');
  assert.equal(c('GET', '/dicomweb/studies/1.2/series/1.3/instances'), 'query-images:ImagingStudy:RAD-129');
  assert.equal(c('GET', '/dicomweb/series'), 'query-images:ImagingStudy:RAD-129');
  for (const p of ['/studies/1.2', '/studies/1.2/metadata', '/studies/1.2/series/1.3', '/studies/1.2/series/1.3/metadata', '/studies/1.2/series/1.3/instances/1.4', '/studies/1.2/series/1.3/instances/1.4/frames/1', '/studies/1.2/series/1.3/instances/1.4/rendered', '/studies/1.2/rendered', '/studies/1.2/thumbnail', '/studies/1.2/series/1.3/instances/1.4/bulkdata/x']) {
    assert.equal(c('GET', `/dicomweb${p}`), 'retrieve-images:ImagingStudy:RAD-107', p);
  }
  assert.equal(c('POST', '/dicomweb/studies'), 'create:ImagingStudy:STOW-RS');
  assert.equal(c('HEAD', '/fhir/Binary/x'), 'read:Binary:ITI-68');
  // Express mount paths match case-insensitively: so must the classification
  assert.equal(c('GET', '/FHIR/AuditEvent'), 'audit-read:AuditEvent:search');
  assert.equal(c('GET', '/Fhir/AuditEvent/1'), 'audit-read:AuditEvent:read');
  assert.equal(c('GET', '/DICOMweb/studies/1.2'), 'retrieve-images:ImagingStudy:RAD-107');
  assert.equal(c('POST', '/DicomWeb/studies'), 'create:ImagingStudy:STOW-RS');
});

const P = (o: Partial<Principal>): Principal => ({ kind: 'user', subject: 'u', roles: [], scopes: [], breakGlass: false, authMethod: 'bearer', ...o });
const A = (m: string, p: string): Action => classifyRequest(m, p);
const CFG = { rad107Scope: 'RAD-107', breakGlass: { purposeOfUseClaim: 'purpose_of_use', value: 'BTG' } };
const forbidden = (fn: () => unknown, code = 'GW_FORBIDDEN') =>
  assert.throws(fn, (e: unknown) => e instanceof GatewayError && e.status === 403 && e.code === code);

test('roles: radiologist reads all, referring its patients, technologist writes, administrator audits', () => {
  const all = ['user/*.cruds', 'RAD-107'];
  const rad = P({ roles: ['radiologist'], scopes: all });
  assert.deepEqual(authorize(rad, A('GET', '/fhir/DocumentReference'), CFG).filter, { all: true });
  assert.deepEqual(authorize(rad, A('GET', '/dicomweb/studies/1/series/2/instances/3'), CFG).filter, { all: true });
  forbidden(() => authorize(rad, A('POST', '/fhir'), CFG));
  forbidden(() => authorize(rad, A('GET', '/fhir/AuditEvent'), CFG));

  const ref = P({ roles: ['referring'], scopes: all, patientContext: 'p1', careRelationshipPatientIds: ['p2'] });
  assert.deepEqual(authorize(ref, A('GET', '/fhir/DocumentReference'), CFG).filter, { all: false, patientIds: ['p1', 'p2'] });
  assert.deepEqual(authorize(ref, A('GET', '/dicomweb/studies'), CFG).filter, { all: false, patientIds: ['p1', 'p2'] });
  assert.deepEqual(authorize(P({ roles: ['referring'], scopes: all }), A('GET', '/fhir/Binary/x'), CFG).filter, { all: false, patientIds: [] });
  forbidden(() => authorize(ref, A('POST', '/fhir/Binary'), CFG));

  const tech = P({ roles: ['technologist'], scopes: all });
  assert.deepEqual(authorize(tech, A('POST', '/fhir'), CFG).filter, { all: true });
  assert.deepEqual(authorize(tech, A('POST', '/dicomweb/studies'), CFG).filter, { all: true });
  assert.deepEqual(authorize(tech, A('PATCH', '/fhir/DocumentReference/x'), CFG).filter, { all: true });
  forbidden(() => authorize(tech, A('GET', '/fhir/AuditEvent'), CFG));

  const admin = P({ roles: ['administrator'], scopes: all });
  assert.deepEqual(authorize(admin, A('GET', '/fhir/AuditEvent'), CFG).filter, { all: true });
  forbidden(() => authorize(admin, A('GET', '/fhir/DocumentReference'), CFG));
  forbidden(() => authorize(admin, A('GET', '/dicomweb/studies/1'), CFG));
});

test('the web page\'s files are public; $validate is its own action, open to every role with a manifest-reading scope', () => {
  for (const path of ['/', '/ui', '/ui/', '/ui/app.js', '/ui/config.json']) assert.equal(classifyRequest('GET', path).kind, 'public', path);
  assert.equal(classifyRequest('POST', '/ui/app.js').kind, 'read', 'only GET/HEAD of the page is public');
  assert.equal(classifyRequest('GET', '/uix').kind, 'read');
  const v = A('POST', '/fhir/$validate');
  assert.equal(v.kind, 'validate');
  for (const role of ['radiologist', 'referring', 'technologist', 'administrator'] as const) {
    assert.doesNotThrow(() => authorize(P({ roles: [role], scopes: ['user/DocumentReference.r'] }), v, CFG), role);
  }
  forbidden(() => authorize(P({ roles: ['radiologist'], scopes: ['user/Patient.rs'] }), v, CFG), 'GW_INSUFFICIENT_SCOPE');
});

test('scopes: required for bearer tokens, 403 insufficient_scope; RAD-107 for WADO-RS', () => {
  const rad = P({ roles: ['radiologist'], scopes: ['ITI-67'] });
  assert.deepEqual(authorize(rad, A('GET', '/fhir/DocumentReference'), CFG).filter, { all: true });
  forbidden(() => authorize(rad, A('GET', '/fhir/Binary/x'), CFG), 'GW_INSUFFICIENT_SCOPE');
  forbidden(() => authorize(rad, A('GET', '/dicomweb/studies/1/metadata'), CFG), 'GW_INSUFFICIENT_SCOPE');
  assert.ok(authorize(P({ roles: ['radiologist'], scopes: ['RAD-107'] }), A('GET', '/dicomweb/studies/1/metadata'), CFG));
  assert.ok(authorize(P({ roles: ['radiologist'], scopes: ['user/ImagingStudy.rs'] }), A('GET', '/dicomweb/studies/1/metadata'), CFG));
  try {
    authorize(P({ roles: ['radiologist'], scopes: [] }), A('GET', '/fhir/DocumentReference'), CFG);
    assert.fail('no scopes');
  } catch (e) {
    assert.match((e as GatewayError).extra.headers!['WWW-Authenticate']!, /error="insufficient_scope"/);
  }
  // Basic / mTLS service accounts without configured scopes: the role decides
  assert.ok(authorize(P({ kind: 'service', authMethod: 'basic', roles: ['technologist'] }), A('POST', '/fhir'), CFG));
  forbidden(() => authorize(P({ kind: 'service', authMethod: 'mtls', roles: [] }), A('GET', '/fhir/DocumentReference'), CFG));
});

test('role-less tokens: system clients by scope, patient apps in their compartment, users refused', () => {
  const sys = P({ kind: 'system', scopes: ['system/*.rs'] });
  assert.deepEqual(authorize(sys, A('GET', '/fhir/DocumentReference'), CFG).filter, { all: true });
  forbidden(() => authorize(sys, A('POST', '/fhir'), CFG), 'GW_INSUFFICIENT_SCOPE');
  forbidden(() => authorize(sys, A('GET', '/fhir/AuditEvent'), CFG));
  const app = P({ scopes: ['patient/*.rs'], patientContext: 'p9' });
  assert.deepEqual(authorize(app, A('GET', '/fhir/DocumentReference'), CFG).filter, { all: false, patientIds: ['p9'] });
  assert.deepEqual(authorize(P({ scopes: ['patient/*.rs'] }), A('GET', '/fhir/DocumentReference'), CFG).filter, { all: false, patientIds: [] });
  forbidden(() => authorize(P({ scopes: ['user/*.rs'] }), A('GET', '/fhir/DocumentReference'), CFG));
  // radiologist holding only patient/ scopes is limited to the launch patient
  assert.deepEqual(authorize(P({ roles: ['radiologist'], scopes: ['patient/*.rs'], patientContext: 'p1' }), A('GET', '/fhir/DocumentReference'), CFG).filter, { all: false, patientIds: ['p1'] });
  // referring ∩ patient scope
  assert.deepEqual(authorize(P({ roles: ['referring'], scopes: ['patient/*.rs'], patientContext: 'p1', careRelationshipPatientIds: ['p2'] }), A('GET', '/fhir/DocumentReference'), CFG).filter, { all: false, patientIds: ['p1'] });
});

test('break-glass lifts patient limits for reads only, flagged', () => {
  const ref = P({ roles: ['referring'], scopes: ['user/*.rs', 'RAD-107'], breakGlassRequested: true });
  assert.deepEqual(authorize(ref, A('GET', '/fhir/DocumentReference'), CFG), { filter: { all: true }, breakGlass: true });
  assert.deepEqual(authorize(ref, A('GET', '/dicomweb/studies/1'), CFG), { filter: { all: true }, breakGlass: true });
  forbidden(() => authorize({ ...ref, scopes: ['user/*.cruds'] }, A('POST', '/fhir'), CFG));
  forbidden(() => authorize(P({ roles: ['administrator'], scopes: ['user/*.rs'], breakGlassRequested: true }), A('GET', '/fhir/DocumentReference'), CFG));
  // without break-glass configured the request is an ordinary one
  // … where labelled documents also stay hidden from a referring clinician (default clearance)
  assert.deepEqual(authorize(ref, A('GET', '/fhir/DocumentReference'), { rad107Scope: 'RAD-107' }), { filter: { all: false, patientIds: [] }, breakGlass: false, restrict: { hiddenConfidentiality: ['R', 'V'] } });
});

test('confidentiality: labels above the clearance of the roles are hidden on reads; break-glass lifts them', () => {
  const cfg = { rad107Scope: 'RAD-107', breakGlass: { purposeOfUseClaim: 'pou', value: 'BTG' }, confidentiality: { R: ['radiologist', 'referring'], V: ['radiologist'] } };
  const hidden = (p: Parameters<typeof P>[0], m = 'GET', path = '/fhir/DocumentReference') => authorize(P(p), A(m, path), cfg).restrict?.hiddenConfidentiality ?? [];
  assert.deepEqual(hidden({ roles: ['radiologist'], scopes: ['user/*.rs'] }), []);
  assert.deepEqual(hidden({ roles: ['referring'], scopes: ['user/*.rs'] }), ['V']);
  assert.deepEqual(hidden({ roles: ['technologist'], scopes: ['user/*.rs'] }), ['R', 'V']);
  assert.deepEqual(hidden({ roles: ['technologist'], scopes: ['user/*.rs'], breakGlassRequested: true }), []);
  assert.deepEqual(hidden({ roles: ['technologist'], scopes: ['user/*.cruds'] }, 'POST', '/fhir'), [], 'not a read');
});

test('loopback principal may do everything', () => {
  for (const [m, p] of [['GET', '/fhir/AuditEvent'], ['POST', '/fhir'], ['GET', '/dicomweb/studies/1']] as const) {
    assert.deepEqual(authorize(LOOPBACK_PRINCIPAL, A(m, p), CFG).filter, { all: true });
  }
});

test('rate limit: token bucket per identity, 429 with Retry-After', () => {
  let now = 0;
  const mw = rateLimitMiddleware(60, { now: () => now });
  const run = (subject: string) => {
    let err: unknown;
    mw({ principal: P({ subject }), ip: '127.0.0.1' } as never, {} as never, (e?: unknown) => (err = e));
    return err as GatewayError | undefined;
  };
  for (let i = 0; i < 60; i++) assert.equal(run('a'), undefined);
  const e = run('a');
  assert.equal(e?.status, 429);
  assert.equal(e?.extra.headers?.['Retry-After'], '1');
  assert.equal(run('b'), undefined, 'another identity has its own bucket');
  now += 1000;
  assert.equal(run('a'), undefined, 'one token refilled after a second');
  assert.equal(run('a')?.status, 429);
});

test('audit outcome codes', () => {
  assert.equal(outcomeCode(200, false), '0');
  assert.equal(outcomeCode(206, false, 'RAD-107'), '4');
  assert.equal(outcomeCode(404, false), '4');
  assert.equal(outcomeCode(503, false), '8');
  assert.equal(outcomeCode(200, true), '12');
});
