/**
 * Prometheus metrics: request count and latency per route template (never the raw URL, which
 * carries UIDs and identifiers), DB pool gauges, process metrics. One Registry per app instance.
 */
import type { NextFunction, Request, Response } from 'express';
import client from 'prom-client';

export interface Metrics {
  registry: client.Registry;
  middleware: (req: Request, res: Response, next: NextFunction) => void;
}

type PoolStats = { used: number; free: number; pendingAcquires: number };

export function createMetrics(poolStats?: () => PoolStats): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const requests = new client.Counter({ name: 'http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const duration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  if (poolStats) {
    const g = (name: string, help: string, pick: (s: PoolStats) => number) =>
      new client.Gauge({ name, help, registers: [registry], collect() { this.set(pick(poolStats())); } });
    g('db_pool_connections_used', 'DB pool connections in use', (s) => s.used);
    g('db_pool_connections_free', 'DB pool idle connections', (s) => s.free);
    g('db_pool_pending_acquires', 'Requests waiting for a DB connection', (s) => s.pendingAcquires);
  }
  // The labelled children per (method, route, status): prom-client hashes the label set on every
  // unlabelled call; a handful of combinations recur on every request.
  const children = new Map<string, { inc: () => void; observe: (v: number) => void }>();
  const childFor = (method: string, route: string, status: string) => {
    const key = `${method} ${status} ${route}`;
    let c = children.get(key);
    if (!c) {
      const r = requests.labels(method, route, status);
      const d = duration.labels(method, route, status);
      c = { inc: () => r.inc(), observe: (v) => d.observe(v) };
      if (children.size < 10_000) children.set(key, c);
    }
    return c;
  };
  const middleware = (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.once('close', () => {
      const c = childFor(req.method, routeTemplate(req), String(res.statusCode));
      c.inc();
      c.observe(Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };
  return { registry, middleware };
}

/** "/fhir/:type/:id" style template of the matched route, or a coarse bucket. */
export function routeTemplate(req: Request): string {
  const r = (req as Request & { route?: { path?: unknown } }).route;
  if (r && typeof r.path === 'string') return (req.baseUrl || '') + r.path;
  const p = req.originalUrl || req.url;
  if (p.startsWith('/fhir')) return '/fhir/*';
  if (p.startsWith('/dicomweb')) return '/dicomweb/*';
  return 'unmatched';
}
