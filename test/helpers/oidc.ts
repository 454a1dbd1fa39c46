/**
 * A real OpenID Provider / OAuth 2.0 authorization server for tests: `oidc-provider` (npm) on a
 * loopback port chosen by the OS. It issues
 * - JWT access tokens (RFC 9068, `typ: at+jwt`, RS256, keys at `jwksUrl`) and opaque access
 *   tokens, both carrying caller-chosen claims (roles, SMART `patient`, a business identifier, IUA
 *   claims, `scope`), via `token()` (issued by the provider's own token models, so they are real:
 *   stored, introspectable, revocable) or via the authorization-code + PKCE flow;
 * - RFC 7662 introspection at `introspectionUrl` for a resource-server client authenticating with
 *   `client_secret_basic` (`resourceServer`) or `private_key_jwt` (`assertionClient`).
 *
 * Browser sign-in (authorization code + PKCE, S256): register a public client with the redirect
 * URIs you need (`registerClient`, any time — e.g. after the gateway has its port). The login page
 * is oidc-provider's development form: type a user's `sub` in "login" and any password; consent is
 * implied (every requested scope is granted). The user's `claims` (e.g. `roles`) go into the access
 * token. Request `resource=<audience>` or rely on the default resource (the audience), whose
 * tokens are JWTs.
 *
 * Usage:
 *   const idp = await startOidcProvider({ users: [{ sub: 'dr-a', claims: { roles: ['radiologist'] } }] });
 *   const token = await idp.token({ sub: 'dr-a', scope: 'user/*.rs', claims: { roles: ['radiologist'] } });
 *   const opaque = await idp.token({ sub: 'dr-a', scope: 'ITI-67', format: 'opaque' });
 *   config.auth = { jwt: idp.jwtConfig(), introspection: idp.introspectionConfig() };
 *   ...; await idp.close();
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type Adapter, type AdapterPayload, type ClientMetadata, type KoaContextWithOIDC } from 'oidc-provider';

export interface TestUser {
  sub: string;
  /** Added to every access token issued to this user (roles, patient, purpose_of_use, …) */
  claims?: Record<string, unknown>;
}

export interface TokenRequest {
  /** End user (absent: a client-credentials style token, sub = client_id) */
  sub?: string;
  scope: string;
  claims?: Record<string, unknown>;
  format?: 'jwt' | 'opaque';
  /** seconds (default 300) */
  expiresIn?: number;
  /** issuing client (default 'test-app') */
  clientId?: string;
}

