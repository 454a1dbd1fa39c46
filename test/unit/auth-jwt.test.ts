/**
 * JWT verifier without HTTP: configuration refusals (ConfigError naming the setting), the
 * verified-token cache never outliving exp, and claims → Principal mapping.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { base64url } from 'jose';
import { principalFromClaims } from '../../src/auth/authenticate.js';
import { createJwtVerifier, TokenError } from '../../src/auth/jwt.js';
import { ConfigError, type AuthConfig, type JwtAuthConfig } from '../../src/config.js';
import { AUDIENCE, ISSUER, makeKeys, mint } from '../helpers/auth.js';

const base = (o: Partial<JwtAuthConfig>): JwtAuthConfig => ({ issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], clockToleranceSec: 0, roleClaim: 'roles', maxTokenBytes: 16384, patientClaim: 'patient', careRelationshipClaim: 'care_patients', ...o });
const oct = { kty: 'oct', kid: 'h', k: base64url.encode('0123456789abcdef0123456789abcdef') };

test('symmetric keys only with HS algorithms, never with a JWKS URL', () => {
  assert.throws(() => createJwtVerifier(base({ algorithms: ['HS256'], keys: [] })), (e: unknown) => e instanceof ConfigError && e.variable === 'auth.jwt.keys');
  assert.throws(() => createJwtVerifier(base({ algorithms: ['RS256'], keys: [oct] })), (e: unknown) => e instanceof ConfigError && e.variable === 'auth.jwt.algorithms');
  assert.throws(() => createJwtVerifier(base({ algorithms: ['HS256'], keys: [oct], jwksUrl: 'https://idp.test/jwks' })), (e: unknown) => e instanceof ConfigError);
  assert.ok(createJwtVerifier(base({ algorithms: ['HS256'], keys: [oct] })));
});

test('a cached verification never outlives exp', async () => {
  const keys = await makeKeys('c1');
  const v = createJwtVerifier(base({ keys: [keys.publicJwk] }));
  const exp = Math.floor(Date.now() / 1000) + 2;
  const token = await mint({ sub: 'u' }, { keys, expiresIn: exp });
  assert.equal((await v.verify(token)).sub, 'u');
  assert.equal((await v.verify(token)).sub, 'u', 'cached');
  await new Promise((r) => setTimeout(r, (exp + 1) * 1000 - Date.now()));
  await assert.rejects(v.verify(token), (e: unknown) => e instanceof TokenError && /expired/.test(e.message));
});

test('private key material in config is never used: only the public half is kept', async () => {
  const keys = await makeKeys('p1');
  const { exportJWK } = await import('jose');
  const full = { ...(await exportJWK(keys.privateKey)), kid: 'p1', alg: 'RS256' };
  const v = createJwtVerifier(base({ keys: [full] }));
  assert.equal((await v.verify(await mint({ sub: 'x' }, { keys }))).sub, 'x');
});

test('claims → principal: roles by dotted path, scopes, patient context, care relationship, break-glass, system clients', () => {
  const cfg: AuthConfig = { enabled: true, jwt: base({ roleClaim: 'realm_access.roles' }), basic: [], rad107Scope: 'RAD-107', breakGlass: { purposeOfUseClaim: 'purpose_of_use', value: 'BTG' }, confidentiality: { R: ['radiologist'], V: ['radiologist'] } };
  const p = principalFromClaims(
    {
      iss: ISSUER,
      sub: 'dr-who',
      azp: 'viewer',
      jti: 'j1',
      realm_access: { roles: ['referring', 'superuser'] },
      scope: 'openid user/*.rs RAD-107',
      patient: 'pat-1',
      care_patients: ['urn:oid:1.2.3|123', 'bare-value-ignored', { system: 'urn:oid:9', value: '9' }],
      purpose_of_use: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' }],
    },
    cfg,
  );
  assert.equal(p.kind, 'user');
  assert.equal(p.subject, 'dr-who');
  assert.equal(p.clientId, 'viewer');
  assert.deepEqual(p.roles, ['referring']);
  assert.deepEqual(p.scopes, ['openid', 'user/*.rs', 'RAD-107']);
  assert.equal(p.patientContext, 'pat-1');
  assert.deepEqual(p.careRelationship, [{ system: 'urn:oid:1.2.3', value: '123' }, { system: 'urn:oid:9', value: '9' }]);
  assert.equal(p.breakGlassRequested, true);
  const sys = principalFromClaims({ iss: ISSUER, sub: 'svc', client_id: 'svc', scope: 'system/*.rs' }, cfg);
  assert.equal(sys.kind, 'system');
  assert.equal(principalFromClaims({ iss: ISSUER, client_id: 'svc2' }, cfg).kind, 'system');
});
