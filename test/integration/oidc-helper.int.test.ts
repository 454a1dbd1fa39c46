/**
 * The test OpenID provider (test/helpers/oidc.ts) does what other tests rely on: JWT access tokens
 * verifiable with its JWKS, opaque tokens answered by RFC 7662 introspection (secret and
 * private_key_jwt client authentication), revocation, and the authorization-code + PKCE flow.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify, SignJWT, importJWK } from 'jose';
import request from 'supertest';
import { createAuthTestApp } from '../helpers/auth.js';
import { startOidcProvider, type TestIdp } from '../helpers/oidc.js';

let idp: TestIdp;
before(async () => {
  idp = await startOidcProvider({ users: [{ sub: 'dr-a', claims: { roles: ['radiologist'] } }] });
});
after(() => idp.close());

async function introspect(token: string, auth: 'secret' | 'assertion' = 'secret') {
  const body = new URLSearchParams({ token });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth === 'secret') {
    headers.authorization = `Basic ${Buffer.from(`${idp.resourceServer.clientId}:${idp.resourceServer.clientSecret}`).toString('base64')}`;
  } else {
    const key = await importJWK(idp.assertionClient.privateJwk, 'RS256');
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: idp.assertionClient.privateJwk.kid })
      .setIssuer(idp.assertionClient.clientId)
      .setSubject(idp.assertionClient.clientId)
      .setAudience(idp.issuer)
      .setJti(randomBytes(8).toString('hex'))
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(key);
    body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    body.set('client_assertion', assertion);
  }
  const r = await fetch(idp.introspectionUrl, { method: 'POST', headers, body });
  assert.equal(r.status, 200);
  return (await r.json()) as Record<string, unknown>;
}

describe('test OpenID provider', () => {
  it('issues JWT access tokens with the requested claims, verifiable with its JWKS', async () => {
    const t = await idp.token({ sub: 'dr-a', scope: 'user/*.rs', claims: { patient: 'p1', purpose_of_use: ['TREAT'] } });
    const { payload, protectedHeader } = await jwtVerify(t, createRemoteJWKSet(new URL(idp.jwksUrl)), { issuer: idp.issuer, audience: idp.audience });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, 'dr-a');
    assert.deepEqual(payload.roles, ['radiologist']);
    assert.equal(payload.patient, 'p1');
    assert.equal(payload.scope, 'user/*.rs');
  });

  it('issues opaque tokens; introspection answers active with claims, then inactive once revoked', async () => {
    const t = await idp.token({ sub: 'dr-a', scope: 'ITI-67', format: 'opaque', claims: { subject_role: 'radiologist' } });
    assert.ok(!t.includes('.'));
    const a = await introspect(t);
    assert.equal(a.active, true);
    assert.equal(a.sub, 'dr-a');
    assert.equal(a.scope, 'ITI-67');
    assert.equal(a.subject_role, 'radiologist');
    assert.equal(a.aud, idp.audience);
    const b = await introspect(t, 'assertion');
    assert.equal(b.active, true);
    await idp.revoke(t);
    assert.deepEqual(await introspect(t), { active: false });
    assert.deepEqual(await introspect('not-a-token'), { active: false });
  });

  it('system tokens have sub = client_id', async () => {
    const t = await idp.token({ scope: 'system/*.rs', format: 'opaque' });
    const a = await introspect(t);
    assert.equal(a.active, true);
    assert.equal(a.client_id, 'test-app');
  });

});

describe('test OpenID provider: browser sign-in', () => {
  it('runs the authorization-code + PKCE flow for a public client (login form, implied consent)', async () => {
    const redirect = 'http://127.0.0.1:1/callback';
    idp.registerClient({ client_id: 'web', token_endpoint_auth_method: 'none', redirect_uris: [redirect], grant_types: ['authorization_code'], response_types: ['code'] });
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({ client_id: 'web', response_type: 'code', redirect_uri: redirect, scope: 'openid user/*.rs', code_challenge: challenge, code_challenge_method: 'S256', state: 's1' });
    const jar = new Map<string, string>();
    const go = async (url: string, init: RequestInit = {}) => {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const r = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie } });
      for (const c of r.headers.getSetCookie()) {
        const [kv] = c.split(';');
        const i = kv!.indexOf('=');
        jar.set(kv!.slice(0, i), kv!.slice(i + 1));
      }
      return r;
    };
    let r = await go(`${idp.authorizationUrl}?${q}`);
    let loc = new URL(r.headers.get('location')!, idp.issuer).href;
    r = await go(loc);
    const html = await r.text();
    const action = /action="([^"]+)"/.exec(html)![1]!;
    r = await go(new URL(action, idp.issuer).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ prompt: 'login', login: 'dr-a', password: 'x' }) });
    // Follow redirects back through the authorization endpoint to the client's redirect URI.
    for (let i = 0; i < 5 && r.status >= 300 && r.status < 400; i++) {
      loc = new URL(r.headers.get('location')!, idp.issuer).href;
      if (loc.startsWith(redirect)) break;
      r = await go(loc);
    }
    const cb = new URL(loc);
    assert.equal(cb.searchParams.get('state'), 's1');
    const code = cb.searchParams.get('code');
    assert.ok(code, `no code in ${loc}`);
    const tr = await fetch(idp.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirect, client_id: 'web', code_verifier: verifier }),
    });
    const tok = (await tr.json()) as { access_token: string; token_type: string };
    assert.equal(tr.status, 200, JSON.stringify(tok));
    const { payload } = await jwtVerify(tok.access_token, createRemoteJWKSet(new URL(idp.jwksUrl)), { issuer: idp.issuer, audience: idp.audience });
    assert.equal(payload.sub, 'dr-a');
    assert.deepEqual(payload.roles, ['radiologist']);
    assert.equal(payload.scope, 'user/*.rs');
  });

  it('its JWTs are accepted by the gateway (remote JWKS)', async () => {
    const t = await createAuthTestApp({ auth: { jwt: idp.jwtConfig() } });
    try {
      const ok = await idp.token({ sub: 'dr-a', scope: 'user/DocumentReference.rs' });
      assert.equal((await request(t.app).get('/fhir/DocumentReference').set('Authorization', `Bearer ${ok}`)).status, 200);
      assert.equal((await request(t.app).get('/fhir/DocumentReference').set('Authorization', 'Bearer x.y.z')).status, 401);
    } finally {
      await t.close();
    }
  });
});
