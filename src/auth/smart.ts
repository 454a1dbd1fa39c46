/**
 * SMART App Launch 2.x discovery (§ "Conformance": /.well-known/smart-configuration): the
 * authorization server is the configured IdP (auth.jwt.issuer), so its endpoints come from the
 * IdP's own discovery document (OpenID Connect Discovery 1.0 / RFC 8414), fetched and cached; the
 * capabilities and scopes are what this resource server honours.
 */
import type { NextFunction, Request, Response } from 'express';
import type { AuthConfig } from '../config.js';
import { GatewayError } from '../http/errors.js';

export interface IdpMetadata {
  issuer: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  jwks_uri?: string;
  introspection_endpoint?: string;
  revocation_endpoint?: string;
  registration_endpoint?: string;
  scopes_supported?: string[];
  response_types_supported?: string[];
  grant_types_supported?: string[];
  token_endpoint_auth_methods_supported?: string[];
  code_challenge_methods_supported?: string[];
}

const TTL_MS = 10 * 60_000;
const cache = new Map<string, { at: number; value: Promise<IdpMetadata> }>();

/** The IdP's discovery document (cached 10 min; a failure is remembered 30 s, so an IdP that hangs
 * does not slow every CapabilityStatement request down). */
export function idpMetadata(issuer: string): Promise<IdpMetadata> {
  const hit = cache.get(issuer);
  if (hit && Date.now() - hit.at < TTL_MS) return hit.value;
  const value = fetchMetadata(issuer);
  cache.set(issuer, { at: Date.now(), value });
  value.catch(() => cache.set(issuer, { at: Date.now() - TTL_MS + 30_000, value }));
  return value;
}

async function fetchMetadata(issuer: string): Promise<IdpMetadata> {
  const base = issuer.replace(/\/+$/, '');
  for (const p of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    const r = await fetch(`${base}${p}`, { signal: AbortSignal.timeout(5_000), redirect: 'error', headers: { accept: 'application/json' } });
    if (!r.ok) {
      await r.body?.cancel();
      continue;
    }
    const m = (await r.json()) as IdpMetadata;
    if (m && typeof m === 'object' && typeof m.token_endpoint === 'string') return m;
  }
  throw new Error('no usable discovery document');
}

/** Scopes this resource server understands (SMART v1/v2 forms, IUA transactions, RAD-107). */
export function gatewayScopes(cfg: AuthConfig): string[] {
  const types = ['DocumentReference', 'List', 'Binary', 'Bundle', 'ImagingStudy', 'Patient', 'Endpoint'];
  const out = ['openid', 'fhirUser', 'launch/patient'];
  for (const ctx of ['patient', 'user', 'system']) for (const t of types) out.push(`${ctx}/${t}.rs`);
  out.push('user/DocumentReference.cu', 'system/DocumentReference.cu', 'user/AuditEvent.rs', 'ITI-65', 'ITI-66', 'ITI-67', 'ITI-68', cfg.rad107Scope);
  return out;
}

export function smartConfiguration(cfg: AuthConfig, m: IdpMetadata): Record<string, unknown> {
  const methods = m.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  const capabilities = [
    ...(m.authorization_endpoint ? ['launch-standalone'] : []),
    ...(methods.includes('none') ? ['client-public'] : []),
    ...(methods.some((x) => x === 'client_secret_basic' || x === 'client_secret_post') ? ['client-confidential-symmetric'] : []),
    ...(methods.includes('private_key_jwt') ? ['client-confidential-asymmetric'] : []),
    ...(m.scopes_supported?.includes('openid') ? ['sso-openid-connect'] : []),
    'context-standalone-patient',
    'permission-patient',
    'permission-user',
    'permission-v1',
    'permission-v2',
  ];
  return {
    issuer: m.issuer,
    jwks_uri: m.jwks_uri,
    authorization_endpoint: m.authorization_endpoint,
    token_endpoint: m.token_endpoint,
    introspection_endpoint: cfg.introspection?.url ?? m.introspection_endpoint,
    revocation_endpoint: m.revocation_endpoint,
    registration_endpoint: m.registration_endpoint,
    grant_types_supported: m.grant_types_supported ?? ['authorization_code', 'client_credentials'],
    token_endpoint_auth_methods_supported: methods,
    response_types_supported: m.response_types_supported ?? ['code'],
    scopes_supported: [...new Set([...gatewayScopes(cfg), ...(m.scopes_supported ?? [])])],
    // SMART 2.x: S256 required, `plain` never offered.
    code_challenge_methods_supported: ['S256'],
    capabilities,
  };
}

/** The CapabilityStatement's SMART extension (rest.security, "oauth-uris"). */
export function oauthUrisExtension(m: IdpMetadata) {
  const uris: Array<[string, string | undefined]> = [
    ['authorize', m.authorization_endpoint],
    ['token', m.token_endpoint],
    ['introspect', m.introspection_endpoint],
    ['revoke', m.revocation_endpoint],
    ['register', m.registration_endpoint],
  ];
  return {
    url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
    extension: uris.filter(([, v]) => v).map(([url, v]) => ({ url, valueUri: v! })),
  };
}

/** GET handler for /.well-known/smart-configuration and /fhir/.well-known/smart-configuration. */
export function smartConfigurationHandler(cfg: AuthConfig) {
  return async (_req: Request, res: Response, next: NextFunction) => {
    if (!cfg.jwt) return next(new GatewayError(404, 'GW_NOT_FOUND', 'No OAuth authorization server is configured'));
    let m: IdpMetadata;
    try {
      m = await idpMetadata(cfg.jwt.issuer);
    } catch {
      return next(new GatewayError(503, 'GW_AUTH_UNAVAILABLE', "The identity provider's discovery document cannot be obtained; try again shortly", { headers: { 'Retry-After': '5' } }));
    }
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(smartConfiguration(cfg, m));
  };
}
