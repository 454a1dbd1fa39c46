/** Patient read/search (identifier issuer-aware, name, birthdate) with _revinclude of documents and studies. */
import type { Resource } from '@medplum/fhirtypes';
import type { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { patientFilter, principalOf } from '../../auth/principal.js';
import { notFound } from '../../http/errors.js';
import { runSearch, type SearchRow } from '../../store/search-sql.js';
import { readPatient } from '../../store/resource-read.js';
import { registerResource } from '../registry.js';
import { registryParams, REVINCLUDES } from '../search/params.js';
import { MAX_INCLUDES } from '../search/execute.js';
import { renderDocRefRow } from './document-reference.js';
import { mountSearch, sendRead, versionFromTime, withMeta } from './common.js';
import { imagingStudyOf } from './imaging-study.js';
import type { Manifest } from '../../model/manifest.js';

export function mountPatient(router: Router, deps: AppDeps): void {
  const ctx = { publicBaseUrl: deps.config.publicBaseUrl, defaults: deps.config.documentDefaults };
  registerResource({
    type: 'Patient',
    profile: 'https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoPatient',
    interactions: ['read', 'search-type'],
    searchParams: registryParams('Patient'),
    searchRevInclude: REVINCLUDES.Patient,
  });
  const render = (row: SearchRow): Resource => withMeta(row.resource as Resource, versionFromTime(row.last_updated as Date), row.last_updated as Date);
  mountSearch(router, deps, 'Patient', {
    table: 'Patient',
    subtype: 'search',
    render,
    patientOf: (r) => r.id,
    includes: async (plan, rows, _res, pf) => {
      const ids = rows.map((r) => r.id);
      const out: Resource[] = [];
      let capped = false;
      const docs = plan.revinclude.some((v) => v.startsWith('DocumentReference:'));
      const studies = plan.revinclude.some((v) => v.startsWith('ImagingStudy:'));
      const notEie = { k: 'column-in' as const, column: 'status', values: ['entered-in-error'], not: true };
      if (docs) {
        const r = await runSearch(deps.db, { table: 'DocumentReference', conds: [{ k: 'column-in', column: 'patient', values: ids, not: false }, notEie], sort: [{ column: 'lastUpdated', desc: true }], limit: MAX_INCLUDES }, pf);
        out.push(...r.rows.map(renderDocRefRow));
        capped ||= r.more;
      }
      if (studies) {
        const r = await runSearch(deps.db, { table: 'ImagingStudy', conds: [{ k: 'column-in', column: 'patient', values: ids, not: false }, notEie], sort: [{ column: 'lastUpdated', desc: true }], limit: MAX_INCLUDES }, pf);
        for (const row of r.rows) {
          const st = imagingStudyOf(row.model as Manifest, ctx, row.status as string, `${row.id}:${row.version_id}`, { studyUid: row.study_uid as string });
          if (st) out.push(withMeta(st, String(row.version_id), row.last_updated as Date));
        }
        capped ||= r.more;
      }
      return { resources: out, capped };
    },
  });
  router.get('/Patient/:id', async (req, res) => {
    const id = req.params.id;
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`Patient/${id}`], count: 0 };
    const row = await readPatient(deps.db, id, patientFilter(principalOf(req)));
    if (!row) throw notFound('Patient');
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`Patient/${id}`], patientIds: [id], count: 1 };
    sendRead(req, res, row.resource as unknown as Resource, versionFromTime(row.last_updated), row.last_updated);
  });
}
