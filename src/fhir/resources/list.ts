/** List read and ITI-66 Find Document Lists (SubmissionSets, MHD ITI-66). */
import type { Resource } from '@medplum/fhirtypes';
import type { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { patientFilter, principalOf } from '../../auth/principal.js';
import { notFound } from '../../http/errors.js';
import type { SearchRow } from '../../store/search-sql.js';
import { readList } from '../../store/resource-read.js';
import { registerResource } from '../registry.js';
import { INCLUDES, registryParams, UNSUPPORTED } from '../search/params.js';
import { includePatients } from './document-reference.js';
import { mountSearch, sendRead, versionFromTime, withMeta } from './common.js';

export function mountList(router: Router, deps: AppDeps): void {
  registerResource({
    type: 'List',
    profile: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.List',
    supportedProfiles: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.SubmissionSet'],
    interactions: ['read', 'search-type'],
    searchParams: registryParams('List'),
    unsupportedSearchParams: UNSUPPORTED.List,
    searchInclude: INCLUDES.List,
  });
  mountSearch(router, deps, 'List', {
    table: 'List',
    subtype: 'ITI-66',
    render: (row: SearchRow) => withMeta(row.resource as Resource, versionFromTime(row.last_updated as Date), row.last_updated as Date),
    patientOf: (r) => r.patient_id as string | null,
    includes: (plan, rows, _res, pf) => includePatients(deps, plan, rows, pf),
  });
  router.get('/List/:id', async (req, res) => {
    const id = req.params.id;
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`List/${id}`], count: 0 };
    const row = await readList(deps.db, id, patientFilter(principalOf(req)));
    if (!row) throw notFound('List');
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`List/${id}`], patientIds: row.patient_id ? [row.patient_id] : [], count: 1 };
    sendRead(req, res, row.resource as unknown as Resource, versionFromTime(row.last_updated), row.last_updated);
  });
}
