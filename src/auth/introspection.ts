/**
 * Opaque access tokens: RFC 7662 token introspection (IHE IUA ITI-102 Introspect). The gateway
 * authenticates to the introspection endpoint as a confidential client — client_secret_basic, or
 * private_key_jwt (RFC 7523 §2.2, a short-lived client assertion) — and trusts only `active: true`
 * answers whose exp / nbf / aud / iss are acceptable.
 *
 * Answers are cached by the token's SHA-256 (never the token itself), for at most 60 s and never
 * past the token's exp; inactive answers for 10 s (so a flood of junk tokens does not become a
 * flood of introspection calls). An endpoint that cannot be reached or answers badly is
 * IntrospectionUnavailable (→ 503 with Retry-After), not the caller's fault.
 */
import { hash, randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { IntrospectionConfig } from '../config.js';
import { TokenError } from './jwt.js';

export class IntrospectionUnavailable extends Error {
  constructor() {
    super('introspection endpoint unavailable');
    this.name = 'IntrospectionUnavailable';
  }
}

export interface Introspector {
  /** The active token's claims; TokenError when inactive or unacceptable */
  introspect(token: string): Promise<Record<string, unknown>>;
}

export interface IntrospectionChecks {
  audience?: string | string[];
  issuer?: string;
  clockToleranceSec?: number;
}

export function createIntrospector(cfg: IntrospectionConfig, checks: IntrospectionChecks = {}, opts: { cacheSize?: number } = {}): Introspector {
  const cache = new Map<string, { claims?: Record<string, unknown>; until: number }>();
  const max = opts.cacheSize ?? 5_000;
  const authenticate = clientAuthentication(cfg);
  return {
    async introspect(token) {
      if (!token || token.length > 16_384) throw new TokenError('malformed token');
      const key = hash('sha256', token, 'base64url');
      const now = Date.now();
      const hit = cache.get(key);
      if (hit && hit.until > now) {
        if (!hit.claims) throw new TokenError('token inactive');
        return hit.claims;
      }
      const answer = await call(cfg, token, await authenticate());
      const claims = acceptable(answer, checks, now);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      const exp = typeof claims?.exp === 'number' ? claims.exp * 1000 : Infinity;
      cache.set(key, { claims, until: claims ? Math.min(now + Math.min(cfg.cacheSec, 60) * 1000, exp) : now + 10_000 });
      if (!claims) throw new TokenError('token inactive');
      return claims;
    },
  };
}

type ClientAuth = { headers: Record<string, string>; form: Record<string, string> };

function clientAuthentication(cfg: IntrospectionConfig): () => Promise<ClientAuth> {
  if (cfg.clientSecret !== undefined) {
    // RFC 6749 §2.3.1: client id and secret form-urlencoded before base64
    const basic = Buffer.from(`${encodeURIComponent(cfg.clientId)}:${encodeURIComponent(cfg.clientSecret)}`).toString('base64');
    return async () => ({ headers: { authorization: `Basic ${basic}` }, form: {} });
  }
  const a = cfg.clientAssertion!;
  const key = importJWK(a.jwk as JWK, a.alg);
  return async () => {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: a.alg, ...(typeof a.jwk.kid === 'string' ? { kid: a.jwk.kid } : {}) })
      .setIssuer(cfg.clientId)
      .setSubject(cfg.clientId)
      .setAudience(a.audience ?? cfg.url)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(await key);
    return { headers: {}, form: { client_id: cfg.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion } };
  };
}

async function call(cfg: IntrospectionConfig, token: string, auth: ClientAuth): Promise<Record<string, unknown>> {
  let r: Response;
  try {
    r = await fetch(cfg.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...auth.headers },
      body: new URLSearchParams({ token, token_type_hint: 'access_token', ...auth.form }),
      signal: AbortSignal.timeout(cfg.timeoutMs),
      redirect: 'error',
    });
  } catch {
    throw new IntrospectionUnavailable();
  }
  // 401/403 here means the gateway's own client credentials are wrong: not the caller's fault either.
  if (!r.ok) {
    await r.body?.cancel();
    throw new IntrospectionUnavailable();
  }
  try {
    const body = (await r.json()) as unknown;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    return body as Record<string, unknown>;
  } catch {
    throw new IntrospectionUnavailable();
  }
}

/** RFC 7662 §2.2: only `active: true` counts; then the usual time, audience and issuer checks. */
function acceptable(a: Record<string, unknown>, checks: IntrospectionChecks, now: number): Record<string, unknown> | undefined {
  if (a.active !== true) return undefined;
  const skew = (checks.clockToleranceSec ?? 60) * 1000;
  if (typeof a.exp === 'number' && a.exp * 1000 + skew <= now) return undefined;
  if (typeof a.nbf === 'number' && a.nbf * 1000 - skew > now) return undefined;
  if (checks.audience !== undefined && a.aud !== undefined) {
    const want = Array.isArray(checks.audience) ? checks.audience : [checks.audience];
    const got = Array.isArray(a.aud) ? a.aud : [a.aud];
    if (!got.some((x) => want.includes(x as string))) return undefined;
  }
  if (checks.issuer !== undefined && a.iss !== undefined && a.iss !== checks.issuer) return undefined;
  return a;
}
