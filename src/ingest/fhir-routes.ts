/**
 * FHIR write routes of the ingest service:
 *  - POST /fhir                     ITI-65 Provide Document Bundle (transaction; JSON or XML)
 *  - POST /fhir/Binary              raw KOS (application/dicom) or a FHIR Binary resource wrapping one
 *  - POST /fhir/Bundle              a FHIR manifest (MadoFhirBundle; JSON or XML)
 *  - PATCH /fhir/DocumentReference/{id}  JSON Patch or FHIRPath Patch Parameters on status
 *  - PUT /fhir/DocumentReference/{id}    status update (entered-in-error); other elements are derived
 * Simple-client responses: 201 Created (200 for an idempotent duplicate) with Location = the stored
 * content (Binary/{id} for a KOS, Bundle/{id} for a FHIR manifest), `Link: <DocumentReference>;
 * rel="related"`, `X-Ingest-Result: created | duplicate | replaced | rejection-applied`, and an
 * OperationOutcome body (validation warnings included).
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Request, Response, Router } from 'express';
import type { AppDeps } from '../deps.js';
import type { AuditInfo } from '../audit/types.js';
import { parseFhirXml, sendResource } from '../fhir/format.js';
import { addInteractions } from '../fhir/registry.js';
import { systemInteractions } from '../fhir/capability.js';
import { mediaType, parseJson, readBody, requireMediaType } from '../http/body.js';
import { GatewayError } from '../http/errors.js';
import type { ValidationIssue } from '../model/manifest.js';
import type { ManifestStatus } from '../store/manifests.js';
import { provideDocumentBundle } from './iti65.js';
import { IngestService, parseFhirManifest, parseKos, type IngestResult, type ParsedManifest } from './service.js';

type Json = Record<string, any>;

const JSON_TYPES = ['application/fhir+json', 'application/json'];
const XML_TYPES = ['application/fhir+xml', 'application/xml'];

/** Read a FHIR resource body (JSON or XML). `raw` is the UTF-8 JSON to store (as sent when JSON). */
async function readFhirResource(req: Request, limit: number, extra: string[] = []): Promise<{ resource: unknown; raw: Buffer; mt: string }> {
  const mt = requireMediaType(req, [...JSON_TYPES, ...XML_TYPES, ...extra]);
  const body = await readBody(req, limit);
  if (XML_TYPES.includes(mt)) {
    const resource = parseFhirXml(body.toString('utf8'));
    return { resource, raw: Buffer.from(JSON.stringify(resource), 'utf8'), mt };
  }
  return { resource: parseJson(body), raw: body, mt };
}

function outcome(text: string, warnings: ValidationIssue[] = [], code = 'informational'): OperationOutcome {
  const issue: OperationOutcomeIssue[] = [{ severity: 'information', code: code as OperationOutcomeIssue['code'], details: { text } }];
  for (const w of warnings.filter((x) => x.severity !== 'error').slice(0, 50)) {
    issue.push({ severity: w.severity, code: 'processing', details: { coding: [{ system: 'urn:mado-gateway:issue-code', code: w.code }], text: w.message }, ...(w.path ? { expression: [w.path] } : {}) });
  }
  return { resourceType: 'OperationOutcome', issue };
}

function parseIfMatch(req: Request): number | undefined {
  const h = req.get('if-match');
  if (!h) return undefined;
  const m = /^(?:W\/)?"(\d+)"$/.exec(h.trim());
  if (!m) throw new GatewayError(400, 'GW_BAD_IF_MATCH', 'If-Match must be an ETag such as W/"2"');
  return Number(m[1]);
}

/** What every route of this module shares. */
interface IngestRoutes {
  deps: AppDeps;
  service: IngestService;
  base: string;
  limit: number;
}

