/**
 * Against a real OpenID provider (test/helpers/oidc.ts): SMART discovery from the IdP's discovery
 * document, opaque tokens through RFC 7662 introspection (each outcome: active, inactive, revoked,
 * endpoint down, bad gateway credentials, cached, private_key_jwt), IUA claims, and the SMART launch
 * patient given as a business identifier.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { auditsFor } from '../helpers/audit.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { createAuthTestApp } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';
import { startOidcProvider, type TestIdp } from '../helpers/oidc.js';
import { kos, provideBundle } from './ingest-fixtures.js';

let idp: TestIdp;
let t: TestApp;
const patients: Array<{ id: string; system: string; value: string }> = [];

const get = (path: string, token: string, app = t.app) => request(app).get(path).set('Authorization', `Bearer ${token}`);

before(async () => {
  idp = await startOidcProvider({ users: [{ sub: 'rad-1', claims: { roles: ['radiologist'] } }, { sub: 'tech-1', claims: { roles: ['technologist'] } }] });
  t = await createAuthTestApp({ auth: { jwt: idp.jwtConfig({ patientIdentifierClaim: 'patient_identifier' }), introspection: idp.introspectionConfig() } });
  const tech = await idp.token({ sub: 'tech-1', scope: 'user/*.cruds' });
  for (const seed of ['oidc-a', 'oidc-b']) {
    const res = await request(t.app).post('/fhir').set('Authorization', `Bearer ${tech}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify(provideBundle([{ kos: kos(seed) }])));
    assert.equal(res.status, 200, res.text);
  }
  const rows = (await t.tdb.db('patient_identifier').select('patient_id', 'system', 'value').orderBy('patient_id')) as Array<{ patient_id: string; system: string; value: string }>;
  patients.push(...rows.map((r) => ({ id: r.patient_id, system: r.system, value: r.value })));
  assert.equal(new Set(patients.map((p) => p.id)).size, 2);
});

after(async () => {
  await t.close();
  await idp.close();
});

describe('SMART discovery', () => {
  test('/.well-known/smart-configuration (and under /fhir) from the IdP discovery', async () => {
    for (const path of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration']) {
      const res = await request(t.app).get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.body.issuer, idp.issuer);
      assert.equal(res.body.authorization_endpoint, idp.authorizationUrl);
      assert.equal(res.body.token_endpoint, idp.tokenUrl);
      assert.equal(res.body.jwks_uri, idp.jwksUrl);
      assert.deepEqual(res.body.code_challenge_methods_supported, ['S256']);
      for (const c of ['launch-standalone', 'permission-v2', 'permission-patient', 'context-standalone-patient']) assert.ok(res.body.capabilities.includes(c), c);
      assert.ok(res.body.scopes_supported.includes('patient/DocumentReference.rs'));
      assert.ok(res.body.grant_types_supported.includes('authorization_code'));
    }
  });

  test('CapabilityStatement rest.security carries the SMART oauth-uris extension', async () => {
    const res = await request(t.app).get('/fhir/metadata');
    const ext = res.body.rest[0].security.extension.find((e: { url: string }) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
    const uri = (n: string) => ext.extension.find((e: { url: string }) => e.url === n)?.valueUri;
    assert.equal(uri('authorize'), idp.authorizationUrl);
    assert.equal(uri('token'), idp.tokenUrl);
    assert.equal(res.body.rest[0].security.service[0].coding[0].code, 'SMART-on-FHIR');
  });

  test('IdP discovery unreachable → 503 with Retry-After; no IdP configured → 404', async () => {
    const down = await createAuthTestApp({ auth: { jwt: { issuer: 'http://127.0.0.1:9', audience: 'x', jwksUrl: 'http://127.0.0.1:9/jwks' } } });
    const none = await createAuthTestApp({});
    try {
      const r = await request(down.app).get('/.well-known/smart-configuration');
      assert.equal(r.status, 503);
      assert.ok(r.headers['retry-after']);
      assert.equal((await request(down.app).get('/fhir/metadata')).status, 200, 'the CapabilityStatement still answers');
      assert.equal((await request(none.app).get('/.well-known/smart-configuration')).status, 404);
    } finally {
      await down.close();
      await none.close();
    }
  });
});

describe('opaque tokens (RFC 7662 introspection)', () => {
  test('active → served; the answer is cached (one introspection for repeated use)', async () => {
    const token = await idp.token({ sub: 'rad-1', scope: 'user/DocumentReference.rs', format: 'opaque' });
    const before = idp.introspections;
    for (let i = 0; i < 3; i++) assert.equal((await get('/fhir/DocumentReference', token)).status, 200);
    assert.equal(idp.introspections - before, 1);
  });

  test('inactive (unknown) and revoked tokens → 401 invalid_token', async () => {
    const r = await get('/fhir/DocumentReference', 'no-such-token-0123456789');
    assert.equal(r.status, 401);
    assert.match(r.headers['www-authenticate']!, /error="invalid_token"/);
    const token = await idp.token({ sub: 'rad-1', scope: 'user/DocumentReference.rs', format: 'opaque' });
    await idp.revoke(token);
    assert.equal((await get('/fhir/DocumentReference', token)).status, 401);
  });

  test("introspection endpoint down, or the gateway's credentials refused → 503 with Retry-After", async () => {
    for (const introspection of [idp.introspectionConfig({ url: 'http://127.0.0.1:9/introspect' }), idp.introspectionConfig({ clientSecret: 'wrong-secret' })]) {
      const d = await createAuthTestApp({ auth: { introspection } });
      try {
        const r = await get('/fhir/DocumentReference', await idp.token({ sub: 'rad-1', scope: 'user/*.rs', format: 'opaque' }), d.app);
        assert.equal(r.status, 503, JSON.stringify(introspection));
        assert.equal(r.headers['retry-after'], '5');
      } finally {
        await d.close();
      }
    }
  });

  test('private_key_jwt client authentication (RFC 7523)', async () => {
    const pk = await createAuthTestApp({ auth: { introspection: { url: idp.introspectionUrl, clientId: idp.assertionClient.clientId, clientAssertion: { jwk: idp.assertionClient.privateJwk, audience: idp.issuer } } } });
    try {
      const token = await idp.token({ sub: 'rad-1', scope: 'user/DocumentReference.rs', format: 'opaque' });
      assert.equal((await get('/fhir/DocumentReference', token, pk.app)).status, 200);
    } finally {
      await pk.close();
    }
  });

  test('IUA claims: subject_role → role, purpose_of_use, home_community_id, national_provider_identifier → audit', async () => {
    const iua = { subject_role: { system: 'urn:example:roles', code: 'radiologist' }, purpose_of_use: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }], home_community_id: 'urn:oid:1.2.3.4.5', national_provider_identifier: '7601000000001' };
    const token = await idp.token({ sub: 'iua-user', scope: 'ITI-67', format: 'opaque', claims: iua });
    const r = await get('/fhir/DocumentReference?status=current', token);
    assert.equal(r.status, 200);
    assert.ok(r.body.total >= 2 || r.body.entry.length >= 2, 'radiologist: all patients');
    const rec = (await auditsFor(t.tdb.db, r.headers['x-request-id']!))[0]!;
    const user = rec.resource.agent!.find((a) => a.requestor)!;
    assert.deepEqual(user.role?.[0]?.coding?.map((c) => c.code), ['radiologist']);
    assert.deepEqual(user.purposeOfUse?.[0]?.coding?.map((c) => c.code), ['TREAT']);
    const ext = Object.fromEntries((user.extension ?? []).map((e) => [e.url.split(':').pop(), e.valueString ?? e.valueCode]));
    assert.equal(ext['home-community-id'], 'urn:oid:1.2.3.4.5');
    assert.equal(ext['national-provider-identifier'], '7601000000001');
  });
});

describe('introspection answers the gateway must not trust (fault injection)', () => {
  test('active but expired, wrong audience, wrong issuer → 401; non-JSON or 5xx → 503; cacheSec 0 → asked every time', async () => {
    let answer: () => { status: number; body: string } = () => ({ status: 200, body: '{}' });
    const fake = await startFakeUpstream((_req, res) => {
      const a = answer();
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
    });
    const d = await createAuthTestApp({ auth: { jwt: idp.jwtConfig(), introspection: { url: `${fake.origin}/introspect`, clientId: 'gw', clientSecret: 's', cacheSec: 0 } } });
    const now = Math.floor(Date.now() / 1000);
    const active = { active: true, sub: 'rad-x', scope: 'user/*.rs', roles: ['radiologist'], aud: idp.audience, iss: idp.issuer, exp: now + 300 };
    const cases: Array<[string, { status: number; body: string }, number]> = [
      ['acceptable', { status: 200, body: JSON.stringify(active) }, 200],
      ['expired', { status: 200, body: JSON.stringify({ ...active, exp: now - 3600 }) }, 401],
      ['other audience', { status: 200, body: JSON.stringify({ ...active, aud: 'https://elsewhere' }) }, 401],
      ['other issuer', { status: 200, body: JSON.stringify({ ...active, iss: 'https://other-idp' }) }, 401],
      ['active as a string', { status: 200, body: JSON.stringify({ ...active, active: 'true' }) }, 401],
      ['not JSON', { status: 200, body: '<html>' }, 503],
      ['server error', { status: 500, body: '{}' }, 503],
    ];
    try {
      for (const [name, a, status] of cases) {
        answer = () => a;
        const r = await get('/fhir/DocumentReference', `opaque-${name.replace(/ /g, '-')}`, d.app);
        assert.equal(r.status, status, name);
      }
      const before = fake.requests.length;
      answer = () => cases[0]![1];
      for (let i = 0; i < 2; i++) assert.equal((await get('/fhir/DocumentReference', 'opaque-repeat', d.app)).status, 200);
      assert.equal(fake.requests.length - before, 2, 'cacheSec 0: no reuse');
      assert.match(String(fake.requests[0]!.headers.authorization), /^Basic /, 'client_secret_basic');
    } finally {
      await d.close();
      await fake.close();
    }
  });
});

describe('SMART launch patient as a business identifier (auth.jwt.patientIdentifierClaim)', () => {
  const docsFor = async (claim: unknown) => {
    const token = await idp.token({ sub: 'patient-app-user', scope: 'patient/DocumentReference.rs', claims: { patient_identifier: claim } });
    const r = await get('/fhir/DocumentReference?_total=accurate', token);
    assert.equal(r.status, 200, r.text);
    return { total: r.body.total as number, patients: new Set((r.body.entry ?? []).map((e: { resource: { subject: { reference: string } } }) => e.resource.subject.reference)) };
  };

  test('system|value resolves through the identifier index to that patient only', async () => {
    const p = patients[0]!;
    const r = await docsFor(`${p.system}|${p.value}`);
    assert.ok(r.total >= 1);
    assert.deepEqual([...r.patients], [`Patient/${p.id}`]);
  });

  test('the issuer must match: other system, bare value or unknown → nothing (totals 0)', async () => {
    const p = patients[0]!;
    assert.equal((await docsFor(`urn:oid:9.9.9|${p.value}`)).total, 0);
    assert.equal((await docsFor(p.value)).total, 0);
    assert.equal((await docsFor(`${p.system}|nobody`)).total, 0);
  });
});
