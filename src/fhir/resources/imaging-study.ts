/**
 * ImagingStudy read/search. One ImagingStudy per study, derived from the study's current manifest
 * (or its entered-in-error one, returned only on request): the ImagingStudy entry of the MADO
 * Bundle rendered from the stored model, with Bundle-internal urn:uuid references rewritten to
 * Type/id so the resource stands alone. Ids are deterministic (src/model/ids.ts).
 */
import type { ImagingStudy, Resource } from '@medplum/fhirtypes';
import type { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { patientFilter, principalOf } from '../../auth/principal.js';
import { notFound } from '../../http/errors.js';
import type { Manifest } from '../../model/manifest.js';
import { endpointsByManifests, type SearchRow } from '../../store/search-sql.js';
import { readManifestByDocRef } from '../../store/resource-read.js';
import { manifestImagingStudies, publicEndpoint, type MappingContext } from '../mapping/index.js';
import { registerResource } from '../registry.js';
import { INCLUDES, registryParams } from '../search/params.js';
import { MAX_INCLUDES } from '../search/execute.js';
import { includePatients } from './document-reference.js';
import { endpointPolicy, mountSearch, sendRead, withMeta } from './common.js';

/** Small cache: rendering walks the whole model; key includes the version so status changes show. */
const cache = new Map<string, ImagingStudy>();
const CACHE_MAX = 2000;

/** Which ImagingStudy of a manifest: by id (read), by Study Instance UID (a search row), else its own study's. */
export interface StudySelector { id?: string; studyUid?: string }

/** Which of a manifest's studies `sel` names (manifestImagingStudies' pick), or undefined: its first. */
function picker(sel: StudySelector): ((id: string, studyUid: string) => boolean) | undefined {
  if (sel.id !== undefined) return (id) => id === sel.id;
  if (sel.studyUid !== undefined) return (_id, uid) => uid === sel.studyUid;
  return undefined;
}

function firstOnly(): () => boolean {
  let n = 0;
  return () => n++ === 0;
}

/**
 * One ImagingStudy of a manifest (one per referenced study, ids.ts imagingStudyId); undefined when
 * the manifest has no such ImagingStudy. A search row's study that matches none is its own study's.
 */
export function imagingStudyOf(model: Manifest, ctx: MappingContext, status: string, cacheKey?: string, sel: StudySelector = {}): ImagingStudy | undefined {
  if (cacheKey) cacheKey = `${ctx.publicBaseUrl}\u0000${cacheKey}\u0000${sel.id ?? ''}\u0000${sel.studyUid ?? ''}`;
  const hit = cacheKey ? cache.get(cacheKey) : undefined;
  if (hit) return hit; // shared: callers copy (withMeta, applyElements), never mutate
  // Only the selected study is rendered (not the whole MADO Bundle), references standing alone.
  const pick = picker(sel);
  let out = manifestImagingStudies(model, ctx, pick ?? firstOnly())[0] as ImagingStudy | undefined;
  if (!out && pick && sel.id === undefined) out = manifestImagingStudies(model, ctx, firstOnly())[0] as ImagingStudy | undefined;
  if (!out) return undefined;
  if (status === 'entered-in-error') out.status = 'entered-in-error';
  if (cacheKey) {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(cacheKey, out);
  }
  return out;
}

export function mountImagingStudy(router: Router, deps: AppDeps): void {
  const ctx: MappingContext = { publicBaseUrl: deps.config.publicBaseUrl, defaults: deps.config.documentDefaults };
  const policy = endpointPolicy(deps.config);
  registerResource({
    type: 'ImagingStudy',
    profile: 'https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoImagingStudy',
    interactions: ['read', 'search-type'],
    searchParams: registryParams('ImagingStudy'),
    searchInclude: INCLUDES.ImagingStudy,
  });
  const render = (row: SearchRow): Resource => {
    const r = imagingStudyOf(row.model as Manifest, ctx, row.status as string, `${row.id}:${row.version_id}`, { studyUid: row.study_uid as string });
    if (!r) throw new Error('indexed ImagingStudy missing from its manifest');
    return withMeta(r, String(row.version_id), row.last_updated as Date);
  };
  mountSearch(router, deps, 'ImagingStudy', {
    table: 'ImagingStudy',
    subtype: 'search',
    render,
    renderJson: (row) => {
      const r = render(row);
      return { resourceType: 'ImagingStudy', id: r.id!, json: JSON.stringify(r) };
    },
    patientOf: (r) => r.patient_id as string | null,
    includes: async (plan, rows, _res, pf) => {
      const out = await includePatients(deps, plan, rows, pf);
      if (plan.include.includes('ImagingStudy:endpoint')) {
        const eps = await endpointsByManifests(deps.db, rows.map((r) => r.id));
        out.resources.push(...eps.slice(0, MAX_INCLUDES).map((e) => withMeta(publicEndpoint(e.resource as Record<string, unknown>, policy) as unknown as Resource, String(e.last_updated.getTime()), e.last_updated)));
        if (eps.length > MAX_INCLUDES) out.capped = true;
      }
      return out;
    },
  });
  router.get('/ImagingStudy/:id', async (req, res) => {
    const id = req.params.id;
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`ImagingStudy/${id}`], count: 0 };
    // study-<h>[-<k>] shares <h> with the manifest's docrefs (src/model/ids.ts).
    const h = /^study-([0-9a-f]{32})(-[0-9a-f]{16})?$/.exec(id)?.[1];
    const m = h ? await readManifestByDocRef(deps.db, `kos-docref-${h}`, patientFilter(principalOf(req)), false) : undefined;
    // A superseded manifest's study view is replaced by the current one: not found here.
    const study = m && m.status !== 'superseded' ? imagingStudyOf(m.model as Manifest, ctx, m.status, `${m.id}:${m.version_id}`, { id }) : undefined;
    if (!m || !study) throw notFound('ImagingStudy');
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`ImagingStudy/${id}`], patientIds: m.patient_id ? [m.patient_id] : [], count: 1 };
    sendRead(req, res, study, String(m.version_id), m.last_updated);
  });
}
