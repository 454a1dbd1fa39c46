/**
 * /dicomweb router. Feature modules (WADO-RS proxy, QIDO-RS, STOW-RS; listed in src/modules.ts)
 * mount here; unknown paths are 404 JSON errors.
 */
import { Router } from 'express';
import type { AppDeps } from '../deps.js';
import { GatewayError } from '../http/errors.js';

export type DicomwebModule = (router: Router, deps: AppDeps) => void;

export function createDicomwebRouter(deps: AppDeps, modules: readonly DicomwebModule[]): Router {
  const router = Router({ caseSensitive: true });
  for (const mount of modules) mount(router, deps);
  router.all('/{*rest}', () => {
    throw new GatewayError(404, 'GW_DICOMWEB_NOT_FOUND', 'Unknown DICOMweb resource');
  });
  return router;
}
