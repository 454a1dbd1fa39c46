/**
 * WADO-RS (RAD-107) through the gateway: study / series / instance retrieval, frames, metadata,
 * rendered and thumbnail, bulkdata. The order (decisions.md D40): validate → negotiate → authorise
 * (locate) → stream.
 *
 * - Authorisation and routing come from src/store/imaging-index.ts: an unreferenced, rejected or
 *   hidden instance is a 404 without any upstream request (existence does not leak).
 * - Study/series retrieval is filtered to the instances of visible current manifests while it
 *   streams (SUPPL §X.1.1.3); instance, frames, rendered and bulkdata bodies pass through unchanged.
 * - Upstream failure before headers → 502 (504 on timeout) JSON; after headers → the socket is
 *   destroyed, never a clean-looking truncated multipart (decisions.md D41).
 */
import { randomBytes } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import type { AppDeps } from '../deps.js';
import { patientFilter, principalOf } from '../auth/principal.js';
import { modalityOfSopClass } from '../dicom/sop-class-modality.js';
import { notModified } from '../http/conditional.js';
import { GatewayError } from '../http/errors.js';
import { visibleInstances, type VisibleInstance } from '../store/imaging-index.js';
import { negotiate, type ResourceKind } from './accept.js';
import {
  datasetsOf,
  decodeBulkToken,
  encoded,
  etagFor,
  etagOf,
  join,
  MetadataCache,
  etagsOf,
  pickEncoding,
  upstreamStatusError,
  type Representation,
} from './metadata.js';
import { boundaryOf, MultipartParser, PART_HEAD } from './multipart.js';
import { frameList, uidParam } from './params.js';
import type { StreamResponse } from './http1.js';
import { getRetrieve } from './routes.js';
import { upstreamFailure, type Upstream, type UpstreamRegistry } from './upstream.js';

const PASS_HEADERS = ['content-type', 'etag', 'last-modified', 'content-range', 'accept-ranges'];
const RENDER_PARAMS = ['quality', 'viewport', 'window', 'iccprofile'];

export interface WadoContext {
  deps: AppDeps;
  registry: UpstreamRegistry;
  cache: MetadataCache;
}

const enc = encodeURIComponent;

function studyPath(study: string, series?: string, sop?: string): string {
  let p = `/studies/${enc(study)}`;
  if (series) p += `/series/${enc(series)}`;
  if (sop) p += `/instances/${enc(sop)}`;
  return p;
}

