/**
 * /dicomweb router. Feature modules (WADO-RS proxy, QIDO-RS, STOW-RS; listed in src/modules.ts)
 * mount here; unknown paths are 404 JSON errors.
 *
 * WADO-RS study / series / instance / frames retrievals are what a viewer asks for most, frame by
 * frame: app.ts dispatches `GET` on exactly those paths without Express's router
 * (src/http/fast-lane.ts, decisions.md D136), through the same handlers. So a module adds checks
 * that run before every route with useCheck() and those GET routes with getRetrieve(); a plain
 * router.use()/router.get() on such a path would be skipped by the lane.
 */
import { Router, type RequestHandler } from 'express';
import type { AppDeps } from '../deps.js';
import { GatewayError } from '../http/errors.js';

export type DicomwebModule = (router: Router, deps: AppDeps) => void;

/** The retrieval routes of the lane (PS3.18 §10.4.1.1 study / series / instance, §10.4.1.6 frames). */
export const RETRIEVE_ROUTES = {
  study: '/studies/:study',
  series: '/studies/:study/series/:series',
  instance: '/studies/:study/series/:series/instances/:instance',
  frames: '/studies/:study/series/:series/instances/:instance/frames/:frames',
} as const;
export type RetrieveShape = keyof typeof RETRIEVE_ROUTES;

interface RouterLanes {
  /** router.use handlers, in order: they run before every route */
  checks: RequestHandler[];
  /** per shape, the GET handlers of that path in registration order (the router's order) */
  routes: Map<RetrieveShape, RequestHandler[]>;
  /** per shape, the whole chain: checks, the routes, the router's last handler (unknown resource → 404) */
  chains: Map<RetrieveShape, RequestHandler[]>;
}

const lanes = new WeakMap<Router, RouterLanes>();

/** router.use(handler) that the retrieve lane runs too; only before the first retrieve route. */
export function useCheck(router: Router, handler: RequestHandler): void {
  const l = lanes.get(router);
  if (l && l.routes.size) throw new Error('useCheck after a retrieve route: the router would run it after that route');
  router.use(handler);
  l?.checks.push(handler);
}

/** router.get on a retrieval path, recorded for the lane of its shape. */
export function getRetrieve(router: Router, shape: RetrieveShape, handler: RequestHandler): void {
  router.get(RETRIEVE_ROUTES[shape], handler);
  const l = lanes.get(router);
  if (!l) return;
  const list = l.routes.get(shape) ?? [];
  list.push(handler);
  l.routes.set(shape, list);
}

export interface RetrieveLane {
  /** the router's handlers for this path, in the router's order */
  handlers: readonly RequestHandler[];
  /** where the route's own handlers start in `handlers` (checks before) */
  routeAt: number;
  routePath: string;
  params: Record<string, string>;
}

/**
 * The lane for a path under /dicomweb, or undefined (the router takes it): only the four
 * retrieval shapes, literal segments as the router matches them (case-sensitive), no empty,
 * dot or percent-encoded segment (the router decodes and normalises those; it keeps them).
 */
export function retrieveLaneOf(router: Router, path: string): RetrieveLane | undefined {
  const l = lanes.get(router);
  if (!l || !path.startsWith('/studies/') || path.includes('%') || path.includes('\\')) return undefined;
  const s = path.split('/');
  for (let i = 2; i < s.length; i++) if (s[i] === '' || s[i] === '.' || s[i] === '..') return undefined;
  let shape: RetrieveShape;
  const params: Record<string, string> = { study: s[2]! };
  if (s.length === 3) shape = 'study';
  else if (s[3] !== 'series') return undefined;
  else if (s.length === 5) shape = 'series';
  else if (s[5] !== 'instances') return undefined;
  else if (s.length === 7) shape = 'instance';
  else if (s.length === 9 && s[7] === 'frames') shape = 'frames';
  else return undefined;
  if (s.length > 4) params.series = s[4]!;
  if (s.length > 6) params.instance = s[6]!;
  if (s.length > 8) params.frames = s[8]!;
  const handlers = l.chains.get(shape);
  return handlers && { handlers, routeAt: l.checks.length, routePath: RETRIEVE_ROUTES[shape], params };
}

export function createDicomwebRouter(deps: AppDeps, modules: readonly DicomwebModule[]): Router {
  const router = Router({ caseSensitive: true });
  const l: RouterLanes = { checks: [], routes: new Map(), chains: new Map() };
  lanes.set(router, l);
  for (const mount of modules) mount(router, deps);
  const notFound: RequestHandler = () => {
    throw new GatewayError(404, 'GW_DICOMWEB_NOT_FOUND', 'Unknown DICOMweb resource');
  };
  router.all('/{*rest}', notFound);
  for (const [shape, routes] of l.routes) l.chains.set(shape, [...l.checks, ...routes, notFound]);
  assertLanesMatch(router, l);
  return router;
}

interface StackLayer {
  handle: unknown;
  route?: { path: unknown; methods: Record<string, boolean>; stack: Array<{ handle: unknown }> };
}

/**
 * At start: every router.use is a lane check (useCheck), and every GET on a
 * retrieval path is in its lane — a module that bypassed useCheck/getRetrieve fails here, not in
 * production with a skipped check.
 */
function assertLanesMatch(router: Router, l: RouterLanes): void {
  const paths = new Map(Object.entries(RETRIEVE_ROUTES).map(([k, v]) => [v as string, k as RetrieveShape]));
  const laned = new Set<unknown>([...l.checks, ...[...l.routes.values()].flat()]);
  for (const layer of (router as unknown as { stack: StackLayer[] }).stack) {
    if (!layer.route && !laned.has(layer.handle)) throw new Error('a /dicomweb router.use() that the retrieve lane does not run: use useCheck()');
    const shape = layer.route ? paths.get(String(layer.route.path)) : undefined;
    if (!shape || !layer.route!.methods.get) continue;
    if (layer.route!.stack.some((h) => !laned.has(h.handle))) throw new Error(`a GET ${layer.route!.path} route the retrieve lane does not run: use getRetrieve()`);
  }
}
