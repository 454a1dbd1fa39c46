/**
 * ITI-68 Retrieve Document (MHD ITI-68): GET of a DocumentReference's attachment.url —
 * /fhir/Binary/{kos-…} (contentType application/dicom) and /fhir/Bundle/{mado-…}
 * (application/fhir+json) — with Accept negotiation and the MADO mapping function (SUPPL X.6.1):
 * - the native form is returned byte-identical (manifest.content, verbatim);
 * - the other form is converted: writeKos(model) for FHIR-native manifests, manifestToFhirBundle
 *   for KOS-native ones; a manifest the KOS writer cannot encode → 406;
 * - 404 unknown or not visible to the caller; 410 entered-in-error; superseded → 200, because ITI-67
 *   still lists deprecated documents (status=superseded) and their attachment.url must resolve;
 * - 406 when nothing in Accept can be produced.
 */
import type { Request, Response, Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { patientFilter, principalOf } from '../../auth/principal.js';
import { writeKos, KosWriteError } from '../../dicom/index.js';
import { GatewayError, notFound } from '../../http/errors.js';
import type { Manifest } from '../../model/manifest.js';
import { readManifestByDocRef, type ManifestRead } from '../../store/resource-read.js';
import { acceptedRanges, serialize } from '../format.js';
import { manifestToFhirBundle } from '../mapping/index.js';
import { addInteractions } from '../registry.js';
import { notModified } from '../../http/conditional.js';
import { weakEtag } from './common.js';

type Want = 'dicom' | 'json' | 'xml';

const JSON_T = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);
const XML_T = new Set(['application/fhir+xml', 'application/xml', 'text/xml', 'application/xml+fhir']);

/** The representation to send: first acceptable range in q order; wildcards get the native form of the URL. */
export function negotiateRetrieve(req: Request, native: 'dicom' | 'json'): Want {
  const fmt = typeof req.query._format === 'string' ? req.query._format.toLowerCase() : undefined;
  if (fmt) {
    if (fmt === 'json' || JSON_T.has(fmt)) return 'json';
    if (fmt === 'xml' || XML_T.has(fmt)) return 'xml';
    if (fmt === 'application/dicom') return 'dicom';
    throw new GatewayError(406, 'GW_NOT_ACCEPTABLE', `_format "${fmt}" cannot be produced for this document`, { expression: ['_format'] });
  }
  const ranges = acceptedRanges(req.get('accept'));
  if (!ranges.length) return native;
  for (const r of ranges) {
    if (r.type === 'application/dicom') return 'dicom';
    if (JSON_T.has(r.type)) return 'json';
    if (XML_T.has(r.type)) return 'xml';
    if (r.type === '*/*' || r.type === 'application/*') return native;
  }
  throw new GatewayError(406, 'GW_NOT_ACCEPTABLE', 'None of the media types in Accept can be produced for this document; use application/dicom, application/fhir+json or application/fhir+xml');
}

function render(m: ManifestRead, want: Want, deps: AppDeps): { body: Buffer | string; type: string } {
  const ctx = { publicBaseUrl: deps.config.publicBaseUrl, defaults: deps.config.documentDefaults };
  if (want === 'dicom') {
    if (m.native_format === 'kos') return { body: m.content, type: 'application/dicom' };
    try {
      return { body: Buffer.from(writeKos(m.model as Manifest)), type: 'application/dicom' };
    } catch (err) {
      if (err instanceof KosWriteError) throw new GatewayError(406, 'GW_NOT_ACCEPTABLE', 'This FHIR manifest cannot be expressed as a DICOM KOS; retrieve it as application/fhir+json');
      throw err;
    }
  }
  let bundle: unknown;
  if (m.native_format === 'fhir') {
    if (want === 'json') return { body: m.content, type: 'application/fhir+json; charset=utf-8' };
    bundle = JSON.parse(m.content.toString('utf8'));
  } else bundle = manifestToFhirBundle(m.model as Manifest, ctx);
  const s = serialize(bundle, want);
  return { body: s.body, type: s.contentType };
}

async function retrieve(req: Request, res: Response, deps: AppDeps, kind: 'Binary' | 'Bundle'): Promise<void> {
  const id = req.params.id as string;
  const entity = `${kind}/${id}`;
  res.locals.audit = { subtype: 'ITI-68', action: 'R', entities: [entity], count: 0 };
  const prefix = kind === 'Binary' ? 'kos-' : 'mado-';
  const docRef = id.startsWith(prefix) ? `${kind === 'Binary' ? 'kos-docref-' : 'fhir-docref-'}${id.slice(prefix.length)}` : undefined;
  const want = negotiateRetrieve(req, kind === 'Binary' ? 'dicom' : 'json');
  const m = docRef ? await readManifestByDocRef(deps.db, docRef, patientFilter(principalOf(req)), true) : undefined;
  if (!m) throw notFound(kind === 'Binary' ? 'Document' : 'Document');
  res.locals.audit = { subtype: 'ITI-68', action: 'R', entities: [entity, `DocumentReference/${docRef}`], patientIds: m.patient_id ? [m.patient_id] : [], count: 0 };
  if (m.status === 'entered-in-error') throw new GatewayError(410, 'GW_GONE', 'This document was entered in error and is no longer available');
  const etag = weakEtag(`${m.version_id}-${want}`);
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', m.last_updated.toUTCString());
  res.setHeader('Vary', 'Accept');
  // The form the manifest was submitted in (the other is converted); the web page shows it.
  res.setHeader('X-Manifest-Source', m.native_format);
  if (notModified(req.get('if-none-match'), etag)) {
    res.status(304).end();
    return;
  }
  const out = render(m, want, deps);
  res.locals.audit.count = 1;
  res.status(200).setHeader('Content-Type', out.type);
  res.send(out.body);
}

/** Paths whose GET does its own Accept negotiation (application/dicom is legitimate here). */
export const RETRIEVE_PATH = /^\/(Binary|Bundle)\/[^/]+\/?$/;

export function mountRetrieve(router: Router, deps: AppDeps): void {
  addInteractions('Binary', ['read']);
  addInteractions('Bundle', ['read']);
  router.get('/Binary/:id', (req, res) => retrieve(req, res, deps, 'Binary'));
  router.get('/Bundle/:id', (req, res) => retrieve(req, res, deps, 'Bundle'));
}
