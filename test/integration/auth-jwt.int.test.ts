/**
 * Authentication over HTTP: JWT attacks (each → 401 with an RFC 6750 challenge), HS-only
 * configurations, Basic service accounts, public paths, and the audit of refusals.
 */
import assert from 'node:assert/strict';
import { createHmac, createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT, base64url } from 'jose';
import request from 'supertest';
import { closeApp } from '../../src/app.js';
import { hashPassword } from '../../src/cli/hash-password.js';
import { auditFor } from '../helpers/audit.js';
import { AUDIENCE, createAuthTestApp, ISSUER, jwtConfig, makeKeys, mint, type Keys } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';

let t: TestApp;
let keys: Keys;
let other: Keys;
const ADMIN = { sub: 'alice', roles: ['administrator'], scope: 'user/AuditEvent.rs' };

before(async () => {
  keys = await makeKeys('k1');
  other = await makeKeys('k2');
  t = await createAuthTestApp({
    auth: {
      jwt: jwtConfig([keys.publicJwk], { maxTokenBytes: 4096 }),
      basic: [{ username: 'svc-pacs', passwordHash: hashPassword('s3cret-pass'), roles: ['technologist'], scopes: [] }],
    },
  });
});
after(async () => {
  await closeApp(t.app);
  await t.close();
});

const get = (token?: string) => {
  const r = request(t.app).get('/fhir/AuditEvent?_count=1');
  return token === undefined ? r : r.set('Authorization', `Bearer ${token}`);
};

function assert401(res: request.Response, error = 'invalid_token') {
  assert.equal(res.status, 401, res.text);
  assert.equal(res.body.resourceType, 'OperationOutcome');
  assert.equal(res.body.issue[0].code, 'login');
  assert.match(res.headers['www-authenticate']!, new RegExp(`^Bearer realm="mado-gateway", error="${error}"`));
}

const b64 = (o: unknown) => base64url.encode(JSON.stringify(o));
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({ ...ADMIN, iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 300, ...extra });

