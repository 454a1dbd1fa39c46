/**
 * The audit trail's writer: the AuditEvents of every request (one per patient concerned), built when the response
 * finishes (or the connection closes) from what the route annotated (res.locals.audit), the
 * policy's classification (res.locals.access) and the principal — so requests no handler
 * annotated, and those refused before any handler ran (401/403/429), are recorded too.
 * Never delays the response: events go to an in-process bounded queue and are written in
 * batches (one multi-row INSERT). If the database is down the queue keeps them (bounded, oldest
 * dropped and counted); close() flushes what is left on shutdown.
 * Not audited: CORS preflight, /healthz, /readyz, /metrics, /openapi.yaml (no data, probes).
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../log.js';
import type { Db } from '../store/db.js';
import { writeQueue, type QueueState } from './batch-writer.js';
import { buildAuditEvents, type AuditInput, type AuditRecord } from './balp.js';
import type { StoreQuery } from './entities.js';
import type { AuditedAction } from './types.js';

export interface AuditRecorderOptions {
  db: Db;
  log: Logger;
  serverUrl: string;
  maxQueue?: number;
  batchSize?: number;
  flushDelayMs?: number;
  /** entity[query].query: the raw request (default) or its SHA-256 (config audit.storeQuery) */
  storeQuery?: StoreQuery;
  /** Each event also goes here (syslog export) */
  onRecord?: (r: AuditRecord) => void;
  /** What a request is, for requests refused before the policy classified them (401, 429) */
  classify: (method: string, path: string) => AuditedAction;
}

export interface AuditRecorder {
  middleware: (req: Request, res: Response, next: NextFunction) => void;
  /** Enqueue an already-built record (tests, other event sources) */
  enqueue(r: AuditRecord): void;
  /** Write everything queued so far */
  flush(): Promise<void>;
  close(): Promise<void>;
  stats(): { queued: number; written: number; dropped: number; failures: number; cleaned: number; rejected: number };
}

export function createAuditRecorder(o: AuditRecorderOptions): AuditRecorder {
  const queue = createAuditQueue(o);
  return { ...queue, middleware: auditMiddleware(o, queue.enqueue) };
}

type AuditQueue = Omit<AuditRecorder, 'middleware'>;

/** Bounded in-memory queue written in batches by one writer at a time. */
function createAuditQueue(o: AuditRecorderOptions): AuditQueue {
  const maxQueue = o.maxQueue ?? 50_000;
  const batchSize = o.batchSize ?? 500;
  const delay = o.flushDelayMs ?? 50;
  const st: QueueState & { dropped: number; closed: boolean } = { queue: [], inFlight: 0, written: 0, cleaned: 0, rejected: 0, dropped: 0, failures: 0, closed: false };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const schedule = (ms = delay) => {
    if (timer || st.closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void drain();
    }, ms);
    timer.unref();
  };
  const writeAll = async () => {
    if (!(await writeQueue(o.db, o.log, st, batchSize))) schedule(1_000);
  };
  // One writer at a time; `.finally` runs after the assignment even when there is nothing to
  // write (an async IIFE that finishes synchronously would leave a stale promise behind).
  const drain = (): Promise<void> => (running ??= writeAll().finally(() => {
      running = undefined;
      if (st.queue.length) schedule();
    }));

  const enqueue = (r: AuditRecord) => {
    if (st.queue.length >= maxQueue && st.queue.length > st.inFlight) {
      st.queue.splice(st.inFlight, 1); // the oldest not being written now
      st.dropped++;
      if (st.dropped === 1 || st.dropped % 1000 === 0) o.log.error({ dropped: st.dropped }, 'audit queue full: oldest events dropped');
    }
    o.onRecord?.(r);
    // Queued: the row without its object tree (the stored text holds it all), so what waits for
    // the next batch is a few objects per event, not the resource's dozens.
    st.queue.push({ ...r, resource: undefined });
    if (st.queue.length >= batchSize) void drain();
    else schedule();
  };

  return {
    enqueue,
    async flush() {
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      while (st.queue.length) {
        const before = st.written + st.rejected;
        await drain();
        if (st.written + st.rejected === before) break; // database unavailable: keep the rest queued
      }
      if (running) await running;
    },
    async close() {
      await this.flush();
      st.closed = true;
    },
    stats: () => ({ queued: st.queue.length, written: st.written, dropped: st.dropped, failures: st.failures, cleaned: st.cleaned, rejected: st.rejected }),
  };
}

/** Records the request's AuditEvents once the response has finished or the connection closed. */
function auditMiddleware(o: AuditRecorderOptions, enqueue: (r: AuditRecord) => void) {
  return (req: Request, res: Response, next: NextFunction) => {
    const record = () => {
      try {
        for (const r of buildAuditEvents(auditInput(o, req, res))) enqueue(r);
      } catch (err) {
        o.log.error({ err: { name: (err as Error).name, stack: (err as Error).stack?.split('\n').slice(1, 4).join(' | ') } }, 'audit event could not be built');
      }
    };
    // 'close' follows 'finish' on every response, and comes alone when the connection drops
    // first (Node http): one listener sees both ends.
    res.on('close', record);
    next();
  };
}

function auditInput(o: AuditRecorderOptions, req: Request, res: Response): AuditInput {
  const q = req.originalUrl.indexOf('?');
  const path = q >= 0 ? req.originalUrl.slice(0, q) : req.originalUrl;
  // Refused before the policy ran (401, 429): classify here so the event names the attempt.
  const access: { action: AuditedAction; decision?: { breakGlass?: boolean } } = res.locals.access ?? { action: o.classify(req.method, path) };
  return {
    id: randomUUID(),
    recorded: new Date(),
    requestId: req.requestId,
    method: req.method,
    path,
    status: res.statusCode,
    aborted: !res.writableFinished,
    principal: req.principal,
    action: access?.action,
    info: res.locals.audit,
    breakGlass: Boolean(access?.decision?.breakGlass),
    // Without X-Forwarded-For, Express's req.ip is the socket's address whatever `trust proxy` says
    clientIp: (req.headers['x-forwarded-for'] === undefined ? req.socket.remoteAddress : req.ip) ?? req.socket.remoteAddress,
    userAgent: req.get('user-agent'),
    rawQuery: q >= 0 ? req.originalUrl.slice(q + 1) : undefined,
    serverUrl: o.serverUrl,
    storeQuery: o.storeQuery,
  };
}