/** Simple-client answer for one stored manifest (see the header comment). */
function sendManifestResult(c: IngestRoutes, req: Request, res: Response, p: ParsedManifest, r: IngestResult): void {
  const s = r.stored;
  const loc = p.nativeFormat === 'kos' ? `${c.base}/fhir/Binary/${s.binaryId}` : `${c.base}/fhir/Bundle/${s.bundleId}`;
  const docref = p.nativeFormat === 'kos' ? s.kosDocRefId : s.fhirDocRefId;
  const result = r.outcome === 'duplicate' ? 'duplicate' : r.superseded.length ? 'replaced' : 'created';
  res.locals.audit = { subtype: 'ITI-65', action: 'C', patientIds: s.patientId ? [s.patientId] : [], entities: [`DocumentReference/${docref}`, `study:${s.studyInstanceUid}`], count: 1 } satisfies AuditInfo;
  res.setHeader('Location', loc);
  res.setHeader('Link', `<${c.base}/fhir/DocumentReference/${docref}>; rel="related"`);
  res.setHeader('X-Ingest-Result', result);
  res.setHeader('ETag', `W/"${s.versionId}"`);
  const text =
    result === 'duplicate'
      ? `Manifest already stored (idempotent re-submission): DocumentReference/${docref}`
      : `Manifest stored as ${r.warnings.some((w) => w.code === 'GW_KOS_FORM_UNAVAILABLE') ? `DocumentReference/${s.fhirDocRefId} (FHIR; no KOS form, see below)` : `DocumentReference/${s.kosDocRefId} (KOS) and DocumentReference/${s.fhirDocRefId} (FHIR)`}, ${s.referenceCount} referenced instances${r.superseded.length ? `; superseded ${r.superseded.length} earlier manifest(s)` : ''}`;
  sendResource(req, res, outcome(text, r.warnings), r.outcome === 'duplicate' ? 200 : 201);
}