describe('JWT attacks are 401', () => {
  test('control: a valid token is accepted', async () => {
    const res = await get(await mint(ADMIN, { keys }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.resourceType, 'Bundle');
  });

  test('alg none', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    assert401(await get(token));
    const noneKid = `${b64({ alg: 'none', kid: 'k1' })}.${b64(claims())}.`;
    assert401(await get(noneKid));
  });

  test('HS256 signed with the RSA public key (key confusion)', async () => {
    const pem = createPublicKey({ key: keys.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const head = b64({ alg: 'HS256', kid: 'k1', typ: 'JWT' });
    const body = b64(claims());
    const sig = createHmac('sha256', pem).update(`${head}.${body}`).digest('base64url');
    assert401(await get(`${head}.${body}.${sig}`));
    // and with the JWK's modulus bytes as the secret
    const sig2 = createHmac('sha256', JSON.stringify(keys.publicJwk)).update(`${head}.${body}`).digest('base64url');
    assert401(await get(`${head}.${body}.${sig2}`));
  });

  test('wrong issuer', async () => assert401(await get(await mint(ADMIN, { keys, issuer: 'https://evil.test' }))));
  test('wrong audience', async () => assert401(await get(await mint(ADMIN, { keys, audience: 'https://other.test' }))));
  test('expired (beyond the clock tolerance)', async () => {
    const res = await get(await mint(ADMIN, { keys, expiresIn: now() - 120 }));
    assert401(res);
    assert.match(res.headers['www-authenticate']!, /error_description="token expired"/);
  });
  test('expired within the clock tolerance is accepted', async () => {
    assert.equal((await get(await mint(ADMIN, { keys, expiresIn: now() - 5 }))).status, 200);
  });
  test('not yet valid', async () => {
    const res = await get(await mint(ADMIN, { keys, notBefore: now() + 120 }));
    assert401(res);
    assert.match(res.headers['www-authenticate']!, /not yet valid/);
  });
  test('no exp claim', async () => {
    const token = await new SignJWT({ ...ADMIN }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(keys.privateKey);
    assert401(await get(token));
  });
  test('tampered signature and tampered payload', async () => {
    const good = await mint(ADMIN, { keys });
    const [h, p, s] = good.split('.');
    const flipped = s!.slice(0, -4) + (s!.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    assert401(await get(`${h}.${p}.${flipped}`));
    const escalated = b64({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), roles: ['administrator', 'radiologist'], sub: 'mallory' });
    assert401(await get(`${h}.${escalated}.${s}`));
  });
  test('unknown kid / key not in the JWKS', async () => {
    assert401(await get(await mint(ADMIN, { keys: other })));
    assert401(await get(await mint(ADMIN, { keys: other, kid: 'k1' })));
  });
  test('algorithm not allowed (PS256 with a valid key)', async () => {
    const ps = await makeKeys('k1', 'PS256');
    assert401(await get(await mint(ADMIN, { keys: ps, alg: 'PS256' })));
  });
  test('oversized token', async () => {
    const res = await get(await mint({ ...ADMIN, pad: 'x'.repeat(5000) }, { keys }));
    assert401(res);
    assert.match(res.headers['www-authenticate']!, /too large/);
  });
  test('garbage, empty bearer, unknown scheme', async () => {
    assert401(await get('not.a.jwt!'));
    assert401(await get(''));
    const res = await request(t.app).get('/fhir/AuditEvent').set('Authorization', 'Digest foo');
    assert.equal(res.status, 401);
  });
});

describe('challenges, public paths and Basic', () => {
  test('anonymous → 401 with both challenges; public paths stay open', async () => {
    const res = await get();
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="mado-gateway", Basic realm="mado-gateway", charset="UTF-8"');
    const dw = await request(t.app).get('/dicomweb/studies');
    assert.equal(dw.status, 401);
    assert.equal(dw.body.code, 'GW_UNAUTHORIZED');
    for (const p of ['/healthz', '/readyz', '/fhir/metadata', '/openapi.yaml']) assert.equal((await request(t.app).get(p)).status, 200, p);
    // a bad token on a public path does not break it
    assert.equal((await request(t.app).get('/fhir/metadata').set('Authorization', 'Bearer junk')).status, 200);
    const pre = await request(t.app).options('/fhir/DocumentReference').set('Origin', 'https://v.example').set('Access-Control-Request-Method', 'GET');
    assert.equal(pre.status, 204);
  });

  test('Basic service account: good password accepted, bad one 401 with Basic challenge', async () => {
    const ok = await request(t.app).get('/fhir/AuditEvent').auth('svc-pacs', 's3cret-pass');
    assert.equal(ok.status, 403, 'technologist may not read the audit trail'); // authenticated, then refused by role
    assert.equal(ok.body.issue[0].code, 'forbidden');
    const bad = await request(t.app).get('/fhir/AuditEvent').auth('svc-pacs', 'wrong');
    assert.equal(bad.status, 401);
    assert.equal(bad.headers['www-authenticate'], 'Basic realm="mado-gateway", charset="UTF-8"');
    const unknown = await request(t.app).get('/fhir/AuditEvent').auth('nobody', 's3cret-pass');
    assert.equal(unknown.status, 401);
  });

  test('401s and 403s are audited as Security Alerts without the token', async () => {
    const res = await get(await mint(ADMIN, { keys, issuer: 'https://evil.test' }));
    const ev = await auditFor(t.tdb.db, res.headers['x-request-id']!);
    assert.equal(ev.type_code, '110113');
    assert.equal(ev.outcome, '4');
    assert.equal(ev.agent_who, null);
    assert.doesNotMatch(JSON.stringify(ev.resource), /eyJ/, 'no token material in the AuditEvent');
    const denied = await request(t.app).get('/fhir/AuditEvent').auth('svc-pacs', 's3cret-pass');
    const ev2 = await auditFor(t.tdb.db, denied.headers['x-request-id']!);
    assert.equal(ev2.type_code, '110113');
    assert.equal(ev2.agent_who, 'svc-pacs');
    assert.equal(ev2.subtype_code, 'search-type');
  });

  test('logs carry neither tokens nor passwords', async () => {
    await get(await mint(ADMIN, { keys }));
    await request(t.app).get('/fhir/AuditEvent').auth('svc-pacs', 's3cret-pass');
    const all = t.logs.join('\n');
    assert.doesNotMatch(all, /eyJ[A-Za-z0-9_-]{10,}/);
    assert.doesNotMatch(all, /s3cret-pass|c3ZjLXBhY3M/);
  });
});

describe('HS256 only when configured with a symmetric key', () => {
  let hs: TestApp;
  const secret = Buffer.from('0123456789abcdef0123456789abcdef');
  let rsa: Keys;
  before(async () => {
    rsa = await makeKeys('rsa');
    hs = await createAuthTestApp({
      auth: { jwt: jwtConfig([{ kty: 'oct', kid: 'hs', k: base64url.encode(secret), alg: 'HS256' }, rsa.publicJwk], { algorithms: ['HS256', 'RS256'] }) },
    });
  });
  after(async () => {
    await closeApp(hs.app);
    await hs.close();
  });
  const hsToken = (kid: string, key: Uint8Array | CryptoKey = secret, alg = 'HS256') =>
    new SignJWT(ADMIN).setProtectedHeader({ alg, kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('5m').sign(key);

  test('HS256 with the shared secret is accepted; RS256 with the RSA key too', async () => {
    assert.equal((await request(hs.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await hsToken('hs')}`)).status, 200);
    assert.equal((await request(hs.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await mint(ADMIN, { keys: rsa })}`)).status, 200);
  });
  test('HS256 naming the RSA kid, or signed with the RSA public key, is 401', async () => {
    assert.equal((await request(hs.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await hsToken('rsa')}`)).status, 401);
    const pem = createPublicKey({ key: rsa.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    assert.equal((await request(hs.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await hsToken('rsa', Buffer.from(pem))}`)).status, 401);
  });
  test('RS256 token naming the symmetric kid is 401', async () => {
    assert.equal((await request(hs.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await mint(ADMIN, { keys: rsa, kid: 'hs' })}`)).status, 401);
  });
  test('HS512 (not allowed) with the right secret is 401', async () => {
    assert.equal((await request(hs.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await hsToken('hs', secret, 'HS512')}`)).status, 401);
  });
});
