/**
 * Auth fixtures for tests: an RS256 key pair generated per run (static JWKS in config), a token
 * minter, and an app built with an auth configuration through the production config loader.
 */
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import type { Manifest } from '../../src/model/manifest.js';
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

/** Minimal Part 10 file (Explicit VR Little Endian) carrying only its SOP Instance UID. */
export function part10(sop: string): Buffer {
  const el = (g: number, e: number, vr: string, v: string) => {
    const val = Buffer.from(v.length % 2 ? `${v}\0` : v, 'latin1');
    const h = Buffer.alloc(8);
    h.writeUInt16LE(g, 0);
    h.writeUInt16LE(e, 2);
    h.write(vr, 4, 'latin1');
    h.writeUInt16LE(val.length, 6);
    return Buffer.concat([h, val]);
  };
  const ts = el(0x0002, 0x0010, 'UI', '1.2.840.10008.1.2.1');
  const glen = Buffer.alloc(12);
  glen.writeUInt16LE(0x0002, 0);
  glen.writeUInt16LE(0x0000, 2);
  glen.write('UL', 4, 'latin1');
  glen.writeUInt16LE(4, 6);
  glen.writeUInt32LE(ts.length, 8);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), glen, ts, el(0x0008, 0x0018, 'UI', sop)]);
}

/**
 * A fake DICOMweb archive handler: answers anything with a plausible body for what was asked (the
 * instances of a series of the given manifests as Part 10 parts, '[]' metadata, a tiny JPEG).
 */
export const fakeArchive = (manifests: () => Array<Manifest | undefined>) => (req: http.IncomingMessage, res: http.ServerResponse) => {
  const url = (req.url ?? '').split('?')[0]!;
  if (/\/(rendered|thumbnail)$/.test(url)) {
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
    return;
  }
  const m = /\/studies\/([0-9.]+)(?:\/series\/([0-9.]+)(?:\/instances\/([0-9.]+))?)?/.exec(url);
  const found: Array<{ study: string; series: string; sop: string; cls: string }> = [];
  for (const mf of manifests()) {
    for (const st of mf?.evidence ?? []) {
      if (st.studyInstanceUid !== m?.[1]) continue;
      for (const se of st.series) {
        if (m?.[2] && se.uid !== m[2]) continue;
        for (const i of se.instances) if (!m?.[3] || m[3] === i.sopInstanceUid) found.push({ study: st.studyInstanceUid, series: se.uid, sop: i.sopInstanceUid, cls: i.sopClassUid });
      }
    }
  }
  if (!found.length) {
    res.writeHead(404).end();
    return;
  }
  if (/\/metadata$/.test(url)) {
    const body = found.map((f) => ({ '0020000D': { vr: 'UI', Value: [f.study] }, '0020000E': { vr: 'UI', Value: [f.series] }, '00080018': { vr: 'UI', Value: [f.sop] }, '00080016': { vr: 'UI', Value: [f.cls] } }));
    res.writeHead(200, { 'content-type': 'application/dicom+json' }).end(JSON.stringify(body));
    return;
  }
  const b = 'fakeb';
  const parts = /\/frames\//.test(url) ? [Buffer.from([0, 1, 2, 3])] : found.map((f) => part10(f.sop));
  const type = /\/frames\//.test(url) ? 'application/octet-stream' : 'application/dicom';
  const body = Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: ${type}\r\n\r\n`), p, Buffer.from('\r\n')])), Buffer.from(`--${b}--\r\n`)]);
  res.writeHead(200, { 'content-type': `multipart/related; type="${type}"; boundary=${b}` }).end(body);
};
