/**
 * Auth fixtures for tests: an RS256 key pair generated per run (static JWKS in config), a token
 * minter, and an app built with an auth configuration through the production config loader.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { createTestApp, type TestApp } from './app.js';

export const ISSUER = 'https://idp.test';
export const AUDIENCE = 'https://gateway.test/fhir';

export interface Keys {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

export async function makeKeys(kid = 'k1', alg = 'RS256'): Promise<Keys> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { privateKey: privateKey as CryptoKey, publicJwk, kid };
}

export interface MintOptions {
  keys: Keys;
  alg?: string;
  issuer?: string;
  audience?: string | string[];
  expiresIn?: number | string;
  notBefore?: number | string;
  kid?: string;
}

/** A signed access token: defaults are valid (issuer, audience, 5 minutes). */
export async function mint(claims: JWTPayload & Record<string, unknown>, o: MintOptions): Promise<string> {
  const j = new SignJWT(claims)
    .setProtectedHeader({ alg: o.alg ?? 'RS256', kid: o.kid ?? o.keys.kid, typ: 'at+jwt' })
    .setIssuedAt()
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setExpirationTime(o.expiresIn ?? '5m')
    .setJti(`jti-${Math.random().toString(36).slice(2)}`);
  if (o.notBefore !== undefined) j.setNotBefore(o.notBefore);
  return j.sign(o.keys.privateKey);
}

/** Write a GATEWAY_CONFIG (JSON) with `auth` (+ anything else) and build the app with it. */
export async function createAuthTestApp(fileConfig: Record<string, unknown>, env: Record<string, string> = {}): Promise<TestApp & { configFile: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-auth-'));
  const configFile = path.join(dir, 'gateway.json');
  fs.writeFileSync(configFile, JSON.stringify(fileConfig));
  const t = await createTestApp({ GATEWAY_CONFIG: configFile, ...env });
  return { ...t, configFile };
}

/** auth.jwt block for static keys */
export function jwtConfig(keys: JWK[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { issuer: ISSUER, audience: AUDIENCE, keys, algorithms: ['RS256', 'ES256'], clockToleranceSec: 30, roleClaim: 'roles', ...extra };
}
