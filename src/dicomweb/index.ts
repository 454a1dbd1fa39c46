/**
 * The DICOMweb feature module: QIDO-RS (RAD-129) from the manifest index and the
 * streaming WADO-RS proxy (RAD-107). Mounted under /dicomweb via src/modules.ts.
 */
import type { Router } from 'express';
import type { AppDeps } from '../deps.js';
import { MetadataCache } from './metadata.js';
import { rejectTraversal } from './params.js';
import { mountQido } from './qido.js';
import { useCheck } from './routes.js';
import { UpstreamRegistry } from './upstream.js';
import { mountWado } from './wado.js';

/** Registries by config, so tests and shutdown can close the upstream pools. */
const registries = new WeakMap<object, UpstreamRegistry>();

export function upstreamRegistryOf(config: object): UpstreamRegistry | undefined {
  return registries.get(config);
}

export function dicomwebModule(router: Router, deps: AppDeps): void {
  useCheck(router, rejectTraversal);
  const registry = new UpstreamRegistry(deps.config.upstreams);
  registries.set(deps.config, registry);
  const cache = new MetadataCache({ maxBytes: 128 * 1024 * 1024, maxEntries: 2000, ttlMs: 300_000, maxUpstreamBytes: 256 * 1024 * 1024 });
  mountQido(router, deps);
  mountWado(router, { deps, registry, cache });
}
