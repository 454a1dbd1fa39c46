/**
 * Sign-in: OAuth 2.0 authorization code with PKCE (RFC 6749 §4.1, RFC 7636 S256) against the
 * configured issuer, endpoints from OpenID Connect discovery (or the gateway's SMART
 * configuration). The access token lives in this module's memory only: a reload signs in again
 * (silently when the provider still has a session). Only the PKCE verifier, the state and the
 * place to return to are kept in sessionStorage across the redirect, and removed on return.
 */
import type { UiConfig } from './config.js';

type AuthCfg = NonNullable<UiConfig['auth']>;

interface Session {
  token: string;
  expiresAt: number;
  user: string;
}

interface Pending {
  state: string;
  verifier: string;
  returnTo: string;
}

interface Endpoints {
  authorization_endpoint: string;
  token_endpoint: string;
}

const PENDING_KEY = 'mado-gateway.sign-in';
let session: Session | undefined;
let endpoints: Endpoints | undefined;
const listeners = new Set<() => void>();

export function onSessionChange(f: () => void): void {
  listeners.add(f);
}

function changed(): void {
  for (const f of listeners) f();
}

/** The bearer token, or undefined when signed out or expired. */
export function accessToken(): string | undefined {
  if (session && Date.now() >= session.expiresAt) {
    session = undefined;
    changed();
  }
  return session?.token;
}

export function currentUser(): string | undefined {
  return accessToken() ? session?.user : undefined;
}

/** The gateway refused the token (401): forget it so the page asks to sign in again. */
export function expireSession(): void {
  if (!session) return;
  session = undefined;
  changed();
}

export function signOut(): void {
  expireSession();
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n = 32): string {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function discover(cfg: AuthCfg): Promise<Endpoints> {
  if (endpoints) return endpoints;
  const issuer = cfg.issuer.replace(/\/+$/, '');
  const sources = [`${issuer}/.well-known/openid-configuration`, '/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration'];
  for (const url of sources) {
    try {
      const r = await fetch(url, { headers: { accept: 'application/json' } });
      if (!r.ok) continue;
      const d = (await r.json()) as Partial<Endpoints>;
      if (d.authorization_endpoint && d.token_endpoint) return (endpoints = { authorization_endpoint: d.authorization_endpoint, token_endpoint: d.token_endpoint });
    } catch {
      /* next source */
    }
  }
  throw new Error(`The identity provider ${issuer} could not be reached (discovery failed)`);
}

function redirectUri(): string {
  return `${location.origin}/ui/`;
}

/** Leave for the identity provider's sign-in page. */
export async function signIn(cfg: AuthCfg): Promise<void> {
  const ep = await discover(cfg);
  const verifier = randomString(48);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = randomString(16);
  const pending: Pending = { state, verifier, returnTo: location.pathname + location.search + location.hash };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const u = new URL(ep.authorization_endpoint);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: cfg.clientId,
    redirect_uri: redirectUri(),
    scope: cfg.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  };
  if (cfg.resource) params.resource = cfg.resource;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  location.assign(u.toString());
}

function displayName(idToken: string | undefined, fallback: string): string {
  if (!idToken) return fallback;
  try {
    // Display only: the gateway verifies the access token; the ID token's name is shown to the user.
    const payload = JSON.parse(atob(idToken.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    return String(payload.name ?? payload.preferred_username ?? payload.sub ?? fallback);
  } catch {
    return fallback;
  }
}

/**
 * Back from the identity provider (?code&state, or ?error): exchange the code, restore the URL
 * the user started from. Returns false when this page load is not a sign-in return.
 */
export async function completeSignIn(cfg: AuthCfg): Promise<boolean> {
  const q = new URLSearchParams(location.search);
  const code = q.get('code');
  const error = q.get('error');
  if (!code && !error) return false;
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const pending = raw ? (JSON.parse(raw) as Pending) : undefined;
  history.replaceState(null, '', pending?.returnTo ?? '/ui/');
  if (error) throw new Error(`Sign-in refused by the identity provider: ${error}${q.get('error_description') ? ` (${q.get('error_description')})` : ''}`);
  if (!pending || pending.state !== q.get('state')) throw new Error('Sign-in answer did not match the request (state); please sign in again');
  const ep = await discover(cfg);
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri(), client_id: cfg.clientId, code_verifier: pending.verifier });
  if (cfg.resource) body.set('resource', cfg.resource);
  const r = await fetch(ep.token_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body });
  const tok = (await r.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; id_token?: string; error?: string; error_description?: string };
  if (!r.ok || !tok.access_token) throw new Error(`Sign-in failed at the token endpoint: ${tok.error ?? `HTTP ${r.status}`}${tok.error_description ? ` (${tok.error_description})` : ''}`);
  const lifetime = typeof tok.expires_in === 'number' && tok.expires_in > 0 ? tok.expires_in : 300;
  session = { token: tok.access_token, expiresAt: Date.now() + lifetime * 1000, user: displayName(tok.id_token, 'signed in') };
  changed();
  return true;
}