export interface TestIdp {
  issuer: string;
  jwksUrl: string;
  introspectionUrl: string;
  tokenUrl: string;
  authorizationUrl: string;
  /** aud of every access token issued for the default resource */
  audience: string;
  /** confidential client for introspection, client_secret_basic */
  resourceServer: { clientId: string; clientSecret: string };
  /** confidential client for introspection, private_key_jwt (RFC 7523); privateJwk includes `d` */
  assertionClient: { clientId: string; privateJwk: JWK };
  token(req: TokenRequest): Promise<string>;
  /** Revoke an issued token (introspection then answers active: false) */
  revoke(token: string): Promise<void>;
  /** Add or replace a client (e.g. a public PKCE browser client with its redirect_uris) */
  registerClient(meta: ClientMetadata): void;
  setUser(user: TestUser): void;
  /** `auth.jwt` for the gateway (remote JWKS), plus overrides */
  jwtConfig(extra?: Record<string, unknown>): Record<string, unknown>;
  /** `auth.introspection` for the gateway (client secret), plus overrides */
  introspectionConfig(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Introspection calls answered so far (to observe the gateway's cache) */
  introspections: number;
  close(): Promise<void>;
}

export interface OidcOptions {
  audience?: string;
  users?: TestUser[];
  clients?: ClientMetadata[];
}

interface State {
  issuer: string;
  audience: string;
  users: Map<string, TestUser>;
  clients: Map<string, ClientMetadata>;
  knownScopes: Set<string>;
  /** claims per issued token object (extraTokenClaims reads them) */
  tokenClaims: WeakMap<object, Record<string, unknown>>;
  keys: Awaited<ReturnType<typeof signingKeys>>;
  secret: string;
}

export async function startOidcProvider(opts: OidcOptions = {}): Promise<TestIdp> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const st: State = {
    issuer,
    audience: opts.audience ?? 'https://gateway.test/fhir',
    users: new Map((opts.users ?? []).map((u) => [u.sub, u])),
    clients: new Map<string, ClientMetadata>(),
    knownScopes: new Set<string>(),
    tokenClaims: new WeakMap(),
    keys: await signingKeys(),
    secret: 'resource-server-secret-0123456789abcdef',
  };
  for (const c of [...defaultClients(st.secret, st.keys.assertionPublic), ...(opts.clients ?? [])]) st.clients.set(c.client_id, c);
  const provider = new Provider(issuer, providerConfiguration(st));
  provider.on('introspection.error', () => undefined);
  const callback = provider.callback();
  const idp: TestIdp = {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    introspectionUrl: `${issuer}/token/introspection`,
    tokenUrl: `${issuer}/token`,
    authorizationUrl: `${issuer}/auth`,
    audience: st.audience,
    resourceServer: { clientId: 'gateway', clientSecret: st.secret },
    assertionClient: { clientId: 'gateway-pkjwt', privateJwk: st.keys.assertionPrivate },
    introspections: 0,
    token: (req) => issueToken(provider, st, req),
    async revoke(token) {
      const at = (await provider.AccessToken.find(token)) ?? (await provider.ClientCredentials.find(token));
      await at?.destroy();
    },
    registerClient: (meta) => void st.clients.set(meta.client_id, meta),
    setUser: (u) => void st.users.set(u.sub, u),
    jwtConfig: (extra = {}) => ({ issuer, audience: st.audience, jwksUrl: `${issuer}/jwks`, algorithms: ['RS256'], roleClaim: 'roles', ...extra }),
    introspectionConfig: (extra = {}) => ({ url: `${issuer}/token/introspection`, clientId: 'gateway', clientSecret: st.secret, ...extra }),
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  server.on('request', (req, res) => {
    if (req.url?.startsWith('/token/introspection')) idp.introspections++;
    void callback(req, res);
  });
  return idp;
}

const resourceServerInfo = (st: State, format: 'jwt' | 'opaque', scope: string) =>
  ({ audience: st.audience, scope, accessTokenFormat: format, accessTokenTTL: 300, jwt: { sign: { alg: 'RS256' } } }) as const;

function providerConfiguration(st: State): ConstructorParameters<typeof Provider>[1] {
  return {
    adapter: adapterFor(st.clients),
    jwks: { keys: [st.keys.signing] },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    ttl: { AccessToken: 300, ClientCredentials: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 3600, Grant: 3600 },
    findAccount: async (_ctx: KoaContextWithOIDC, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: {
      devInteractions: { enabled: true },
      // Only confidential clients (the resource server) may introspect.
      introspection: { enabled: true, allowedPolicy: async (_ctx: KoaContextWithOIDC, client: { clientAuthMethod?: string }) => client.clientAuthMethod !== 'none' } as never,
      revocation: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => st.audience,
        useGrantedResource: async () => true,
        // Test provider: any scope ever requested is a valid scope of the gateway.
        getResourceServerInfo: async (ctx: KoaContextWithOIDC) => {
          for (const s of String(ctx.oidc.params?.scope ?? '').split(' ')) if (s && s !== 'openid' && s !== 'offline_access') st.knownScopes.add(s);
          return resourceServerInfo(st, 'jwt', [...st.knownScopes].join(' '));
        },
      },
    },
    // Consent is implied for the test provider: grant whatever was asked.
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => autoGrant(ctx, st.audience),
    extraTokenClaims: async (_ctx: KoaContextWithOIDC, token: object) => ({
      ...(accountOf(token) ? st.users.get(accountOf(token)!)?.claims : undefined),
      ...st.tokenClaims.get(token),
    }),
    pkce: { required: () => true },
    clientBasedCORS: () => true,
    renderError: async (ctx: KoaContextWithOIDC, out: object) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

/** An access token issued by the provider's own models (stored, introspectable, revocable). */
async function issueToken(provider: Provider, st: State, req: TokenRequest): Promise<string> {
  const client = await provider.Client.find(req.clientId ?? 'test-app');
  if (!client) throw new Error(`unknown client ${req.clientId}`);
  const rs = new provider.ResourceServer(st.audience, resourceServerInfo(st, req.format ?? 'jwt', req.scope));
  const expiresIn = req.expiresIn ?? 300;
  let at: InstanceType<typeof provider.AccessToken> | InstanceType<typeof provider.ClientCredentials>;
  if (req.sub) {
    // A user token belongs to a grant (introspection checks it), as in the code flow.
    const grant = new provider.Grant({ accountId: req.sub, clientId: client.clientId });
    grant.addResourceScope(st.audience, req.scope);
    const grantId = await grant.save();
    at = new provider.AccessToken({ accountId: req.sub, grantId, client, scope: req.scope, gty: 'authorization_code', expiresIn, resourceServer: rs });
  } else {
    at = new provider.ClientCredentials({ client, scope: req.scope, expiresIn, resourceServer: rs } as never);
  }
  st.tokenClaims.set(at, { ...(req.sub ? st.users.get(req.sub)?.claims : undefined), ...req.claims });
  return at.save();
}

function accountOf(token: object): string | undefined {
  return (token as { accountId?: string }).accountId;
}

async function signingKeys() {
  const sign = await generateKeyPair('RS256', { extractable: true });
  const assertion = await generateKeyPair('RS256', { extractable: true });
  const assertionPrivate = { ...(await exportJWK(assertion.privateKey)), kid: 'assertion-1', alg: 'RS256' };
  const assertionPublic = { ...(await exportJWK(assertion.publicKey)), kid: 'assertion-1', alg: 'RS256', use: 'sig' };
  return { signing: { ...(await exportJWK(sign.privateKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' }, assertionPrivate, assertionPublic };
}

function defaultClients(secret: string, assertionKey: JWK): ClientMetadata[] {
  return [
    // The issuing client of `token()`; also usable for client_credentials.
    { client_id: 'test-app', client_secret: 'test-app-secret-0123456789abcdef', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    // The gateway as a resource server calling the introspection endpoint.
    { client_id: 'gateway', client_secret: secret, grant_types: [], response_types: [], redirect_uris: [] },
    {
      client_id: 'gateway-pkjwt',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS256',
      jwks: { keys: [assertionKey as never] },
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ];
}

/** Clients come from a mutable map (so redirect URIs can be set after start); the rest in memory. */
function adapterFor(clients: Map<string, ClientMetadata>) {
  const stores = new Map<string, Map<string, AdapterPayload>>();
  return class implements Adapter {
    private readonly store: Map<string, AdapterPayload>;
    constructor(private readonly name: string) {
      if (!stores.has(name)) stores.set(name, new Map());
      this.store = stores.get(name)!;
    }
    async upsert(id: string, payload: AdapterPayload) {
      this.store.set(id, payload);
    }
    async find(id: string) {
      if (this.name === 'Client') return clients.get(id) as AdapterPayload | undefined;
      return this.store.get(id);
    }
    async findByUserCode() {
      return undefined;
    }
    async findByUid(uid: string) {
      for (const p of this.store.values()) if (p.uid === uid) return p;
      return undefined;
    }
    async consume(id: string) {
      const p = this.store.get(id);
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      this.store.delete(id);
    }
    async revokeByGrantId(grantId: string) {
      for (const [k, p] of this.store) if (p.grantId === grantId) this.store.delete(k);
    }
  };
}

async function autoGrant(ctx: KoaContextWithOIDC, audience: string) {
  const { oidc } = ctx;
  if (!oidc.session?.accountId || !oidc.client) return undefined;
  const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
  const scope = String(oidc.params?.scope ?? '');
  grant.addOIDCScope(scope.split(' ').filter((s) => s === 'openid' || s === 'offline_access').join(' '));
  grant.addResourceScope(oidc.params?.resource ? String(oidc.params.resource) : audience, scope);
  await grant.save();
  return grant;
}
