/**
 * Authentication: who is calling. Bearer JWT (OAuth2/OIDC, IUA ITI-72), HTTP Basic for service
 * accounts (scrypt hashes from config), or a TLS client certificate when the gateway terminates
 * TLS itself. The result is a Principal (src/auth/principal.ts) on req.principal; the policy
 * (src/auth/policy.ts) then decides what it may do.
 *
 * Failures are 401 with a WWW-Authenticate challenge (RFC 6750 §3, RFC 7617); IUA §3.72.4.2:
 * any token failure → 401. Reasons in error_description are generic (no token content echoed).
 */
import { hash, scrypt, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response } from 'express';
import type { JWTPayload } from 'jose';
import type { AuthConfig, BasicUser } from '../config.js';
import { GatewayError } from '../http/errors.js';
import { createIntrospector, IntrospectionUnavailable } from './introspection.js';
import { createJwtVerifier, JWT_COMPACT_FORM, KeySetUnavailable, TokenError, type JwtVerifier } from './jwt.js';
import { LOOPBACK_PRINCIPAL, type Principal, type Role } from './principal.js';
import { scopesFromClaims } from './scopes.js';

export const REALM = 'mado-gateway';
const ROLES = new Set<Role>(['radiologist', 'referring', 'technologist', 'administrator']);

/** Paths any caller may use (probes, discovery; CORS preflight is answered before this). */
export function isPublicPath(method: string, path: string): boolean {
  if (path === '/healthz' || path === '/readyz' || path === '/metrics' || path === '/openapi.yaml' || path === '/.well-known/smart-configuration') return true;
  if ((path === '/fhir/metadata' || path === '/fhir/metadata/') && (method === 'GET' || method === 'HEAD')) return true;
  // The web page's own files (no patient data; the page then calls the APIs with its token)
  if (isUiPath(method, path)) return true;
  // SMART discovery document, if a module serves it
  return path === '/fhir/.well-known/smart-configuration';
}

/** GET of the web page's static files, and `/` (redirects to /ui/). */
export function isUiPath(method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && (path === '/' || path === '/ui' || path.startsWith('/ui/'));
}

export interface Authenticator {
  /** undefined = no credentials presented */
  authenticate(req: Request): Promise<Principal | undefined>;
  /** The principal of a bearer JWT verified moments ago (still cached), without awaiting; else undefined. */
  recent(req: Request): Principal | undefined;
  challenge(error?: string, description?: string): string;
}

