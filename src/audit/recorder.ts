/**
 * The audit trail's writer: one AuditEvent per request (product ask 14), built when the response
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
import { insertAuditEvents } from '../store/audit-store.js';
import type { Db } from '../store/db.js';
import { buildAuditEvent, type AuditRecord } from './balp.js';
import type { AuditedAction } from './types.js';

export interface AuditRecorderOptions {
  db: Db;
  log: Logger;
  serverUrl: string;
  maxQueue?: number;
  batchSize?: number;
  flushDelayMs?: number;
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
  stats(): { queued: number; written: number; dropped: number; failures: number };
}

export function createAuditRecorder(o: AuditRecorderOptions): AuditRecorder {
  const maxQueue = o.maxQueue ?? 50_000;
  const batchSize = o.batchSize ?? 500;
  const delay = o.flushDelayMs ?? 50;
  let queue: AuditRecord[] = [];
  let written = 0;
  let dropped = 0;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  const schedule = (ms = delay) => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void drain();
    }, ms);
    timer.unref();
  };

  const writeAll = async (): Promise<void> => {
    while (queue.length) {
      const batch = queue.slice(0, batchSize);
      try {
        await insertAuditEvents(o.db, batch);
        queue = queue.slice(batch.length);
        written += batch.length;
      } catch (err) {
        failures++;
        o.log.error({ err: { name: (err as Error).name, code: (err as { code?: string }).code }, queued: queue.length }, 'audit write failed; will retry');
        schedule(1_000);
        return;
      }
    }
  };
  // One writer at a time; `.finally` runs after the assignment even when there is nothing to
  // write (an async IIFE that finishes synchronously would leave a stale promise behind).
  const drain = (): Promise<void> => (running ??= writeAll().finally(() => {
      running = undefined;
      if (queue.length) schedule();
    }));

  const enqueue = (r: AuditRecord) => {
    if (queue.length >= maxQueue) {
      queue.shift();
      dropped++;
      if (dropped === 1 || dropped % 1000 === 0) o.log.error({ dropped }, 'audit queue full: oldest events dropped');
    }
    queue.push(r);
    o.onRecord?.(r);
    if (queue.length >= batchSize) void drain();
    else schedule();
  };

  const middleware = (req: Request, res: Response, next: NextFunction) => {
    let done = false;
    const record = () => {
      if (done) return;
      done = true;
      try {
        const q = req.originalUrl.indexOf('?');
        // Refused before the policy ran (401, 429): classify here so the event names the attempt.
        const access: { action: AuditedAction; decision?: { breakGlass?: boolean } } = res.locals.access ?? { action: o.classify(req.method, q >= 0 ? req.originalUrl.slice(0, q) : req.originalUrl) };
        enqueue(
          buildAuditEvent({
            id: randomUUID(),
            recorded: new Date(),
            requestId: req.requestId,
            method: req.method,
            status: res.statusCode,
            aborted: !res.writableFinished,
            principal: req.principal,
            action: access?.action,
            info: res.locals.audit,
            breakGlass: Boolean(access?.decision?.breakGlass),
            clientIp: req.ip ?? req.socket.remoteAddress,
            userAgent: req.get('user-agent'),
            rawQuery: q >= 0 ? req.originalUrl.slice(q + 1) : undefined,
            serverUrl: o.serverUrl,
          }),
        );
      } catch (err) {
        o.log.error({ err: { name: (err as Error).name, stack: (err as Error).stack?.split('\n').slice(1, 4).join(' | ') } }, 'audit event could not be built');
      }
    };
    res.once('finish', record);
    res.once('close', record);
    next();
  };

  return {
    middleware,
    enqueue,
    async flush() {
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      while (queue.length) {
        const before = written;
        await drain();
        if (written === before) break; // database unavailable: keep the rest queued
      }
      if (running) await running;
    },
    async close() {
      await this.flush();
      closed = true;
    },
    stats: () => ({ queued: queue.length, written, dropped, failures }),
  };
}
