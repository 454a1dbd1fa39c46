/**
 * Per-identity rate limit (token bucket in memory; 429 + Retry-After), a per-request time limit
 * for non-streaming routes (503 with a reason instead of a hang — product ask 10), and HSTS when
 * the gateway terminates TLS itself.
 */
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response } from 'express';
import { GatewayError, sendError } from '../http/errors.js';

export function rateLimitMiddleware(requestsPerMinute: number, opts: { maxKeys?: number; now?: () => number } = {}) {
  const capacity = requestsPerMinute;
  const perMs = requestsPerMinute / 60_000;
  const maxKeys = opts.maxKeys ?? 100_000;
  const now = opts.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (req: Request, _res: Response, next: NextFunction) => {
    const p = req.principal;
    const key = p && p.kind !== 'loopback' ? `${p.issuer ?? ''}|${p.subject}` : `ip:${req.ip ?? ''}`;
    const t = now();
    let b = buckets.get(key);
    if (!b) {
      if (buckets.size >= maxKeys) {
        // Drop refilled (idle) buckets first; a full bucket carries no state worth keeping.
        for (const [k, v] of buckets) if (v.tokens + (t - v.at) * perMs >= capacity) buckets.delete(k);
        if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value!);
      }
      b = { tokens: capacity, at: t };
      buckets.set(key, b);
    } else {
      b.tokens = Math.min(capacity, b.tokens + (t - b.at) * perMs);
      b.at = t;
    }
    if (b.tokens < 1) {
      const retry = Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
      return next(new GatewayError(429, 'GW_RATE_LIMITED', `Rate limit of ${requestsPerMinute} requests per minute exceeded`, { headers: { 'Retry-After': String(retry) } }));
    }
    b.tokens -= 1;
    next();
  };
}

/**
 * 503 when a handler has not started its response within `ms`. Streaming routes (WADO-RS, ITI-68
 * Binary) are exempt: once their headers are out the time limit no longer applies, and their
 * upstream timeouts (UpstreamConfig) produce the 504.
 */
export function handlerTimeoutMiddleware(ms: number) {
  return (req: Request, res: Response, next: NextFunction) => {
    const timer = setTimeout(() => {
      if (res.headersSent || res.writableEnded) return;
      req.log?.warn({ ms }, 'request time limit reached');
      sendError(req, res, { status: 503, code: 'GW_TIMEOUT', message: `The request did not complete within ${ms} ms`, headers: { 'Retry-After': '5' } });
    }, ms);
    timer.unref();
    // node emits 'close' on every response, after 'finish' or on an aborted one: one listener suffices.
    res.once('close', () => clearTimeout(timer));
    next();
  };
}

export function hstsMiddleware(req: Request, res: Response, next: NextFunction): void {
  if ((req.socket as TLSSocket).encrypted) res.setHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
  next();
}
