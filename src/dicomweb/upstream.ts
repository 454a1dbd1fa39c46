/**
 * Upstream DICOMweb archives: one bounded undici Pool per configured upstream (buffered requests:
 * series metadata), the gateway's own HTTP/1.1 exchange for streamed retrievals (http: and https:,
 * src/dicomweb/http1.ts), our service credential per upstream (none / basic / bearer / OAuth2
 * client credentials with a cached token), and the routing rule from a manifest's retrieve
 * location to an upstream.
 *
 * SSRF (SUPPL §X.5 "verify received URLs against known secure locations"): a manifest's Retrieve
 * URL only *selects* a configured upstream; the request always goes to that upstream's configured
 * base URL. No other host is ever contacted.
 */
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type tls from 'node:tls';
import type { UpstreamConfig } from '../config.js';
import { derivedUid } from '../dicom/uid.js';
import { GatewayError } from '../http/errors.js';
import { routeUpstream, type RetrieveLocation } from '../model/routing.js';
import { ConnectionPool, exchange, Slots, UpstreamTimeoutError, type StreamResponse } from './http1.js';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export type { RetrieveLocation };

interface CachedToken {
  token: string;
  expiresAt: number;
}

export class Upstream {
  readonly pool: Pool;
  readonly basePath: string;
  readonly origin: string;
  /** Streaming exchanges in flight, at most maxConnections */
  readonly streamSlots: Slots;
  /** Keep-alive connections of the streaming exchange (decisions.md D130) */
  readonly connections: ConnectionPool;
  /** Where stream() connects; `tls` set for https: */
  private readonly target: { host: string; port: number; authority: string; tls?: tls.ConnectionOptions };
  private token?: CachedToken;
  private tokenInFlight?: Promise<string>;

  constructor(readonly config: UpstreamConfig) {
    const u = new URL(config.url);
    this.origin = u.origin;
    this.basePath = u.pathname.replace(/\/+$/, '');
    this.pool = new Pool(this.origin, {
      connections: config.maxConnections,
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
      connect: { timeout: config.headersTimeoutMs },
      keepAliveTimeout: 10_000,
      keepAliveTimeoutThreshold: 500,
    });
    this.streamSlots = new Slots(config.maxConnections);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const https = u.protocol === 'https:';
    this.target = { host, port: Number(u.port || (https ? 443 : 80)), authority: u.host };
    // The same trust as the undici pool: Node's default CA store (plus NODE_EXTRA_CA_CERTS),
    // certificates verified (UpstreamConfig has no TLS settings of its own). SNI and the name
    // check use the URL's host; an IP literal is checked against the certificate's IP SANs and
    // sent without SNI (RFC 6066 §3 allows host names only).
    if (https) this.target.tls = { servername: net.isIP(host) ? undefined : host, rejectUnauthorized: true };
    this.connections = new ConnectionPool(this.target, config.maxConnections);
  }

  get name(): string {
    return this.config.name;
  }

  /** Authorization header value for this upstream (our service credential, never the client's). */
  async authorization(): Promise<string | undefined> {
    const a = this.config.auth;
    switch (a.type) {
      case 'none':
        return undefined;
      case 'basic':
        return 'Basic ' + Buffer.from(`${a.username}:${a.password}`).toString('base64');
      case 'bearer':
        return 'Bearer ' + a.token;
      case 'oauth2': {
        if (this.token && this.token.expiresAt > Date.now()) return 'Bearer ' + this.token.token;
        // single flight: concurrent requests share one token request
        this.tokenInFlight ??= this.fetchToken(a).finally(() => {
          this.tokenInFlight = undefined;
        });
        return 'Bearer ' + (await this.tokenInFlight);
      }
    }
  }

  /** Drop a cached OAuth2 token (after the upstream answered 401). */
  invalidateToken(): void {
    this.token = undefined;
  }