/** POST /fhir/Binary body → KOS bytes, or a FHIR manifest carried in a Binary resource. */
async function readBinaryCreate(req: Request, limit: number): Promise<{ bytes: Buffer; fhir?: { json: unknown; raw: Buffer } }> {
  if (mediaType(req) === 'application/dicom') return { bytes: await readBody(req, limit) };
  const { resource } = await readFhirResource(req, limit, ['application/dicom']);
  const r = resource as Json;
  if (r?.resourceType !== 'Binary') throw new GatewayError(400, 'GW_NOT_BINARY', 'POST /fhir/Binary expects a raw KOS (application/dicom) or a Binary resource');
  const ct = String(r.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (typeof r.data !== 'string' || !r.data) throw new GatewayError(422, 'GW_BINARY_EMPTY', 'Binary.data is missing');
  const bytes = Buffer.from(r.data, 'base64');
  if (ct === 'application/fhir+json' || ct === 'application/json') return { bytes, fhir: { json: parseJson(bytes), raw: bytes } };
  if (ct !== 'application/dicom') throw new GatewayError(415, 'GW_UNSUPPORTED_MEDIA_TYPE', `Binary.contentType "${ct || '(none)'}" is not a MADO manifest (application/dicom or application/fhir+json)`);
  return { bytes };
}

/** POST /fhir (ITI-65), POST /fhir/Binary, POST /fhir/Bundle. */
function mountCreates(router: Router, c: IngestRoutes): void {
  const { config } = c.deps;
  router.post('/', async (req, res) => {
    res.locals.audit = { subtype: 'ITI-65', action: 'C' } satisfies AuditInfo;
    const { resource } = await readFhirResource(req, c.limit);
    const r = await provideDocumentBundle(c.deps.db, config, c.service.ctx, resource);
    res.locals.audit = { subtype: 'ITI-65', action: 'C', patientIds: r.patientIds, entities: r.entities, count: r.created };
    sendResource(req, res, r.bundle, 200);
  });
  router.post('/Binary', async (req, res) => {
    res.locals.audit = { subtype: 'ITI-65', action: 'C' } satisfies AuditInfo;
    const body = await readBinaryCreate(req, c.limit);
    const parsed = body.fhir ? ({ kind: 'manifest', manifest: parseFhirManifest(body.fhir.json, body.fhir.raw, config) } as const) : parseKos(body.bytes, config);
    if (parsed.kind === 'manifest') return sendManifestResult(c, req, res, parsed.manifest, await c.service.submitManifest(parsed.manifest));
    const r = await c.service.applyRejection(parsed.rejection);
    res.locals.audit = { subtype: 'ITI-65', action: 'U', entities: [...r.superseded.map((id) => `manifest:${id}`), ...r.created.map((m) => `DocumentReference/${m.kosDocRefId}`)], count: r.rejected };
    res.setHeader('X-Ingest-Result', 'rejection-applied');
    sendResource(req, res, outcome(`IOCM rejection note applied: ${r.rejected} instance(s) newly rejected, ${r.superseded.length} manifest(s) superseded, ${r.created.length} new manifest version(s)`, r.warnings), 200);
  });
  router.post('/Bundle', async (req, res) => {
    res.locals.audit = { subtype: 'ITI-65', action: 'C' } satisfies AuditInfo;
    const { resource, raw } = await readFhirResource(req, c.limit);
    const p = parseFhirManifest(resource, raw, config);
    sendManifestResult(c, req, res, p, await c.service.submitManifest(p));
  });
}

/** The status a PATCH body asks for: JSON Patch replace /status, or FHIRPath Patch Parameters. */
async function patchedStatus(req: Request, limit: number): Promise<string | undefined> {
  if (mediaType(req) === 'application/json-patch+json') {
    const ops = parseJson(await readBody(req, limit));
    if (!Array.isArray(ops) || !ops.length) throw new GatewayError(400, 'GW_PATCH_INVALID', 'JSON Patch body must be a non-empty array of operations');
    let status: string | undefined;
    for (const op of ops as Json[]) {
      if (op?.op === 'test') continue;
      if ((op?.op === 'replace' || op?.op === 'add') && op.path === '/status' && typeof op.value === 'string') status = op.value;
      else throw new GatewayError(422, 'GW_PATCH_UNSUPPORTED', 'Only the DocumentReference status can be changed (JSON Patch replace /status)');
    }
    return status;
  }
  const { resource } = await readFhirResource(req, limit);
  const r = resource as Json;
  const op = r?.resourceType === 'Parameters' ? (r.parameter ?? []).find((p: Json) => p?.name === 'operation') : undefined;
  const parts: Json[] = op?.part ?? [];
  const get = (n: string) => parts.find((p) => p?.name === n);
  if (get('type')?.valueCode !== 'replace' || get('path')?.valueString !== 'DocumentReference.status') {
    throw new GatewayError(422, 'GW_PATCH_UNSUPPORTED', 'Only "replace DocumentReference.status" FHIRPath Patch operations are supported');
  }
  return get('value')?.valueCode ?? get('value')?.valueString;
}

function checkedStatus(status: unknown): ManifestStatus {
  if (status !== 'entered-in-error' && status !== 'superseded' && status !== 'current') throw new GatewayError(422, 'GW_STATUS_INVALID', 'status must be current, superseded or entered-in-error');
  return status;
}

/** PATCH / PUT /fhir/DocumentReference/{id}: status changes only; everything else is derived from the manifest. */
function mountStatusUpdates(router: Router, c: IngestRoutes): void {
  const sendDocRef = (req: Request, res: Response, r: { resource: Record<string, unknown>; manifest: { version_id: number; last_updated: Date; patient_id: string | null } }) => {
    res.locals.audit = { subtype: 'update', action: 'U', patientIds: r.manifest.patient_id ? [r.manifest.patient_id] : [], entities: [`DocumentReference/${String(r.resource.id)}`] };
    res.setHeader('ETag', `W/"${r.manifest.version_id}"`);
    res.setHeader('Last-Modified', new Date(r.manifest.last_updated).toUTCString());
    sendResource(req, res, r.resource, 200);
  };
  router.patch('/DocumentReference/:id', async (req, res) => {
    res.locals.audit = { subtype: 'update', action: 'U' } satisfies AuditInfo;
    const status = checkedStatus(await patchedStatus(req, c.limit));
    sendDocRef(req, res, await c.service.updateStatus(String(req.params.id), status, parseIfMatch(req)));
  });
  router.put('/DocumentReference/:id', async (req, res) => {
    res.locals.audit = { subtype: 'update', action: 'U' } satisfies AuditInfo;
    const id = String(req.params.id);
    const r = (await readFhirResource(req, c.limit)).resource as Json;
    if (r?.resourceType !== 'DocumentReference') throw new GatewayError(400, 'GW_WRONG_TYPE', 'PUT /fhir/DocumentReference/{id} expects a DocumentReference');
    if (r.id !== undefined && r.id !== id) throw new GatewayError(400, 'GW_ID_MISMATCH', 'resource id does not match the URL');
    // Only the status is taken from the body: everything else is derived from the stored manifest.
    sendDocRef(req, res, await c.service.updateStatus(id, checkedStatus(r.status), parseIfMatch(req)));
  });
}

export function fhirIngestModule(router: Router, deps: AppDeps): void {
  const { config } = deps;
  addInteractions('Binary', ['create']);
  addInteractions('Bundle', ['create']);
  addInteractions('DocumentReference', ['update', 'patch']);
  if (!systemInteractions.includes('transaction')) systemInteractions.push('transaction');
  const c: IngestRoutes = { deps, service: new IngestService({ db: deps.db, config }), base: config.publicBaseUrl.replace(/\/+$/, ''), limit: config.limits.maxBodyBytes };
  mountCreates(router, c);
  mountStatusUpdates(router, c);
}