export function createAuthenticator(cfg: AuthConfig): Authenticator {
  const jwt: JwtVerifier | undefined = cfg.jwt ? createJwtVerifier(cfg.jwt) : undefined;
  const bearer = createBearerVerifier(cfg, jwt);
  // The verifier and the introspector hand back the same claims object while a token is cached:
  // its Principal is built once (principals are replaced, never modified, downstream).
  const principals = new WeakMap<object, Principal>();
  const principalOf = (claims: Record<string, unknown>): Principal => {
    let p = principals.get(claims);
    if (!p) principals.set(claims, (p = principalFromClaims(claims, cfg)));
    return p;
  };
  const basic = createBasicVerifier(cfg.basic);
  const bearerEnabled = Boolean(cfg.jwt || cfg.introspection);

  const challenge = (error?: string, description?: string, scheme?: 'Bearer' | 'Basic') => {
    const parts: string[] = [];
    if (bearerEnabled && scheme !== 'Basic') {
      let c = `Bearer realm="${REALM}"`;
      if (error) c += `, error="${error}"`;
      if (description) c += `, error_description="${description.replace(/["\\]/g, '')}"`;
      parts.push(c);
    }
    if (cfg.basic.length && scheme !== 'Bearer') parts.push(`Basic realm="${REALM}", charset="UTF-8"`);
    return parts.join(', ') || `Bearer realm="${REALM}"`;
  };

  const unauthorized = (error: string | undefined, description: string, scheme?: 'Bearer' | 'Basic') =>
    new GatewayError(401, 'GW_UNAUTHORIZED', description === 'missing credentials' ? 'Authentication required' : `Authentication failed: ${description}`, {
      headers: { 'WWW-Authenticate': challenge(error, error ? description : undefined, scheme) },
    });

  return {
    challenge,
    recent(req) {
      const h = req.headers.authorization;
      if (!jwt || !h || h.length < 8 || h.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
      const claims = jwt.peek(h.slice(7).trim());
      return claims ? principalOf(claims as Record<string, unknown>) : undefined;
    },
    async authenticate(req) {
      const h = req.get('authorization');
      if (!h) return certificatePrincipal(req, cfg);
      const sp = h.indexOf(' ');
      const scheme = (sp < 0 ? h : h.slice(0, sp)).toLowerCase();
      const cred = sp < 0 ? '' : h.slice(sp + 1).trim();
      if (scheme === 'bearer') {
        if (!bearer) throw unauthorized('invalid_token', 'bearer tokens are not accepted', 'Bearer');
        try {
          return principalOf(await bearer(cred));
        } catch (err) {
          if (err instanceof KeySetUnavailable || err instanceof IntrospectionUnavailable) {
            // Product ask 10: a reason and a retry hint, not a misleading 401.
            const what = err instanceof KeySetUnavailable ? "key set" : 'token introspection endpoint';
            throw new GatewayError(503, 'GW_AUTH_UNAVAILABLE', `The identity provider's ${what} cannot be reached; try again shortly`, { headers: { 'Retry-After': '5' } });
          }
          throw unauthorized('invalid_token', err instanceof TokenError ? err.message : 'invalid token', 'Bearer');
        }
      }
      if (scheme === 'basic') {
        const user = await basic(cred);
        if (!user) throw unauthorized(undefined, 'invalid credentials', 'Basic');
        return { kind: 'service', subject: user.username, roles: knownRoles(user.roles), scopes: [...user.scopes], breakGlass: false, authMethod: 'basic' };
      }
      throw unauthorized('invalid_request', 'unsupported authorization scheme');
    },
  };
}

/**
 * Bearer tokens: a JWT is verified locally when auth.jwt is configured; anything else (an opaque
 * token, or a JWT when only introspection is configured) goes to RFC 7662 introspection.
 */
function createBearerVerifier(cfg: AuthConfig, jwt: JwtVerifier | undefined): ((token: string) => Promise<Record<string, unknown>>) | undefined {
  const introspector = cfg.introspection
    ? createIntrospector(cfg.introspection, { audience: cfg.jwt?.audience, issuer: cfg.jwt?.issuer, clockToleranceSec: cfg.jwt?.clockToleranceSec })
    : undefined;
  if (!jwt && !introspector) return undefined;
  return async (token) => {
    const looksJwt = JWT_COMPACT_FORM.test(token);
    if (jwt && (looksJwt || !introspector)) return (await jwt.verify(token)) as Record<string, unknown>;
    return introspector!.introspect(token);
  };
}

function certificatePrincipal(req: Request, cfg: AuthConfig): Principal | undefined {
  const cert = cfg.mtls ? peerCertificate(req) : undefined;
  if (!cert || !cfg.mtls) return undefined;
  const roles = cfg.mtls.roles[cert.dn] ?? (cert.cn ? cfg.mtls.roles[cert.cn] : undefined) ?? [];
  return { kind: 'service', subject: cert.dn, roles: knownRoles(roles), scopes: [], breakGlass: false, authMethod: 'mtls' };
}

function knownRoles(roles: readonly string[]): Role[] {
  return roles.filter((r): r is Role => ROLES.has(r as Role));
}

/** Express middleware: req.principal for every request; 401 when credentials are required. */
export function authenticationMiddleware(cfg: AuthConfig) {
  if (!cfg.enabled) {
    // Loopback-only deployment (config.ts refuses anything else without auth).
    return (req: Request, _res: Response, next: NextFunction) => {
      req.principal = LOOPBACK_PRINCIPAL;
      next();
    };
  }
  const auth = createAuthenticator(cfg);
  const full = async (req: Request, next: NextFunction) => {
    const publicPath = isPublicPath(req.method, req.path);
    try {
      const p = await auth.authenticate(req);
      if (p) {
        req.principal = p;
        return next();
      }
    } catch (err) {
      // A public path answers even when a bad token is presented (probes, CapabilityStatement).
      if (!publicPath) return next(err);
    }
    if (publicPath) return next();
    next(new GatewayError(401, 'GW_UNAUTHORIZED', 'Authentication required', { headers: { 'WWW-Authenticate': auth.challenge() } }));
  };
  return (req: Request, _res: Response, next: NextFunction) => {
    // A token verified moments ago: the same principal, without the promise chain of a verification.
    const p = auth.recent(req);
    if (!p) return full(req, next);
    req.principal = p;
    next();
  };
}

/** Claim names when only introspection is configured (auth.jwt absent). */
const DEFAULT_CLAIMS = { roleClaim: 'roles', patientClaim: 'patient', careRelationshipClaim: 'care_patients', patientIdentifierClaim: undefined as string | undefined };

export function principalFromClaims(claims: JWTPayload | Record<string, unknown>, cfg: AuthConfig): Principal {
  const c = claims as Record<string, unknown>;
  const names = cfg.jwt ?? DEFAULT_CLAIMS;
  // IHE IUA puts its claims under extensions.ihe_iua (JWT, ITI-71) or at the top level (introspection)
  const iua = { ...(claimAt(c, 'extensions.ihe_iua') as Record<string, unknown> | undefined), ...c };
  const clientId = str(c.client_id) ?? str(c.azp) ?? str(c.cid);
  const subject = str(c.sub) ?? clientId ?? 'unknown';
  const roles = knownRoles([...toStrings(claimAt(c, names.roleClaim)), ...toStrings(iua.subject_role)]);
  const purposeOfUse = [...new Set([...toStrings(cfg.breakGlass ? claimAt(c, cfg.breakGlass.purposeOfUseClaim) : c.purpose_of_use), ...toStrings(iua.purpose_of_use)])];
  const bgValue = cfg.breakGlass?.value;
  const breakGlassRequested = Boolean(bgValue && purposeOfUse.some((v) => v === bgValue || v.endsWith(`|${bgValue}`) || v.endsWith(`#${bgValue}`)));
  const care = toIdentifiers(claimAt(c, names.careRelationshipClaim));
  const launchIdentifier = names.patientIdentifierClaim ? toIdentifiers(claimAt(c, names.patientIdentifierClaim))[0] : undefined;
  // Client-credentials tokens (SMART Backend Services) carry no end user: sub = client id.
  const kind: Principal['kind'] = !c.sub || (clientId !== undefined && c.sub === clientId) ? 'system' : 'user';
  return {
    kind,
    subject,
    issuer: str(c.iss),
    clientId,
    jti: str(c.jti),
    roles,
    scopes: scopesFromClaims(c),
    breakGlass: false,
    authMethod: 'bearer',
    patientContext: str(c[names.patientClaim]),
    patientIdentifier: launchIdentifier,
    careRelationship: care.length ? care : undefined,
    purposeOfUse: purposeOfUse.length ? purposeOfUse : undefined,
    homeCommunityId: str(iua.home_community_id),
    nationalProviderId: str(iua.national_provider_identifier),
    breakGlassRequested,
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** A claim by dotted path ("realm_access.roles"), or the literal name if it contains dots. */
function claimAt(c: Record<string, unknown>, path: string): unknown {
  if (path in c) return c[path];
  let cur: unknown = c;
  for (const k of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function toStrings(v: unknown): string[] {
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  // a single Coding (IUA subject_role / purpose_of_use)
  if (v && typeof v === 'object' && !Array.isArray(v)) return toStrings([v]);
  if (Array.isArray(v)) {
    return v.flatMap((x) => {
      if (typeof x === 'string') return [x];
      // purpose of use as a Coding {system, code}
      if (x && typeof x === 'object' && typeof (x as { code?: unknown }).code === 'string') return [(x as { code: string }).code];
      return [];
    });
  }
  return [];
}

function toIdentifiers(v: unknown): Array<{ system: string; value: string }> {
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  const out: Array<{ system: string; value: string }> = [];
  for (const x of list.slice(0, 1000)) {
    if (typeof x === 'string') {
      const bar = x.indexOf('|');
      if (bar < 0) continue; // bare values are never matched without their issuer (product ask 7)
      const system = x.slice(0, bar);
      const value = x.slice(bar + 1);
      if (value) out.push({ system, value });
    } else if (x && typeof x === 'object') {
      const o = x as { system?: unknown; value?: unknown };
      if (typeof o.value === 'string' && o.value) out.push({ system: typeof o.system === 'string' ? o.system : '', value: o.value });
    }
  }
  return out;
}

/** scrypt verification with a short cache of successful checks (scrypt is deliberately slow). */
function createBasicVerifier(users: readonly BasicUser[]) {
  const byName = new Map(users.map((u) => [u.username, u]));
  const ok = new Map<string, { user: BasicUser; until: number }>();
  // Unknown users still pay for one scrypt so timing does not reveal which names exist.
  const dummy = users[0]?.passwordHash ?? 'scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  return async (cred: string): Promise<BasicUser | undefined> => {
    if (!byName.size || cred.length > 4096) return undefined;
    const cacheKey = hash('sha256', cred, 'base64url');
    const hit = ok.get(cacheKey);
    if (hit && hit.until > Date.now()) return hit.user;
    let decoded: string;
    try {
      decoded = Buffer.from(cred, 'base64').toString('utf8');
    } catch {
      return undefined;
    }
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const name = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const user = byName.get(name);
    const good = await verifyScrypt(password, user?.passwordHash ?? dummy);
    if (!user || !good) return undefined;
    if (ok.size > 1000) ok.clear();
    ok.set(cacheKey, { user, until: Date.now() + 60_000 });
    return user;
  };
}

export async function verifyScrypt(password: string, stored: string): Promise<boolean> {
  const [, saltB64, hashB64] = stored.split('$');
  const salt = Buffer.from(saltB64 ?? '', 'base64');
  const expected = Buffer.from(hashB64 ?? '', 'base64');
  if (!expected.length) return false;
  const actual = await new Promise<Buffer>((resolve, reject) => scrypt(password, salt, expected.length, (err, key) => (err ? reject(err) : resolve(key))));
  return timingSafeEqual(actual, expected);
}

/** The verified client certificate's subject ("CN=…,O=…") when the TLS layer authorised it. */
function peerCertificate(req: Request): { dn: string; cn?: string } | undefined {
  const sock = req.socket as TLSSocket;
  if (!sock.encrypted || !sock.authorized || typeof sock.getPeerCertificate !== 'function') return undefined;
  const cert = sock.getPeerCertificate();
  if (!cert || !cert.subject) return undefined;
  const subj = cert.subject as unknown as Record<string, string | string[]>;
  const dn = Object.entries(subj)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(',');
  const cn = typeof subj.CN === 'string' ? subj.CN : undefined;
  return { dn, cn };
}