/** AbortController tied to the client connection (client abort → upstream request aborted). */
function clientSignal(res: Response): AbortSignal {
  const ac = new AbortController();
  // express, metrics, access log and pipeline's end-of-stream all listen for 'close' too
  res.setMaxListeners(30);
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

function audit(res: Response, rows: VisibleInstance[], entities: string[]): void {
  const patientIds = [...new Set(rows.map((r) => r.patientId).filter((p): p is string => !!p))];
  res.locals.audit = { subtype: 'RAD-107', action: 'R', patientIds, entities, count: new Set(rows.map((r) => r.sop)).size };
}

async function authorise(ctx: WadoContext, req: Request, study: string, series?: string, sop?: string): Promise<VisibleInstance[]> {
  const rows = await visibleInstances(ctx.deps.db, patientFilter(principalOf(req)), study, series, sop);
  if (rows.length === 0) {
    const what = sop ? 'Instance' : series ? 'Series' : 'Study';
    throw new GatewayError(404, 'GW_DICOMWEB_NOT_FOUND', `${what} not found`);
  }
  return rows;
}

function routeOf(ctx: WadoContext, row: VisibleInstance): Upstream {
  const u = ctx.registry.route(row);
  if (!u) throw new GatewayError(502, 'GW_DICOMWEB_NO_UPSTREAM', 'No configured upstream archive serves this series');
  return u;
}

/** Visible instances grouped by the upstream that holds their series, in index order. */
function groupByUpstream(ctx: WadoContext, rows: VisibleInstance[]): Array<{ upstream: Upstream; rows: VisibleInstance[] }> {
  const groups = new Map<string, { upstream: Upstream; rows: VisibleInstance[] }>();
  for (const r of rows) {
    const u = routeOf(ctx, r);
    let g = groups.get(u.name);
    if (!g) groups.set(u.name, (g = { upstream: u, rows: [] }));
    g.rows.push(r);
  }
  return [...groups.values()];
}

/** W3C trace context is forwarded (decisions.md D42); nothing else from the caller's headers is. */
function trace(req: Request): Record<string, string> {
  const tp = req.get('traceparent');
  return tp && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(tp) ? { traceparent: tp } : {};
}

function copyHeaders(res: Response, headers: Record<string, string | string[] | undefined>, withLength: boolean): void {
  for (const h of PASS_HEADERS) {
    const v = headers[h];
    if (typeof v === 'string') res.setHeader(h, v);
  }
  const length = headers['content-length'];
  if (withLength && typeof length === 'string') res.setHeader('content-length', length);
}

function streamFailed(req: Request, res: Response, upstream: string, err: unknown): void {
  if (res.destroyed && !res.writableFinished && !['UND_ERR_BODY_TIMEOUT', 'UPSTREAM_BODY_TIMEOUT'].includes((err as { code?: string })?.code ?? '') && req.socket.destroyed) {
    req.log.debug({ upstream }, 'wado stream: client went away');
  } else {
    req.log.warn({ upstream, err: { name: (err as Error)?.name, code: (err as { code?: string })?.code } }, 'wado stream aborted after headers');
  }
  res.destroy();
}

/**
 * Nothing written to the client is still queued in the process: the socket took every byte at
 * once (the kernel copied them), so no write references the read buffer any more and reading may
 * go on at once. Otherwise the next read waits for the write callbacks (backpressure, and the
 * reader's buffer is reused).
 */
function drained(res: Response): boolean {
  return res.writableLength === 0;
}

/**
 * Write an upstream body to the response as it arrives: each slice by reference, the next read
 * at once when the socket took it whole (drained), else once the writes have been flushed.
 */
function pump(up: StreamResponse, res: Response): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let unflushed = 0;
    const flushed = () => {
      if (--unflushed === 0) up.resume();
    };
    up.read({
      data: (b) => {
        unflushed++;
        // corked: written to the socket now, not on the next tick (node corks each write until then)
        res.cork();
        res.write(b, flushed);
        res.uncork();
        return drained(res);
      },
      end: () => {
        res.end();
        resolve();
      },
      error: reject,
    });
  });
}

/**
 * Pass one upstream response through unchanged (content-length kept: the body is not altered).
 */
async function passThrough(ctx: WadoContext, req: Request, res: Response, upstream: Upstream, path: string, accept: string, kind: ResourceKind | 'thumbnail', extra: Record<string, string> = {}, on404?: () => Promise<void>): Promise<void> {
  const signal = clientSignal(res);
  const up = await upstream.stream(path, { accept, ...extra, ...trace(req) }, signal);
  if (up.status !== 200 && up.status !== 206) {
    up.destroy();
    if (up.status === 404 && on404) return on404();
    if (up.status === 416) {
      const cr = up.headers['content-range'];
      throw new GatewayError(416, 'GW_DICOMWEB_RANGE', 'Requested range not satisfiable', { headers: typeof cr === 'string' ? { 'Content-Range': cr } : {} });
    }
    if (up.status === 401) upstream.invalidateToken();
    const e = upstreamStatusError(up.status, upstream.name, kind);
    if (e.status === 404) req.log.warn({ upstream: upstream.name }, 'index and upstream disagree: upstream has no such resource');
    throw e;
  }
  res.status(up.status);
  // a chunked upstream body has no length of its own to pass on (RFC 9112 §6.3)
  copyHeaders(res, up.headers, up.headers['transfer-encoding'] === undefined);
  try {
    await pump(up, res);
  } catch (err) {
    up.destroy();
    streamFailed(req, res, upstream.name, err);
  }
}

/** Bytes of a prefetched upstream response held before it is paused (bounded memory). */
const PREFETCH_BYTES = 8 * 1024 * 1024;
/** Prefetch the next upstream's response while the current one streams (multi-upstream studies). */
const PREFETCH = true;

/** One request of a filtered retrieval: an upstream, the resource asked of it, the SOP Instance UIDs kept. */
interface RetrieveUnit {
  upstream: Upstream;
  path: string;
  keep: Set<string>;
}

