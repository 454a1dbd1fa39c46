/**
 * A direct dispatch for the hottest requests (FHIR searches, WADO-RS retrievals) that runs the SAME handlers the
 * Express router would run for them, in the same order, without the router's per-layer matching
 * (path-to-regexp on every mounted route, prefix trimming, parameter processing). The composition
 * root (app.ts) picks the handler chain for a method + path; anything it does not pick goes through
 * Express unchanged. Measured on the search benchmark: Express's dispatch alone cost about 0.12 ms
 * of CPU per request, a quarter of the whole database floor's cost (decisions.md D110).
 */
import type { ErrorRequestHandler, Express, NextFunction, Request, RequestHandler, Response } from 'express';

export interface LaneMount {
  /** Where the mounted router starts in `handlers` (handlers before it run at the app level) */
  from: number;
  /** The router's mount path, e.g. '/fhir' (becomes req.baseUrl from `from` on) */
  baseUrl: string;
  /** The matched route's path inside the router (req.route.path, for route templates in metrics) */
  routePath: string;
}

export interface Lane {
  handlers: readonly RequestHandler[];
  mount: LaneMount;
  /** Where the matched route's handlers start (req.route, req.params from there); default: the last handler */
  routeAt?: number;
  /** The route's path parameters, as the router would have decoded them */
  params?: Record<string, string>;
}

export type LanePicker = (method: string, path: string) => Lane | undefined;

/**
 * Wrap app.handle: requests the picker claims run their lane; the rest go to Express's router.
 * Both share Express's request/response prototypes, so handlers see the same API.
 */
export function installFastLane(app: Express, pick: LanePicker, onError: ErrorRequestHandler): void {
  type Handle = (req: Request, res: Response, done?: NextFunction) => void;
  const withHandle = app as unknown as { handle: Handle };
  const routerHandle = withHandle.handle.bind(app);
  const reqProto = app.request;
  const resProto = app.response;
  withHandle.handle = (req, res, done) => {
    const url = req.url;
    const q = url.indexOf('?');
    const lane = pick(req.method, q === -1 ? url : url.slice(0, q));
    if (!lane) return routerHandle(req, res, done);
    req.res = res;
    res.req = req;
    Object.setPrototypeOf(req, reqProto);
    Object.setPrototypeOf(res, resProto);
    if (!res.locals) res.locals = Object.create(null) as Record<string, unknown>;
    req.originalUrl = req.originalUrl || url;
    req.baseUrl = '';
    req.params = {};
    runLane(lane, req, res, onError);
  };
}

/** The router's `next` loop for one fixed chain: errors skip to `onError` at the app level. */
function runLane(lane: Lane, req: Request, res: Response, onError: ErrorRequestHandler): void {
  const { handlers, mount } = lane;
  const routeAt = lane.routeAt ?? handlers.length - 1;
  const appUrl = req.url;
  let i = 0;
  const fail = (err: unknown) => {
    // Leaving the mounted router with an error: the app level sees the full path again.
    req.url = appUrl;
    req.baseUrl = '';
    onError(err, req, res, () => {
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
  };
  const next: NextFunction = (err?: unknown) => {
    if (err !== undefined && err !== null && err !== 'route' && err !== 'router') return fail(err);
    const h = handlers[i];
    if (!h) return; // the last handler answered (or will): nothing after it, as with Express
    if (i === mount.from) {
      req.baseUrl = mount.baseUrl;
      req.url = appUrl.slice(mount.baseUrl.length) || '/';
    }
    if (i === routeAt) {
      (req as Request & { route?: unknown }).route = { path: mount.routePath };
      if (lane.params) req.params = lane.params;
    }
    i++;
    try {
      const ret = h(req, res, next) as unknown;
      if (ret instanceof Promise) ret.then(null, (e: unknown) => next(e ?? new Error('Rejected promise')));
    } catch (e) {
      next(e);
    }
  };
  next();
}