  private async fetchToken(a: { tokenUrl: string; clientId: string; clientSecret: string; scope?: string }): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (a.scope) form.set('scope', a.scope);
    let res: Response;
    try {
      res = await fetch(a.tokenUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          // RFC 6749 §2.3.1: client_secret_basic
          authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(a.clientId)}:${encodeURIComponent(a.clientSecret)}`).toString('base64'),
        },
        body: form,
        signal: AbortSignal.timeout(this.config.headersTimeoutMs),
      });
    } catch {
      throw new GatewayError(502, 'GW_UPSTREAM_AUTH', `Could not obtain a token for upstream "${this.name}"`);
    }
    const body = (await res.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown };
    if (!res.ok || typeof body.access_token !== 'string') throw new GatewayError(502, 'GW_UPSTREAM_AUTH', `Token endpoint of upstream "${this.name}" refused the client credentials`);
    const ttl = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300;
    // renew a little early so an in-flight request never carries an expired token
    this.token = { token: body.access_token, expiresAt: Date.now() + Math.max(1, ttl - 30) * 1000 };
    return body.access_token;
  }

  /**
   * GET `{base}{path}` (path built from validated, encoded UIDs). Resolves at response headers;
   * throws GatewayError 502/504 when the upstream cannot be reached or times out before headers.
   *
   * For bodies the gateway reads whole (series metadata JSON), through the undici pool.
   * Not for bodies streamed to a client: undici 7.30 (the last release for Node 20) throws an
   * uncatchable AssertionError from its socket 'end' handler when a close-delimited body (as
   * Orthanc sends it) ends while backpressure has paused the response (nodejs/undici#5360) — a
   * slow client could crash the process. Read at once, a body here is never paused; retrievals
   * go through stream().
   */
  async get(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<UpstreamResponse> {
    const auth = await this.authorization();
    const h: Record<string, string> = { ...headers, 'accept-encoding': 'identity' }; // decisions.md D43
    if (auth) h.authorization = auth;
    let r: Dispatcher.ResponseData;
    try {
      r = await this.pool.request({ method: 'GET', path: this.basePath + path, headers: h, signal, headersTimeout: this.config.headersTimeoutMs, bodyTimeout: this.config.bodyTimeoutMs });
    } catch (err) {
      throw upstreamFailure(err, this.name);
    }
    return { status: r.statusCode, headers: r.headers, body: r.body };
  }

  /**
   * GET `{base}{path}` for a body that is streamed to the client (retrievals): our own HTTP/1.1
   * exchange (src/dicomweb/http1.ts) on a kept-alive connection — TCP reading into one reused buffer
   * for http: (body slices are only valid until the handler lets reading go on), TLS for https:.
   * At most maxConnections at once. Same errors as get() before the head.
   */
  async stream(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<StreamResponse> {
    const auth = await this.authorization();
    const h: Record<string, string> = { ...headers, 'accept-encoding': 'identity' };
    if (auth) h.authorization = auth;
    try {
      await this.streamSlots.acquire(signal);
    } catch (err) {
      throw upstreamFailure(err, this.name);
    }
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.streamSlots.release();
      }
    };
    try {
      return await exchange(
        { ...this.target, pool: this.connections, path: this.basePath + path, headers: h, signal, headersTimeoutMs: this.config.headersTimeoutMs, bodyTimeoutMs: this.config.bodyTimeoutMs },
        release,
      );
    } catch (err) {
      release();
      throw upstreamFailure(err, this.name);
    }
  }
}

export function upstreamFailure(err: unknown, name: string): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError || err instanceof UpstreamTimeoutError || (err as { name?: string })?.name === 'TimeoutError') {
    return new GatewayError(504, 'GW_UPSTREAM_TIMEOUT', `Upstream "${name}" did not answer in time`);
  }
  if ((err as { name?: string })?.name === 'AbortError' || err instanceof undiciErrors.RequestAbortedError) {
    return new GatewayError(499, 'GW_CLIENT_CLOSED', 'Client closed the request');
  }
  return new GatewayError(502, 'GW_UPSTREAM_UNREACHABLE', `Upstream "${name}" is unreachable`);
}

/**
 * The Retrieve Location UID (0040,E011) that names this upstream in manifests the gateway writes
 * itself: the first configured one, else a UID derived from the upstream's name (stable across
 * restarts and replicas), which route() recognises too.
 */
export function locationUidOf(c: UpstreamConfig): string {
  return c.retrieveLocationUids[0] ?? derivedUid(`mado-gateway:upstream:${c.name}`);
}

export class UpstreamRegistry {
  readonly upstreams: Upstream[];
  constructor(configs: readonly UpstreamConfig[]) {
    this.upstreams = configs.map((c) => new Upstream(c));
    // An upstream is also named by the Retrieve Location UID derived from its name (locationUidOf).
    this.routable = this.upstreams.map((u) => ({ ...u.config, name: u.name, upstream: u, retrieveLocationUids: [...u.config.retrieveLocationUids, locationUidOf(u.config)] }));
  }
  private readonly routable: Array<UpstreamConfig & { name: string; upstream: Upstream }>;

  /**
   * Routing (SUPPL §X.4.1.2 addressing modes): the Retrieve URL matched against configured
   * prefixes / base URLs, else the Retrieve Location UID against configured location UIDs, else
   * the Retrieve AE Title against configured `retrieveAeTitles`, else the 'default' upstream.
   * undefined when nothing matches.
   */
  route(loc: RetrieveLocation): Upstream | undefined {
    return routeUpstream(this.routable, loc)?.upstream;
  }

  byName(name: string): Upstream | undefined {
    return this.upstreams.find((u) => u.name === name);
  }

  async close(): Promise<void> {
    for (const u of this.upstreams) u.connections.close();
    await Promise.all(this.upstreams.map((u) => u.pool.close().catch(() => {})));
  }
}