/**
 * Stage 1, plan: one request per upstream — its series resource when it holds one series, else
 * the study resource (measured: per-series requests with prefetch were slower on a busy 2-core
 * host). Each keeps exactly the visible instances it serves.
 */
function retrievalPlan(ctx: WadoContext, study: string, series: string | undefined, rows: VisibleInstance[]): RetrieveUnit[] {
  return groupByUpstream(ctx, rows).map((g) => {
    const seriesUids = new Set(g.rows.map((r) => r.series));
    const only = seriesUids.size === 1 ? [...seriesUids][0] : undefined;
    return { upstream: g.upstream, path: studyPath(study, series ?? only), keep: new Set(g.rows.map((r) => r.sop)) };
  });
}

/**
 * Stage 4, frame: the one multipart body the client receives. Headers go out with the first kept
 * part (so "nothing visible at the upstream" is still a clean 404); each part is framed with the
 * body's boundary — the upstream's own when a single request serves the retrieval (its
 * Content-Type passed through), a gateway boundary otherwise. content-length is never copied.
 */
class MultipartBody {
  boundary: string | undefined;
  contentType: string | undefined;
  parts = 0;
  headersSent = false;

  constructor(private readonly res: Response, single: boolean) {
    if (single) return;
    this.boundary = 'gw-' + randomBytes(12).toString('hex');
    this.contentType = `multipart/related; type="application/dicom"; boundary=${this.boundary}`;
  }

  /** A single upstream's body keeps its own boundary and Content-Type. */
  adopt(source: PartSource): void {
    this.boundary = source.boundary;
    this.contentType = source.contentType;
  }

  readonly write = (b: Buffer, cb?: () => void): void => {
    if (!this.headersSent) {
      this.res.status(200);
      this.res.setHeader('Content-Type', this.contentType!);
      this.headersSent = true;
    }
    if (b === PART_HEAD) b = Buffer.from((this.parts++ > 0 ? '\r\n--' : '--') + this.boundary + '\r\n', 'latin1');
    this.res.write(b, cb);
  };

  end(): void {
    this.res.end(`\r\n--${this.boundary}--\r\n`);
  }
}

/**
 * Stages 2 and 3, open and filter: one upstream response, its parts filtered by SOP Instance UID
 * as they arrive. The body arrives in slices of a reused read buffer (src/dicomweb/http1.ts).
 * Before this source is the one writing to the client (prefetch), kept output is copied into a
 * bounded buffer and reading stops beyond PREFETCH_BYTES. Once it writes (streamTo), kept data
 * goes to the client by reference and the upstream reads on only when those writes have been
 * flushed to the client's socket: backpressure and buffer reuse in one rule, memory one buffer.
 */
class PartSource {
  contentType?: string;
  boundary?: string;
  private prefetched: Buffer[] = [];
  private prefetchedBytes = 0;
  private write?: (b: Buffer, cb?: () => void) => void;
  /** Client writes not yet flushed that may reference the upstream's read buffer */
  private unflushed = 0;
  private up?: StreamResponse;
  private parser?: MultipartParser;
  private done?: Promise<void>;
  private readonly flushed = () => {
    if (--this.unflushed === 0) this.up?.resume();
  };

  constructor(
    readonly unit: RetrieveUnit,
    private readonly res: Response,
  ) {}

  get partsDropped(): number {
    return this.parser?.partsDropped ?? 0;
  }

  /** Request + status check. false = upstream 404 tolerated (skip); throws GatewayError otherwise. */
  async open(req: Request, accept: string, signal: AbortSignal, tolerate404: boolean): Promise<boolean> {
    const { upstream } = this.unit;
    const up = await upstream.stream(this.unit.path, { accept, ...trace(req) }, signal);
    if (up.status !== 200 && up.status !== 206) {
      up.destroy();
      if (up.status === 404 && tolerate404) return false; // fewer instances: tolerated (SUPPL §X.1.1.3)
      if (up.status === 401) upstream.invalidateToken();
      throw upstreamStatusError(up.status, upstream.name, 'instances');
    }
    this.contentType = typeof up.headers['content-type'] === 'string' ? up.headers['content-type'] : undefined;
    this.boundary = boundaryOf(this.contentType);
    if (!this.boundary) {
      up.destroy();
      throw new GatewayError(502, 'GW_UPSTREAM_BAD_RESPONSE', `Upstream "${upstream.name}" did not answer with a multipart body`);
    }
    this.up = up;
    const keep = this.unit.keep;
    this.parser = new MultipartParser({ boundary: this.boundary, outBoundary: '', keep: (uid) => keep.has(uid), writeClose: false, headSentinel: true }, (b) => this.emit(b));
    this.done = this.readUpstream(up, this.parser);
    this.done.catch(() => {});
    return true;
  }

