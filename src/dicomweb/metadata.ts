/**
 * WADO-RS metadata (PS3.18 §10.4.1.2): upstream DICOM JSON with BulkDataURI and Retrieve URL
 * (0008,1190) rewritten to absolute URLs under PUBLIC_BASE_URL (PS3.18 §10.4),
 * so clients never see (or need to reach) the archive's internal host. Series metadata is cached
 * (bounded LRU keyed by upstream + UIDs, short TTL); responses are filtered to the instances the
 * caller may see, carry a strong ETag (If-None-Match → 304) and are served gzip/br compressed when
 * the client accepts it (product ask 2: fast metadata for big studies).
 */
import { hash } from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import { GatewayError } from '../http/errors.js';
import type { Upstream } from './upstream.js';

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

export type Dataset = Record<string, { vr?: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

const UID = '(?:0|[1-9]\\d*)(?:\\.(?:0|[1-9]\\d*))*';
const RETRIEVE_RE = new RegExp(`/studies/(${UID})(?:/series/(${UID})(?:/instances/(${UID}))?)?/?$`);
const TAG_PATH_RE = /^[0-9A-Fa-f]{8}(?:\/\d{1,6}\/[0-9A-Fa-f]{8}){0,8}$/;

function enc(u: string): string {
  return encodeURIComponent(u);
}

export function gatewayRetrieveUrl(publicBase: string, study: string, series?: string, sop?: string): string {
  let u = `${publicBase}/dicomweb/studies/${enc(study)}`;
  if (series) u += `/series/${enc(series)}`;
  if (sop) u += `/instances/${enc(sop)}`;
  return u;
}

function firstString(ds: Dataset, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}

/** Opaque bulkdata token: the upstream path below the instance, base64url. */
export function encodeBulkToken(rest: string): string {
  return '~' + Buffer.from(rest, 'utf8').toString('base64url');
}

export function decodeBulkToken(tok: string): string | undefined {
  if (!/^~[A-Za-z0-9_-]{1,2048}$/.test(tok)) return undefined;
  const rest = Buffer.from(tok.slice(1), 'base64url').toString('utf8');
  // the token may only point *below* the instance it was handed out for
  if (!/^[/?]/.test(rest) || /(^|\/)\.\.?(\/|$|\?)/.test(rest) || /[\\#\s]/.test(rest) || /%2e|%2f|%5c/i.test(rest)) return undefined;
  return rest;
}

/**
 * Rewrite one dataset in place. `upstreamBase` is the upstream's configured base URL; a
 * BulkDataURI outside it (another host) is dropped, never handed out.
 */
export function rewriteDataset(ds: Dataset, publicBase: string, upstreamBase: string, requestUrl: string, ids?: { study: string; series: string; sop: string }): void {
  const study = firstString(ds, '0020000D') ?? ids?.study;
  const series = firstString(ds, '0020000E') ?? ids?.series;
  const sop = firstString(ds, '00080018') ?? ids?.sop;
  const here = study && series && sop ? { study, series, sop } : ids;
  for (const [tag, attr] of Object.entries(ds)) {
    if (!attr || typeof attr !== 'object') continue;
    if (typeof attr.BulkDataURI === 'string') {
      const rewritten = here ? rewriteBulk(attr.BulkDataURI, publicBase, upstreamBase, requestUrl, here) : undefined;
      // a value the gateway cannot hand out is dropped with its attribute, rather than left as an
      // attribute without a value, which reads as a known empty value (PS3.18 §F.2.5)
      if (rewritten) attr.BulkDataURI = rewritten;
      else if (attr.Value === undefined && attr.InlineBinary === undefined) delete ds[tag];
      else delete attr.BulkDataURI;
    }
    if (tag === '00081190' && Array.isArray(attr.Value)) {
      attr.Value = attr.Value.map((v) => (typeof v === 'string' ? rewriteRetrieveUrl(v, publicBase) : undefined)).filter((v): v is string => v !== undefined);
      if (attr.Value.length === 0) delete ds[tag];
    }
    if (attr.vr === 'SQ' && Array.isArray(attr.Value)) {
      for (const item of attr.Value) if (item && typeof item === 'object') rewriteDataset(item as Dataset, publicBase, upstreamBase, requestUrl, here);
    }
  }
}

export function rewriteRetrieveUrl(v: string, publicBase: string): string | undefined {
  let path: string;
  try {
    path = new URL(v, 'http://x').pathname;
  } catch {
    return undefined;
  }
  const m = RETRIEVE_RE.exec(path);
  if (!m) return undefined;
  return gatewayRetrieveUrl(publicBase, m[1]!, m[2], m[3]);
}

function rewriteBulk(uri: string, publicBase: string, upstreamBase: string, requestUrl: string, ids: { study: string; series: string; sop: string }): string | undefined {
  let abs: string;
  try {
    abs = new URL(uri, requestUrl).toString();
  } catch {
    return undefined;
  }
  const base = upstreamBase.replace(/\/+$/, '') + '/';
  if (!abs.startsWith(base)) return undefined; // another host: never hand it out (SSRF)
  const rel = abs.slice(base.length);
  const instPath = `studies/${ids.study}/series/${ids.series}/instances/${ids.sop}`;
  if (!rel.startsWith(instPath)) return undefined;
  const rest = rel.slice(instPath.length);
  const prefix = `${gatewayRetrieveUrl(publicBase, ids.study, ids.series, ids.sop)}/bulk/`;
  const m = /^\/bulk\/(.+)$/.exec(rest);
  if (m && TAG_PATH_RE.test(m[1]!)) return prefix + m[1]; // Orthanc style: …/bulk/7fe00010
  return rest ? prefix + encodeBulkToken(rest) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Cache

interface SeriesEntry {
  key: string;
  /** rewritten JSON of each instance dataset, by SOP Instance UID, in upstream order */
  instances: Map<string, Buffer>;
  bytes: number;
  expires: number;
  /** assembled responses per visible set */
  views: Map<string, Representation>;
}

export interface Representation {
  body: Buffer;
  etag: string;
  gz?: Buffer;
  br?: Buffer;
}

export interface MetadataCacheOptions {
  maxBytes: number;
  maxEntries: number;
  ttlMs: number;
  maxUpstreamBytes: number;
}

export class MetadataCache {
  private readonly map = new Map<string, SeriesEntry>();
  private readonly loading = new Map<string, Promise<SeriesEntry>>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly o: MetadataCacheOptions) {}

  private get(key: string): SeriesEntry | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expires < Date.now()) {
      this.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e); // LRU: most recent last
    return e;
  }

  private delete(key: string): void {
    const e = this.map.get(key);
    if (e) {
      this.bytes -= e.bytes;
      this.map.delete(key);
    }
  }

  private put(e: SeriesEntry): void {
    this.delete(e.key);
    this.map.set(e.key, e);
    this.bytes += e.bytes;
    while ((this.bytes > this.o.maxBytes || this.map.size > this.o.maxEntries) && this.map.size > 0) {
      this.delete(this.map.keys().next().value!);
    }
  }

  /** Series metadata from cache or upstream (single flight per key). */
  async series(upstream: Upstream, study: string, series: string, publicBase: string, signal: AbortSignal): Promise<SeriesEntry> {
    const key = `${upstream.name}|${study}|${series}`;
    const hit = this.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    let p = this.loading.get(key);
    if (!p) {
      p = this.load(key, upstream, study, series, publicBase, signal).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private async load(key: string, upstream: Upstream, study: string, series: string, publicBase: string, signal: AbortSignal): Promise<SeriesEntry> {
    const path = `/studies/${enc(study)}/series/${enc(series)}/metadata`;
    const up = await upstream.get(path, { accept: 'application/dicom+json' }, signal);
    if (up.status !== 200) {
      up.body.on('error', () => {});
      up.body.destroy();
      throw upstreamStatusError(up.status, upstream.name, 'metadata');
    }
    const text = await readLimited(up.body, this.o.maxUpstreamBytes);
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new GatewayError(502, 'GW_UPSTREAM_BAD_RESPONSE', `Upstream "${upstream.name}" sent metadata that is not JSON`);
    }
    if (!Array.isArray(data)) throw new GatewayError(502, 'GW_UPSTREAM_BAD_RESPONSE', `Upstream "${upstream.name}" sent metadata that is not a JSON array`);
    const instances = new Map<string, Buffer>();
    let bytes = 0;
    const requestUrl = upstream.config.url + path;
    for (const ds of data as Dataset[]) {
      if (!ds || typeof ds !== 'object') continue;
      const sop = firstString(ds, '00080018');
      if (!sop || firstString(ds, '0020000E') !== series) continue;
      rewriteDataset(ds, publicBase, upstream.config.url, requestUrl);
      const b = Buffer.from(JSON.stringify(sortKeys(ds)));
      instances.set(sop, b);
      bytes += b.length;
    }
    const e: SeriesEntry = { key, instances, bytes: bytes * 2 + 256, expires: Date.now() + this.o.ttlMs, views: new Map() };
    this.put(e);
    return e;
  }

  /** The response body for the visible instances of a series (assembled once per visible set). */
  view(e: SeriesEntry, visible: readonly string[], onlySop?: string): Representation {
    const wanted = onlySop ? [onlySop] : visible;
    const vkey = hash('sha1', wanted.join(','), 'base64url');
    const cached = e.views.get(vkey);
    if (cached) return cached;
    const parts = datasetsOf(e, wanted);
    const body = Buffer.concat([Buffer.from('['), ...join(parts), Buffer.from(']')]);
    const rep: Representation = { body, etag: etagOf(body) };
    if (e.views.size > 32) e.views.clear();
    e.views.set(vkey, rep);
    return rep;
  }
}

export function datasetsOf(e: SeriesEntry, visible: readonly string[]): Buffer[] {
  const set = new Set(visible);
  const out: Buffer[] = [];
  for (const [sop, b] of e.instances) if (set.has(sop)) out.push(b);
  return out;
}

export function join(parts: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  const comma = Buffer.from(',');
  parts.forEach((p, i) => {
    if (i) out.push(comma);
    out.push(p);
  });
  return out;
}

export function etagOf(body: Buffer): string {
  return `"m-${hash('sha1', body, 'base64url')}"`;
}

function sortKeys(ds: Dataset): Dataset {
  // PS3.18 F.2: attributes sorted by tag
  const out: Dataset = {};
  for (const k of Object.keys(ds).sort()) out[k] = ds[k]!;
  return out;
}

export async function readLimited(body: Readable, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > max) {
      body.destroy();
      throw new GatewayError(502, 'GW_UPSTREAM_TOO_LARGE', 'Upstream metadata exceeds the configured maximum size');
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Content-Encoding for a client's Accept-Encoding: br, else gzip, else identity. */
export function pickEncoding(header: string | undefined): 'br' | 'gzip' | undefined {
  if (!header) return undefined;
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    let v = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p);
      if (m) v = Number(m[1]);
    }
    if (name) q.set(name, v);
  }
  const ok = (n: string) => (q.get(n) ?? (q.has('*') ? q.get('*')! : 0)) > 0;
  if (ok('br')) return 'br';
  if (ok('gzip')) return 'gzip';
  return undefined;
}

