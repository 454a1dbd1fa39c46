/**
 * DocumentReference read and ITI-67 Find Document References (MHD ITI-67): both docrefs of each
 * manifest (KOS and FHIR form, `format` selects), every MHD parameter plus the four MADO ones.
 */
import type { DocumentReference, Resource } from '@medplum/fhirtypes';
import type { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { patientFilter, principalOf, type PatientFilter } from '../../auth/principal.js';
import { notFound } from '../../http/errors.js';
import { patientsByIds, type SearchRow } from '../../store/search-sql.js';
import { readDocumentReference } from '../../store/resource-read.js';
import { registerResource } from '../registry.js';
import type { SearchPlan } from '../search/plan.js';
import { INCLUDES, registryParams, UNSUPPORTED } from '../search/params.js';
import { MAX_INCLUDES, type IncludeResult } from '../search/execute.js';
import type { RawResource } from '../format.js';
import { metaValues, mountSearch, sendRead, withMeta } from './common.js';

/** Search row → DocumentReference (meta and body selected apart, see search-sql.ts). */
export function renderDocRefRow(row: SearchRow): Resource {
  const r = { resourceType: 'DocumentReference', ...JSON.parse(row.body_text as string), ...(row.meta ? { meta: row.meta } : {}) } as DocumentReference;
  return withMeta(r, String(row.version_id ?? 1), row.last_updated as Date);
}

/** The same resource as JSON text without parsing the stored body (same content as renderDocRefRow). */
export function renderDocRefRowJson(row: SearchRow): RawResource {
  const { versionId, lastUpdated } = metaValues(String(row.version_id ?? 1), row.last_updated as Date);
  const meta = JSON.stringify({ ...((row.meta as object | null) ?? {}), versionId, lastUpdated });
  const body = row.body_text as string; // a jsonb object's text: "{...}"
  const rest = body.length > 2 ? `,${body.slice(1)}` : '}';
  return { resourceType: 'DocumentReference', id: row.id, json: `{"resourceType":"DocumentReference","meta":${meta}${rest}` };
}

/** _include=DocumentReference:subject (and ImagingStudy:patient, List:subject): the Patients of a page. */
export async function includePatients(deps: AppDeps, plan: SearchPlan, rows: SearchRow[], pf: PatientFilter): Promise<IncludeResult> {
  if (!plan.include.some((i) => /:(subject|patient)$/.test(i))) return { resources: [] };
  const ids = [...new Set(rows.map((r) => r.patient_id as string | null).filter((x): x is string => !!x))];
  const found = await patientsByIds(deps.db, ids.slice(0, MAX_INCLUDES), pf);
  return { resources: found.map((p) => withMeta(p.resource as unknown as Resource, String(p.last_updated.getTime()), p.last_updated)), capped: ids.length > MAX_INCLUDES };
}

export function mountDocumentReference(router: Router, deps: AppDeps): void {
  registerResource({
    type: 'DocumentReference',
    profile: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.DocumentReference',
    supportedProfiles: [
      'https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoDicomKosDocumentReference',
      'https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoFhirDocumentReference',
    ],
    interactions: ['read', 'search-type'],
    searchParams: registryParams('DocumentReference'),
    unsupportedSearchParams: UNSUPPORTED.DocumentReference,
    searchInclude: INCLUDES.DocumentReference,
  });
  mountSearch(router, deps, 'DocumentReference', {
    table: 'DocumentReference',
    subtype: 'ITI-67',
    render: renderDocRefRow,
    renderJson: renderDocRefRowJson,
    patientOf: (r) => r.patient_id as string | null,
    includes: (plan, rows, _res, pf) => includePatients(deps, plan, rows, pf),
  });
  router.get('/DocumentReference/:id', async (req, res) => {
    const id = req.params.id;
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`DocumentReference/${id}`], count: 0 };
    const row = await readDocumentReference(deps.db, id, patientFilter(principalOf(req)));
    if (!row) throw notFound('DocumentReference');
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`DocumentReference/${id}`], patientIds: row.patient_id ? [row.patient_id] : [], count: 1 };
    sendRead(req, res, row.resource as unknown as Resource, String(row.version_id), row.last_updated);
  });
}