  /** Feed the upstream body to the parser; resolves at its end, rejects on a broken body. */
  private readUpstream(up: StreamResponse, parser: MultipartParser): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (!err) return resolve();
        up.destroy();
        reject(err);
      };
      up.read({
        data: (chunk) => {
          if (settled) return true;
          try {
            this.feed(parser, chunk);
          } catch (err) {
            finish(err as Error);
            return true;
          }
          if (!this.write) return this.prefetchedBytes <= PREFETCH_BYTES; // beyond: paused until streamTo()
          return this.unflushed === 0 || drained(this.res);
        },
        end: () => {
          try {
            parser.end();
            finish();
          } catch (err) {
            finish(err as Error);
          }
        },
        error: (err) => finish(err),
      });
    });
  }

  /** The parser's writes for one read leave in one writev. */
  private feed(parser: MultipartParser, chunk: Buffer): void {
    this.res.cork();
    try {
      parser.write(chunk);
    } finally {
      this.res.uncork();
    }
  }

  private emit(b: Buffer): void {
    if (this.write) {
      this.unflushed++;
      this.write(b, this.flushed);
      return;
    }
    const own = b === PART_HEAD ? b : Buffer.from(b); // b may be a view of the read buffer
    this.prefetched.push(own);
    this.prefetchedBytes += own.length;
  }

  /** Become the source writing to the client: flush what was prefetched, then stream to the end. */
  streamTo(body: MultipartBody): Promise<void> {
    this.write = body.write;
    const chunks = this.prefetched;
    this.prefetched = [];
    this.prefetchedBytes = 0;
    this.unflushed++; // held while the prefetched chunks are written
    for (const c of chunks) {
      this.unflushed++;
      this.write(c, this.flushed);
    }
    this.flushed();
    return this.done!;
  }

  abort(): void {
    this.up?.destroy();
  }
}

/**
 * Study / series retrieval filtered to `rows`, streaming, as a pipeline:
 *   plan (one request per upstream) → open each upstream response, the next one opened early and
 *   prefetched (bounded) while the current one streams → filter its parts by SOP Instance UID →
 *   frame the kept parts into one multipart body (SUPPL §X.1.1.3: only published instances).
 * A failure before the first byte is an HTTP error; after it the connection is destroyed, never a
 * clean-looking truncated multipart (decisions.md D41).
 */
async function filteredRetrieve(ctx: WadoContext, req: Request, res: Response, study: string, series: string | undefined, rows: VisibleInstance[], accept: string): Promise<void> {
  const sources = retrievalPlan(ctx, study, series, rows).map((u) => new PartSource(u, res));
  const single = sources.length === 1;
  const body = new MultipartBody(res, single);
  const signal = clientSignal(res);
  const opened: Array<Promise<boolean> | undefined> = [];
  const openAt = (i: number) => {
    if (i >= sources.length || opened[i]) return;
    opened[i] = sources[i]!.open(req, accept, signal, !single);
    opened[i]!.catch(() => {});
  };
  const clientGone = new Promise<never>((_, reject) => res.once('close', () => reject(new Error('client closed'))));
  clientGone.catch(() => {});
  let current = '';
  try {
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i]!;
      current = source.unit.upstream.name;
      openAt(i);
      const ok = await Promise.race([opened[i]!, clientGone]);
      if (PREFETCH) openAt(i + 1); // the next upstream's response buffers (bounded) while this one streams
      if (!ok) continue;
      if (single) body.adopt(source);
      await Promise.race([source.streamTo(body), clientGone]);
      if (source.partsDropped) req.log.debug({ upstream: current, dropped: source.partsDropped }, 'wado: unreferenced parts filtered out');
    }
  } catch (err) {
    for (const s of sources) s.abort();
    if (!body.headersSent) throw err instanceof GatewayError ? err : upstreamFailure(err, current);
    streamFailed(req, res, current, err);
    return;
  }
  if (!body.headersSent || body.parts === 0) throw new GatewayError(404, 'GW_DICOMWEB_NOT_AT_UPSTREAM', 'None of the referenced instances is available at the upstream archive');
  body.end();
}