export async function encoded(rep: Representation, encoding: 'br' | 'gzip' | undefined): Promise<Buffer> {
  if (!encoding || rep.body.length < 1024) return rep.body;
  if (encoding === 'gzip') return (rep.gz ??= await gzip(rep.body, { level: 6 }));
  return (rep.br ??= await brotli(rep.body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: rep.body.length } }));
}

/** Our ETag in every content coding we send (If-None-Match matches any of them). */
export function etagsOf(etag: string): string[] {
  return [etag, etagFor(etag, 'gzip', true), etagFor(etag, 'br', true)];
}

export function etagFor(etag: string, encoding: 'br' | 'gzip' | undefined, compressed: boolean): string {
  if (!compressed || !encoding) return etag;
  return etag.replace(/"$/, encoding === 'gzip' ? '-gz"' : '-br"');
}

/** Upstream status (before headers were sent) → our error. */
export function upstreamStatusError(status: number, name: string, kind: string): GatewayError {
  if (status === 404) return new GatewayError(404, 'GW_DICOMWEB_NOT_AT_UPSTREAM', `The upstream archive does not hold this ${kind} resource`);
  if (status === 410) return new GatewayError(410, 'GW_DICOMWEB_GONE', `The upstream archive no longer holds this ${kind} resource`);
  if (status === 406 || ((status === 400 || status === 415) && (kind === 'rendered' || kind === 'thumbnail' || kind === 'frames' || kind === 'bulkdata'))) {
    return new GatewayError(406, 'GW_DICOMWEB_NOT_ACCEPTABLE', `The upstream archive cannot provide this ${kind} resource in an acceptable media type`);
  }
  if (status === 401 || status === 403) return new GatewayError(502, 'GW_UPSTREAM_AUTH', `Upstream "${name}" refused the gateway's credentials`);
  if (status === 429 || status === 503) return new GatewayError(503, 'GW_UPSTREAM_BUSY', `Upstream "${name}" is busy`, { headers: { 'Retry-After': '5' } });
  if (status === 504) return new GatewayError(504, 'GW_UPSTREAM_TIMEOUT', `Upstream "${name}" timed out`);
  return new GatewayError(502, 'GW_UPSTREAM_ERROR', `Upstream "${name}" answered ${status}`);
}
