/**
 * buildApp(deps): the Express application. Middleware order matters:
 * request id → CORS (so every error carries it) → metrics → access log → security headers →
 * health/metrics → /dicomweb (streams; no body parsing) → /fhir → 404 → error handler.
 * No global body parser: each route reads its own body with a limit (src/http/body.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Config } from './config.js';
import { createSecurity, type SecurityParts } from './auth/index.js';
import { smartConfigurationHandler } from './auth/smart.js';
import type { AppDeps } from './deps.js';
import { createDicomwebRouter, retrieveLaneOf } from './dicomweb/routes.js';
import { upstreamRegistryOf } from './dicomweb/index.js';
import { createFhirRouter, searchLaneOf } from './fhir/routes.js';
import { corsMiddleware } from './http/cors.js';
import { requestIdMiddleware } from './http/context.js';
import { errorHandler, GatewayError } from './http/errors.js';
import { installFastLane, type Lane, type LanePicker } from './http/fast-lane.js';
import { createMetrics, routeTemplate, type Metrics } from './http/metrics.js';
import { pathOnly, type Logger } from './log.js';
import { dicomwebModules, fhirModules } from './modules.js';
import { poolStats, type Db } from './store/db.js';
import { migrationsComplete } from './store/migrate.js';
import { createUiRouter } from './ui/routes.js';

export type { AppDeps } from './deps.js';

export const ROOT_DIR = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(dir: string): string {
  // src/ under tsx, dist/src/ when compiled: walk up to the directory holding package.json
  let d = dir;
  for (let i = 0; i < 4; i++) {
    try {
      readFileSync(path.join(d, 'package.json'));
      return d;
    } catch {
      d = path.dirname(d);
    }
  }
  return dir;
}

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export function buildApp(deps: AppDeps, parts: SecurityParts = {}): { app: Express; metrics: Metrics } {
  const { config, db, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // ETags are set deliberately per resource
  app.set('query parser', 'extended');
  // Behind nginx/an LB the client address comes from X-Forwarded-For, trusted only from the
  // configured proxies (TRUST_PROXY); otherwise anyone could forge it.
  app.set('trust proxy', config.trustProxy);

  const metrics = createMetrics(() => poolStats(db));
  const front = [requestIdMiddleware(log), corsMiddleware(config.cors.origins), metrics.middleware, accessLog, securityHeaders];
  app.use(front);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await db.raw('select 1');
      if (!(await migrationsComplete(db))) {
        res.status(503).json({ status: 'migrations pending' });
        return;
      }
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'database unreachable' });
    }
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  const openapi = readFileSync(path.join(ROOT_DIR, 'openapi.yaml'), 'utf8');
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(openapi);
  });

  // SMART App Launch discovery: public, like the CapabilityStatement (not audited: no data).
  app.get(['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration'], smartConfigurationHandler(config.auth));

  // Security chain (src/auth/index.ts): audit → authentication → rate limit → policy → time
  // limit. Everything above (probes, metrics, openapi) is public and not audited.
  const security = createSecurity({ ...deps, registry: metrics.registry }, parts);
  app.locals.security = security;
  app.locals.config = config;
  app.use(security.handlers);

  // The web page: after the security chain, so its requests are classified and audited too.
  app.use(createUiRouter(config, path.join(ROOT_DIR, 'dist', 'ui')));
  const dicomweb = createDicomwebRouter(deps, dicomwebModules);
  app.use('/dicomweb', dicomweb);
  const fhir = createFhirRouter(deps, fhirModules);
  app.use('/fhir', fhir);

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new GatewayError(404, 'GW_NOT_FOUND', 'Not found')));
  const onError = errorHandler();
  app.use(onError);
  const appLevel = [...front, ...security.handlers];
  const searches = searchLanes(appLevel, fhir);
  const retrievals = retrieveLanes(appLevel, dicomweb);
  installFastLane(app, (method, path) => searches(method, path) ?? retrievals(method, path), onError);
  return { app, metrics };
}

/**
 * `GET /fhir/<type>` searches skip Express's router: the same app-level handlers, then the /fhir
 * router's checks and the search route (the UI, /dicomweb and public routes never match these paths).
 */
function searchLanes(appLevel: RequestHandler[], fhir: Router): LanePicker {
  const lanes = new Map<string, Lane | null>();
  return (method, path) => {
    if (method !== 'GET' || !path.startsWith('/fhir/')) return undefined;
    const type = path.slice('/fhir/'.length);
    let lane = lanes.get(type);
    if (lane === undefined) {
      const inner = /^[A-Z][A-Za-z]{0,63}$/.test(type) ? searchLaneOf(fhir, type) : undefined;
      lane = inner ? { handlers: [...appLevel, ...inner], mount: { from: appLevel.length, baseUrl: '/fhir', routePath: `/${type}` } } : null;
      if (lane || lanes.size < 256) lanes.set(type, lane);
    }
    return lane ?? undefined;
  };
}

/**
 * `GET /dicomweb/studies/…` WADO-RS study, series, instance and frames retrievals skip Express's
 * router too: the same app-level handlers, then the /dicomweb router's checks and routes
 * (src/dicomweb/routes.ts retrieveLaneOf; decisions.md D136).
 */
function retrieveLanes(appLevel: RequestHandler[], dicomweb: Router): LanePicker {
  const chains = new Map<readonly RequestHandler[], readonly RequestHandler[]>();
  return (method, path) => {
    if (method !== 'GET' || !path.startsWith('/dicomweb/studies/')) return undefined;
    const r = retrieveLaneOf(dicomweb, path.slice('/dicomweb'.length));
    if (!r) return undefined;
    let handlers = chains.get(r.handlers);
    if (!handlers) chains.set(r.handlers, (handlers = [...appLevel, ...r.handlers]));
    return { handlers, mount: { from: appLevel.length, baseUrl: '/dicomweb', routePath: r.routePath }, routeAt: appLevel.length + r.routeAt, params: r.params };
  };
}

/** One line per request: method, route template, path without query string, status, duration. */
function accessLog(req: Request, res: Response, next: NextFunction): void {
  if (!req.log.isLevelEnabled('info')) return next(); // nothing would be written
  const start = process.hrtime.bigint();
  res.once('close', () => {
    req.log.info(
      {
        method: req.method,
        route: routeTemplate(req),
        // DICOMweb paths carry Study/Series/SOP Instance UIDs (sensitive): the template is enough there.
        path: req.originalUrl.startsWith('/dicomweb') ? undefined : pathOnly(req.originalUrl),
        status: res.statusCode,
        ms: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
        aborted: !res.writableFinished,
      },
      'request',
    );
  });
  next();
}

/** Flush the audit trail and stop exporters (server shutdown, tests). */
/** Flushes the audit queue and releases the upstream connection pools this app built. */
export async function closeApp(app: Express): Promise<void> {
  await (app.locals.security as { close?: () => Promise<void> } | undefined)?.close?.();
  await upstreamRegistryOf(app.locals.config as object)?.close();
}

function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  next();
}