// ---------------------------------------------------------------------------------------------
// Metadata

async function sendMetadata(req: Request, res: Response, rep: Representation): Promise<void> {
  res.setHeader('Vary', 'Accept-Encoding');
  res.setHeader('Cache-Control', 'private, no-cache');
  const encoding = pickEncoding(req.get('accept-encoding'));
  const body = await encoded(rep, encoding);
  const compressed = body !== rep.body;
  res.setHeader('ETag', etagFor(rep.etag, encoding, compressed));
  if (notModified(req.get('if-none-match'), ...etagsOf(rep.etag))) {
    res.status(304).end();
    return;
  }
  res.status(200).setHeader('Content-Type', 'application/dicom+json');
  if (compressed) res.setHeader('Content-Encoding', encoding!);
  res.setHeader('Content-Length', String(body.length));
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function seriesEntries(ctx: WadoContext, req: Request, res: Response, study: string, rows: VisibleInstance[]) {
  const signal = clientSignal(res);
  const bySeries = new Map<string, VisibleInstance[]>();
  for (const r of rows) {
    const l = bySeries.get(r.series);
    if (l) l.push(r);
    else bySeries.set(r.series, [r]);
  }
  // series metadata fetched in parallel (bounded), kept in index order
  const jobs = [...bySeries].map(([se, list]) => ({ se, list, upstream: routeOf(ctx, list[0]!) }));
  const out: Array<{ series: string; entry: Awaited<ReturnType<MetadataCache['series']>>; sops: string[] }> = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      const j = jobs[i]!;
      try {
        out[i] = { series: j.se, entry: await ctx.cache.series(j.upstream, study, j.se, ctx.deps.config.publicBaseUrl, signal), sops: j.list.map((r) => r.sop) };
      } catch (err) {
        throw upstreamFailure(err, j.upstream.name);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, jobs.length) }, worker));
  return out;
}

/** Modalities of objects that are not images (PS3.3 IODs): nothing an archive can render. */
const NOT_IMAGES = new Set(['SR', 'KO', 'PR', 'DOC', 'REG', 'FID', 'RTSTRUCT', 'RTPLAN', 'RTRECORD', 'ECG', 'HD', 'EPS', 'AU', 'M3D']);

