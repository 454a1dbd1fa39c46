/** Endpoint read/search (MadoWadoEndpoint, MadoWebViewerEndpoint). */
import type { Resource } from '@medplum/fhirtypes';
import type { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { patientFilter, principalOf } from '../../auth/principal.js';
import { notFound } from '../../http/errors.js';
import type { SearchRow } from '../../store/search-sql.js';
import { readEndpoint } from '../../store/resource-read.js';
import { registerResource } from '../registry.js';
import { registryParams } from '../search/params.js';
import { publicEndpoint } from '../mapping/index.js';
import { endpointPolicy, mountSearch, sendRead, versionFromTime, withMeta } from './common.js';

export function mountEndpoint(router: Router, deps: AppDeps): void {
  const policy = endpointPolicy(deps.config);
  registerResource({
    type: 'Endpoint',
    profile: 'https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoWadoEndpoint',
    supportedProfiles: ['https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoWebViewerEndpoint'],
    interactions: ['read', 'search-type'],
    searchParams: registryParams('Endpoint'),
  });
  mountSearch(router, deps, 'Endpoint', {
    table: 'Endpoint',
    subtype: 'search',
    render: (row: SearchRow) => withMeta(publicEndpoint(row.resource as Record<string, unknown>, policy) as Resource, versionFromTime(row.last_updated as Date), row.last_updated as Date),
  });
  router.get('/Endpoint/:id', async (req, res) => {
    const id = req.params.id;
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`Endpoint/${id}`], count: 0 };
    const row = await readEndpoint(deps.db, id, patientFilter(principalOf(req)));
    if (!row) throw notFound('Endpoint');
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`Endpoint/${id}`], count: 1 };
    sendRead(req, res, publicEndpoint(row.resource as Record<string, unknown>, policy) as unknown as Resource, versionFromTime(row.last_updated), row.last_updated);
  });
}
