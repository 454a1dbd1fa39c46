/**
 * /fhir router. Feature modules (listed in src/modules.ts) mount their handlers; this file owns only
 * what is common: the CapabilityStatement, Accept/_format checks, unknown types (404) and
 * unsupported methods (405).
 */
import { findUnstorableText } from '../model/text.js';
import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { AppDeps } from '../deps.js';
import { mediaType } from '../http/body.js';
import { GatewayError } from '../http/errors.js';
import { idpMetadata, oauthUrisExtension } from '../auth/smart.js';
import { buildCapabilityStatement } from './capability.js';
import { negotiateFhirFormat, sendResource } from './format.js';
import { findResource } from './registry.js';
import { RETRIEVE_PATH } from './resources/retrieve.js';

/** Media types any /fhir write accepts (each route narrows further). */
const FHIR_WRITE_TYPES = new Set([
  'application/fhir+json',
  'application/json',
  'application/fhir+xml',
  'application/xml',
  'application/x-www-form-urlencoded', // POST [type]/_search (FHIR R4 3.1.1.3)
  'application/json-patch+json',
  'application/dicom', // POST /fhir/Binary with a raw KOS
]);

export type FhirModule = (router: Router, deps: AppDeps) => void;

/**
 * A path or parameter holding U+0000 (or an unpaired surrogate) cannot be a FHIR id, token or
 * string, and PostgreSQL refuses such text: 400 before any SQL (decisions.md D94).
 */
function decodedPath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

export function refuseUnstorableRequest(path: string, params: unknown): void {
  const f = findUnstorableText(path, 'path') ?? findUnstorableText(params, '');
  if (f) throw new GatewayError(400, 'GW_BAD_CHARACTER', `${f.path === 'path' ? 'The request path' : `Parameter "${f.path.split(/[.[]/)[0]!.slice(0, 40)}"`} holds ${f.char}, which no FHIR value can carry`);
}

/** Per router: its checks that run before every route, and the GET [type] search handlers. */
const lanes = new WeakMap<Router, { checks: RequestHandler[]; searches: Map<string, RequestHandler> }>();

/** Record `GET /<type>` as a search route of `router` (app.ts dispatches it directly, http/fast-lane.ts). */
export function registerSearchRoute(router: Router, type: string, handler: RequestHandler): void {
  lanes.get(router)?.searches.set(type, handler);
}

/** The handlers a `GET /fhir/<type>` search runs inside this router, in the router's order; undefined: not a search route. */
export function searchLaneOf(router: Router, type: string): RequestHandler[] | undefined {
  const lane = lanes.get(router);
  const h = lane?.searches.get(type);
  return lane && h ? [...lane.checks, h] : undefined;
}

/** Refuse unproducible Accept values before doing any work (406). */
function acceptCheck(req: Request, _res: Response, next: NextFunction): void {
  // ITI-68 retrieve (GET Binary/Bundle) negotiates itself: application/dicom is acceptable there.
  if (!((req.method === 'GET' || req.method === 'HEAD') && RETRIEVE_PATH.test(req.path))) negotiateFhirFormat(req);
  next();
}

/**
 * Early body checks for every write (413 on a declared oversize body, 415 on a type no FHIR route
 * accepts); routes still enforce the limit while reading chunked bodies.
 */
function bodyCheck(deps: AppDeps): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    refuseUnstorableRequest(decodedPath(req.path), {});
    if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
      const declared = Number(req.get('content-length'));
      if (Number.isFinite(declared) && declared > deps.config.limits.maxBodyBytes) {
        req.resume();
        throw new GatewayError(413, 'GW_BODY_TOO_LARGE', `Request body exceeds the maximum of ${deps.config.limits.maxBodyBytes} bytes`);
      }
      const mt = mediaType(req);
      if (!FHIR_WRITE_TYPES.has(mt)) {
        // POST /fhir/Binary also takes a raw KOS: say so where it applies.
        const dicom = req.method === 'POST' && /^\/Binary\/?$/.test(req.path) ? ', or application/dicom (a KOS)' : '';
        throw new GatewayError(415, 'GW_UNSUPPORTED_MEDIA_TYPE', `Content-Type "${mt || '(none)'}" is not supported; use application/fhir+json or application/fhir+xml${dicom}`);
      }
    }
    next();
  };
}

export function createFhirRouter(deps: AppDeps, modules: readonly FhirModule[]): Router {
  const router = Router({ caseSensitive: true, strict: false });
  const checks = [acceptCheck, bodyCheck(deps)];
  lanes.set(router, { checks, searches: new Map() });
  for (const c of checks) router.use(c);
  const version = deps.version;
  router.get('/metadata', async (req, res) => {
    // SMART App Launch: rest.security names the authorization server's endpoints (from its discovery).
    const jwt = deps.config.auth.jwt;
    const idp = jwt ? await idpMetadata(jwt.issuer).catch(() => undefined) : undefined;
    sendResource(req, res, buildCapabilityStatement(deps.config.publicBaseUrl, version, { authEnabled: deps.config.auth.enabled, oauthUris: idp ? oauthUrisExtension(idp) : undefined }));
  });
  router.all('/metadata', () => {
    throw new GatewayError(405, 'GW_METHOD_NOT_ALLOWED', 'Only GET is supported on /metadata', { headers: { Allow: 'GET' } });
  });
  for (const mount of modules) mount(router, deps);

  // Anything left: unknown type → 404, known type with an unsupported interaction → 405.
  router.all('/{*rest}', (req) => {
    const type = req.path.split('/')[1] ?? '';
    const def = findResource(type);
    if (!def) throw new GatewayError(404, 'GW_UNKNOWN_RESOURCE_TYPE', type ? `Resource type "${type}" is not supported` : 'Unknown FHIR route');
    throw new GatewayError(405, 'GW_METHOD_NOT_ALLOWED', `${req.method} is not supported on ${type}`);
  });
  return router;
}