/** The middle one of the visible image instances, by Series Instance UID then Instance Number (deterministic). */
function middleInstance(all: VisibleInstance[]): VisibleInstance {
  const images = all.filter((r) => !NOT_IMAGES.has(modalityOfSopClass(r.sopClass) ?? ''));
  const sorted = (images.length ? images : all).slice().sort((a, b) => (a.series < b.series ? -1 : a.series > b.series ? 1 : (a.instanceNumber ?? 0) - (b.instanceNumber ?? 0)));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** A thumbnail answered with the rendered middle instance (or the requested frames' rendering). */
async function thumbnailFromRendered(ctx: WadoContext, req: Request, res: Response, rows: VisibleInstance[], frames: number[] | undefined, qs: string, accept: string): Promise<void> {
  const m = frames ? rows[0]! : middleInstance(rows);
  const path = studyPath(m.study, m.series, m.sop) + (frames ? `/frames/${frames.join(',')}` : '') + '/rendered' + (qs ? `?${qs}` : '');
  await passThrough(ctx, req, res, routeOf(ctx, m), path, accept, 'thumbnail');
}

// ---------------------------------------------------------------------------------------------
// Routes

/** WADO-RS resources (PS3.18 §10.4) of RAD-107, each authorised against the manifest index. */
export function mountWado(router: Router, ctx: WadoContext): void {
  mountInstances(router, ctx);
  mountFrames(router, ctx);
  mountRendered(router, ctx);
  mountBulkdata(router, ctx);
  mountMetadata(router, ctx);
}

/** Study / series / instance (MADO "Get Instances", RAD-107 §4.107.4.0.x) */
function mountInstances(router: Router, ctx: WadoContext): void {
  getRetrieve(router, 'study', async (req, res) => {
    const study = uidParam(req, 'study');
    const accept = negotiate('instances', req.get('accept'));
    const rows = await authorise(ctx, req, study);
    audit(res, rows, [`study:${study}`]);
    await filteredRetrieve(ctx, req, res, study, undefined, rows, accept);
  });

  getRetrieve(router, 'series', async (req, res) => {
    const study = uidParam(req, 'study');
    const series = uidParam(req, 'series');
    const accept = negotiate('instances', req.get('accept'));
    const rows = await authorise(ctx, req, study, series);
    audit(res, rows, [`study:${study}`, `series:${series}`]);
    await filteredRetrieve(ctx, req, res, study, series, rows, accept);
  });

  getRetrieve(router, 'instance', async (req, res, next) => {
    const study = uidParam(req, 'study');
    const series = uidParam(req, 'series');
    const sop = uidParam(req, 'instance');
    const accept = negotiate('instances', req.get('accept'));
    const rows = await visibleInstances(ctx.deps.db, patientFilter(principalOf(req)), study, series, sop);
    // not in the index: a KOS the gateway stores itself answers in a later route, anything else is a 404 there
    if (rows.length === 0) return next();
    audit(res, rows, [`study:${study}`, `series:${series}`, `instance:${sop}`]);
    await passThrough(ctx, req, res, routeOf(ctx, rows[0]!), studyPath(study, series, sop), accept, 'instances');
  });

}

/** Frames (Frame Pixel Data) — bodies pass through unchanged */
function mountFrames(router: Router, ctx: WadoContext): void {
  getRetrieve(router, 'frames', async (req, res) => {
    const study = uidParam(req, 'study');
    const series = uidParam(req, 'series');
    const sop = uidParam(req, 'instance');
    const frames = frameList(req);
    const accept = negotiate('frames', req.get('accept'));
    const rows = await authorise(ctx, req, study, series, sop);
    const n = rows[0]!.frames;
    if (n && frames.some((f) => f > n)) throw new GatewayError(404, 'GW_DICOMWEB_NOT_FOUND', 'Frame not found');
    audit(res, rows, [`study:${study}`, `series:${series}`, `instance:${sop}`]);
    await passThrough(ctx, req, res, routeOf(ctx, rows[0]!), `${studyPath(study, series, sop)}/frames/${frames.join(',')}`, accept, 'frames');
  });

}

/** Rendered and thumbnail (instance, series, study, frames): pass through, upstream 404/406 mapped */
function mountRendered(router: Router, ctx: WadoContext): void {
  for (const what of ['rendered', 'thumbnail'] as const) {
    const handler = (level: 'study' | 'series' | 'instance' | 'frames') => async (req: Request, res: Response) => {
      const study = uidParam(req, 'study');
      const series = level === 'study' ? undefined : uidParam(req, 'series');
      const sop = level === 'instance' || level === 'frames' ? uidParam(req, 'instance') : undefined;
      const frames = level === 'frames' ? frameList(req) : undefined;
      const accept = negotiate('rendered', req.get('accept'));
      const query = new URLSearchParams();
      for (const k of RENDER_PARAMS) {
        const v = req.query[k];
        if (v === undefined) continue;
        if (typeof v !== 'string' || !/^[A-Za-z0-9.,:\-]{1,64}$/.test(v)) throw new GatewayError(400, 'GW_DICOMWEB_BAD_PARAM', `Query parameter "${k}" is not valid`);
        query.set(k, v);
      }
      const rows = await authorise(ctx, req, study, series, sop);
      if (frames && rows[0]!.frames && frames.some((f) => f > rows[0]!.frames!)) throw new GatewayError(404, 'GW_DICOMWEB_NOT_FOUND', 'Frame not found');
      audit(res, rows, [`study:${study}`, ...(series ? [`series:${series}`] : []), ...(sop ? [`instance:${sop}`] : [])]);
      // a study may span upstreams: its rendered/thumbnail resource comes from the first series' upstream
      let path = studyPath(study, series, sop) + (frames ? `/frames/${frames.join(',')}` : '') + `/${what}`;
      const qs = query.toString();
      if (qs) path += `?${qs}`;
      // PS3.18 §10.4.3.3.4: a thumbnail may be any rendering of the resource; an upstream without
      // thumbnails (404) gets the rendered middle instance (or the frames) instead
      const fallback = what === 'thumbnail' ? () => thumbnailFromRendered(ctx, req, res, rows, frames, qs, accept) : undefined;
      await passThrough(ctx, req, res, routeOf(ctx, rows[0]!), path, accept, what === 'rendered' ? 'rendered' : 'thumbnail', {}, fallback);
    };
    router.get(`/studies/:study/${what}`, handler('study'));
    router.get(`/studies/:study/series/:series/${what}`, handler('series'));
    router.get(`/studies/:study/series/:series/instances/:instance/${what}`, handler('instance'));
    router.get(`/studies/:study/series/:series/instances/:instance/frames/:frames/${what}`, handler('frames'));
  }

}

/** Bulkdata: the URIs handed out in rewritten metadata (…/bulk/{tag path} or …/bulk/~{token}) */
function mountBulkdata(router: Router, ctx: WadoContext): void {
  router.get('/studies/:study/series/:series/instances/:instance/bulk/*rest', async (req, res) => {
    const study = uidParam(req, 'study');
    const series = uidParam(req, 'series');
    const sop = uidParam(req, 'instance');
    const segs = (req.params as unknown as { rest?: string[] }).rest ?? [];
    const raw = segs.join('/');
    let suffix: string | undefined;
    if (/^[0-9A-Fa-f]{8}(\/\d{1,6}\/[0-9A-Fa-f]{8}){0,8}$/.test(raw)) suffix = `/bulk/${raw}`;
    else if (segs.length === 1) suffix = decodeBulkToken(raw);
    if (!suffix) throw new GatewayError(400, 'GW_DICOMWEB_BAD_BULKDATA_URI', 'Not a bulkdata URI issued by this gateway');
    const accept = negotiate('bulkdata', req.get('accept'));
    const range = req.get('range');
    if (range !== undefined && !/^bytes=\d*-\d*(,\s*\d*-\d*){0,15}$/.test(range)) throw new GatewayError(400, 'GW_DICOMWEB_BAD_RANGE', 'Range must be bytes=first-last');
    const rows = await authorise(ctx, req, study, series, sop);
    audit(res, rows, [`study:${study}`, `series:${series}`, `instance:${sop}`]);
    await passThrough(ctx, req, res, routeOf(ctx, rows[0]!), studyPath(study, series, sop) + suffix, accept, 'bulkdata', range ? { range } : {});
  });

}

/** Metadata (study = concatenation of the visible series, PS3.18 §10.4.1.2) */
function mountMetadata(router: Router, ctx: WadoContext): void {
  router.get('/studies/:study/metadata', async (req, res) => {
    const study = uidParam(req, 'study');
    negotiate('metadata', req.get('accept'));
    const rows = await authorise(ctx, req, study);
    audit(res, rows, [`study:${study}`]);
    const entries = await seriesEntries(ctx, req, res, study, rows);
    const parts = entries.flatMap((e) => datasetsOf(e.entry, e.sops));
    const body = Buffer.concat([Buffer.from('['), ...join(parts), Buffer.from(']')]);
    await sendMetadata(req, res, { body, etag: etagOf(body) });
  });

  router.get('/studies/:study/series/:series/metadata', async (req, res) => {
    const study = uidParam(req, 'study');
    const series = uidParam(req, 'series');
    negotiate('metadata', req.get('accept'));
    const rows = await authorise(ctx, req, study, series);
    audit(res, rows, [`study:${study}`, `series:${series}`]);
    const [e] = await seriesEntries(ctx, req, res, study, rows);
    await sendMetadata(req, res, ctx.cache.view(e!.entry, e!.sops));
  });

  router.get('/studies/:study/series/:series/instances/:instance/metadata', async (req, res) => {
    const study = uidParam(req, 'study');
    const series = uidParam(req, 'series');
    const sop = uidParam(req, 'instance');
    negotiate('metadata', req.get('accept'));
    const rows = await authorise(ctx, req, study, series, sop);
    audit(res, rows, [`study:${study}`, `series:${series}`, `instance:${sop}`]);
    const [e] = await seriesEntries(ctx, req, res, study, rows);
    if (!e!.entry.instances.has(sop)) throw new GatewayError(404, 'GW_DICOMWEB_NOT_AT_UPSTREAM', 'The upstream archive does not hold this instance');
    await sendMetadata(req, res, ctx.cache.view(e!.entry, [sop], sop));
  });
}
