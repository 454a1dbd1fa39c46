/**
 * Shared pieces of the query-API route modules: conditional reads (ETag W/"versionId",
 * Last-Modified, If-None-Match → 304) and search route mounting (GET [type] and POST [type]/_search).
 */
import type { Config } from '../../config.js';
import type { EndpointPolicy } from '../mapping/index.js';
import type { Resource } from '@medplum/fhirtypes';
import type { Request, RequestHandler, Response, Router } from 'express';
import { registerSearchRoute } from '../routes.js';
import type { AppDeps } from '../../deps.js';
import { notModified } from '../../http/conditional.js';
import { sendResource } from '../format.js';
import { handleSearch, type SearchHandler } from '../search/execute.js';

export function weakEtag(versionId: string | number): string {
  return `W/"${versionId}"`;
}


/** Versioned metadata for a stored resource (tables without a version column use the last update). */
export function withMeta<T extends Resource>(r: T, versionId: string, lastUpdated: Date): T {
  // jsonb reorders keys: put resourceType first again for readability.
  const { resourceType, ...rest } = r;
  return { resourceType, ...rest, meta: { ...(r.meta ?? {}), ...metaValues(versionId, lastUpdated) } } as T;
}

/** meta.versionId / meta.lastUpdated of a served resource (from the row, not the stored JSON). */
export function metaValues(versionId: string, lastUpdated: Date): { versionId: string; lastUpdated: string } {
  return { versionId, lastUpdated: lastUpdated.toISOString() };
}

export function versionFromTime(d: Date): string {
  return String(d.getTime());
}

/** Send a read with ETag / Last-Modified, or 304 when If-None-Match matches. */
export function sendRead(req: Request, res: Response, resource: Resource, versionId: string, lastUpdated: Date): void {
  const etag = weakEtag(versionId);
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', lastUpdated.toUTCString());
  if (notModified(req.get('if-none-match'), etag)) {
    res.status(304).end();
    return;
  }
  sendResource(req, res, withMeta(resource, versionId, lastUpdated));
}

export function mountSearch(router: Router, deps: AppDeps, type: string, h: SearchHandler): void {
  const search: RequestHandler = (req, res) => handleSearch(req, res, deps, type, h);
  router.get(`/${type}`, search);
  registerSearchRoute(router, type, search);
  router.post(`/${type}/_search`, search);
}

/** How Endpoint addresses are served (contract: PUBLIC_BASE_URL/dicomweb where an upstream serves the series). */
export function endpointPolicy(config: Readonly<Config>): EndpointPolicy {
  return { publicBaseUrl: config.publicBaseUrl, publicEndpoints: config.publicEndpoints, upstreams: config.upstreams };
}
