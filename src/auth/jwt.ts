/**
 * Bearer JWT verification (OAuth2/OIDC access tokens, IUA ITI-72 "Resource Server" checks, IHE IUA
 * and SMART scopes): signature against the configured keys, issuer, audience, exp/nbf with a bounded clock
 * tolerance, an algorithm allow-list and a size limit. Any failure is a TokenError (→ 401).
 *
 * Key confusion is impossible by construction: HS* tokens are verified only against `oct` keys
 * (and only when an HS algorithm is explicitly allowed), every other algorithm only against the
 * asymmetric JWKS (local or remote), which never contains a secret. `none` never reaches jose.
 */
import { hash } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  importJWK,
  jwtVerify,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWSHeaderParameters,
} from 'jose';
import { ConfigError, type JwtAuthConfig } from '../config.js';

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** The key set could not be obtained (JWKS endpoint down, bad answer): 503, not the caller's fault. */
export class KeySetUnavailable extends Error {
  constructor() {
    super('key set unavailable');
    this.name = 'KeySetUnavailable';
  }
}

export interface JwtVerifier {
  verify(token: string): Promise<JWTPayload>;
  /** The claims of a token verify() accepted and still remembers (same expiry), else undefined: no I/O, no await. */
  peek(token: string): JWTPayload | undefined;
}

const HS = /^HS(256|384|512)$/;

/**
 * The key jose verifies a token's signature with: HS* only against `oct` keys, everything else only
 * against the asymmetric JWKS (local or remote). Refuses an algorithm outside the allow-list.
 */
function keyGetter(cfg: JwtAuthConfig, algorithms: string[]): (header: JWSHeaderParameters, token: Parameters<JWTVerifyGetKey>[1]) => Promise<Uint8Array | CryptoKey> {
  const hsAlgs = algorithms.filter((a) => HS.test(a));
  const asymAlgs = algorithms.filter((a) => !HS.test(a));
  const keys = (cfg.keys ?? []) as JWK[];
  const octKeys = keys.filter((k) => k.kty === 'oct');
  const publicKeys = keys.filter((k) => k.kty !== 'oct').map(stripPrivate);
  if (hsAlgs.length && !octKeys.length) throw new ConfigError('auth.jwt.keys', 'HS algorithms need a symmetric (kty "oct") key');
  if (octKeys.length && !hsAlgs.length) throw new ConfigError('auth.jwt.algorithms', 'a symmetric key is configured but no HS algorithm is allowed');
  if (octKeys.length && cfg.jwksUrl) throw new ConfigError('auth.jwt.keys', 'symmetric keys cannot be combined with jwksUrl');

  const asymmetric: JWTVerifyGetKey | undefined = cfg.jwksUrl
    ? // jose caches the set, refetches on an unknown kid at most every cooldownDuration, and
      // after cacheMaxAge anyway (key rotation).
      createRemoteJWKSet(new URL(cfg.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000, timeoutDuration: 5_000 })
    : publicKeys.length
      ? createLocalJWKSet({ keys: publicKeys })
      : undefined;
  const secrets = new Map<string, Promise<Uint8Array | CryptoKey>>();

  return async (header: JWSHeaderParameters, token: Parameters<JWTVerifyGetKey>[1]) => {
    const alg = header.alg ?? '';
    if (!algorithms.includes(alg)) throw new TokenError('algorithm not allowed');
    if (HS.test(alg)) {
      const candidates = octKeys.filter((k) => (header.kid === undefined || k.kid === header.kid) && (k.alg === undefined || k.alg === alg));
      if (candidates.length !== 1) throw new TokenError('no matching key');
      const k = candidates[0]!;
      const id = `${k.kid ?? ''}:${alg}`;
      if (!secrets.has(id)) secrets.set(id, importJWK(k, alg) as Promise<Uint8Array | CryptoKey>);
      return secrets.get(id)!;
    }
    if (!asymmetric || !asymAlgs.includes(alg)) throw new TokenError('no matching key');
    return asymmetric(header as Parameters<JWTVerifyGetKey>[0], token) as Promise<Uint8Array | CryptoKey>;
  };
}

/** JWS compact serialisation (RFC 7515 §7.1): three base64url parts; the signature may be empty. */
export const JWT_COMPACT_FORM = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function createJwtVerifier(cfg: JwtAuthConfig, opts: { cacheSize?: number } = {}): JwtVerifier {
  const algorithms = cfg.algorithms.filter((a) => a.toLowerCase() !== 'none');
  const getKey = keyGetter(cfg, algorithms);

  // Verified tokens are remembered briefly (keyed by the token's hash, never past exp) so a
  // viewer's burst of WADO requests pays for one signature check.
  const cache = new Map<string, { payload: JWTPayload; until: number }>();
  const cacheSize = opts.cacheSize ?? 2_000;

  return {
    peek(token: string): JWTPayload | undefined {
      // Only a token verify() accepted can be in the cache: its size and form were checked then.
      const hit = cache.get(hash('sha256', token, 'base64url'));
      return hit && hit.until > Date.now() ? hit.payload : undefined;
    },
    async verify(token: string): Promise<JWTPayload> {
      if (Buffer.byteLength(token) > cfg.maxTokenBytes) throw new TokenError('token too large');
      if (!JWT_COMPACT_FORM.test(token)) throw new TokenError('malformed token');
      const key = hash('sha256', token, 'base64url');
      const hit = cache.get(key);
      const now = Date.now();
      if (hit && hit.until > now) return hit.payload;
      if (hit) cache.delete(key);
      let header: JWSHeaderParameters;
      try {
        header = decodeProtectedHeader(token) as JWSHeaderParameters;
      } catch {
        throw new TokenError('malformed token');
      }
      if (!header.alg || header.alg.toLowerCase() === 'none' || !algorithms.includes(header.alg)) throw new TokenError('algorithm not allowed');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          algorithms,
          issuer: cfg.issuer,
          audience: cfg.audience,
          clockTolerance: cfg.clockToleranceSec,
          requiredClaims: ['exp'],
        }));
      } catch (err) {
        if (err instanceof TokenError) throw err;
        const code = (err as { code?: string })?.code;
        // Remote JWKS fetch failures: timeout, network error (TypeError from fetch), non-200, bad JSON
        if (cfg.jwksUrl && (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || code === 'ERR_JOSE_GENERIC' || err instanceof TypeError)) throw new KeySetUnavailable();
        throw new TokenError(describe(err));
      }
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
      const until = Math.min(now + 60_000, (payload.exp! + cfg.clockToleranceSec) * 1000);
      cache.set(key, { payload, until });
      return payload;
    },
  };
}

function stripPrivate(k: JWK): JWK {
  // Accept a full key pair in config but only ever verify with its public half.
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = k as JWK & { oth?: unknown };
  return pub;
}

/** A short, non-sensitive reason for error_description (RFC 6750 §3). */
function describe(err: unknown): string {
  const code = (err as { code?: string })?.code ?? '';
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: string }).claim;
      return claim === 'nbf' ? 'token not yet valid' : `invalid ${claim ?? 'claim'}`;
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'invalid signature';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'no matching key';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'algorithm not allowed';
    case 'ERR_JWKS_TIMEOUT':
      return 'key set unavailable';
    default:
      return 'invalid token';
  }
}
