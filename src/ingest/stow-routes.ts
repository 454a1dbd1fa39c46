/**
 * STOW-RS Store Instances (PS3.18 §10.5): POST /dicomweb/studies and /dicomweb/studies/{study},
 * `multipart/related; type="application/dicom"`. MADO manifests (KOS) are stored, IOCM rejection
 * notes applied, anything else refused per instance. Each instance is its own transaction.
 *
 * Response (PS3.18 §10.5.3, Table 10.5.3-1; DICOM JSON, application/dicom+json):
 *   200 every instance stored, 202 some failed, 409 all failed; 400/415 for malformed requests.
 *   Referenced SOP Sequence (0008,1199) items carry Retrieve URL (0008,1190) on PUBLIC_BASE_URL;
 *   Failed SOP Sequence (0008,1198) items carry Failure Reason (0008,1197).
 */
import { randomUUID } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import { patientFilter, principalOf } from '../auth/principal.js';
import { negotiate } from '../dicomweb/accept.js';
import { getRetrieve } from '../dicomweb/routes.js';
import { manifestResourceIds } from '../model/ids.js';
import type { Manifest } from '../model/manifest.js';
import { readManifestByDocRef } from '../store/resource-read.js';
import type { AppDeps } from '../deps.js';
import type { AuditInfo } from '../audit/types.js';
import { readDicomIdentity } from '../dicom/index.js';
import { readBody } from '../http/body.js';
import { GatewayError } from '../http/errors.js';
import { FAILURE, IngestError, IngestService } from './service.js';
import { contentTypeOf, parseMultipart } from './multipart.js';

type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

interface Item {
  sopClassUid?: string;
  sopInstanceUid?: string;
  retrieveUrl?: string;
  failureReason?: number;
  /** Why, in words (Error Comment); never echoed into logs */
  comment?: string;
}

/** Error Comment (0000,0902) is LO, at most 64 characters (PS3.5 Table 6.2-1): cut at a word boundary, marked with an ellipsis. */
export function errorComment(s: string): string {
  if (s.length <= 64) return s;
  const cut = s.slice(0, 63);
  const sp = cut.lastIndexOf(' ');
  return `${(sp > 32 ? cut.slice(0, sp) : cut).replace(/[\s,;:(]+$/, '')}…`;
}

function itemJson(i: Item): DicomJson {
  const o: DicomJson = {};
  if (i.sopClassUid) o['00081150'] = { vr: 'UI', Value: [i.sopClassUid] };
  else o['00081150'] = { vr: 'UI' };
  if (i.sopInstanceUid) o['00081155'] = { vr: 'UI', Value: [i.sopInstanceUid] };
  else o['00081155'] = { vr: 'UI' };
  if (i.retrieveUrl) o['00081190'] = { vr: 'UR', Value: [i.retrieveUrl] };
  if (i.failureReason !== undefined) o['00081197'] = { vr: 'US', Value: [i.failureReason] };
  if (i.comment) o['00000902'] = { vr: 'LO', Value: [errorComment(i.comment)] };
  return o;
}

export function stowIngestModule(router: Router, deps: AppDeps): void {
  const service = new IngestService({ db: deps.db, config: deps.config });
  const base = deps.config.publicBaseUrl.replace(/\/+$/, '');
  const handler = async (req: Request, res: Response) => {
    const target = typeof req.params.study === 'string' ? req.params.study : undefined;
    const audit: AuditInfo = { subtype: 'STOW-RS', action: 'C', entities: [], patientIds: [] };
    res.locals.audit = audit;
    const ct = contentTypeOf(req.get('content-type'));
    if (ct.type !== 'multipart/related') {
      req.resume();
      throw new GatewayError(415, 'GW_UNSUPPORTED_MEDIA_TYPE', 'STOW-RS requires Content-Type multipart/related; type="application/dicom"');
    }
    const partType = (ct.params.type ?? 'application/dicom').toLowerCase();
    if (partType !== 'application/dicom') {
      req.resume();
      throw new GatewayError(415, 'GW_UNSUPPORTED_MEDIA_TYPE', `multipart/related type "${partType}" is not supported; only application/dicom instances are accepted`);
    }
    if (!ct.params.boundary) {
      req.resume();
      throw new GatewayError(400, 'GW_MULTIPART_INVALID', 'multipart/related without a boundary parameter');
    }
    const body = await readBody(req, deps.config.limits.maxBodyBytes);
    const parts = parseMultipart(body, ct.params.boundary);
    if (!parts.length) throw new GatewayError(400, 'GW_MULTIPART_INVALID', 'the request contains no instances');

    const ok: Item[] = [];
    const failed: Item[] = [];
    const studies = new Set<string>();
    for (const part of parts) {
      const id = readDicomIdentity(part.body).identity ?? {};
      const item: Item = { sopClassUid: id.sopClassUid, sopInstanceUid: id.sopInstanceUid };
      if (part.contentType.type && part.contentType.type !== 'application/dicom') {
        failed.push({ ...item, failureReason: FAILURE.sopClassNotSupported, comment: 'part is not application/dicom' });
        continue;
      }
      if (target && id.studyInstanceUid && id.studyInstanceUid !== target) {
        failed.push({ ...item, failureReason: FAILURE.doesNotMatchSopClass, comment: 'Study Instance UID differs from the target study' });
        continue;
      }
      try {
        const r = await service.submitKos(part.body);
        if (r.kind === 'manifest') {
          const s = r.result.stored;
          studies.add(s.studyInstanceUid);
          audit.entities!.push(`DocumentReference/${s.kosDocRefId}`, `study:${s.studyInstanceUid}`);
          if (s.patientId && !audit.patientIds!.includes(s.patientId)) audit.patientIds!.push(s.patientId);
          const series = id.seriesInstanceUid ?? r.result.stored.sopInstanceUid;
          ok.push({ ...item, retrieveUrl: `${base}/dicomweb/studies/${s.studyInstanceUid}/series/${series}/instances/${s.sopInstanceUid}` });
        } else {
          for (const m of r.result.created) audit.entities!.push(`DocumentReference/${m.kosDocRefId}`);
          const st = r.note.study.studyInstanceUid;
          if (st) studies.add(st);
          ok.push({ ...item });
        }
      } catch (err) {
        if (err instanceof IngestError) failed.push({ ...item, failureReason: err.failureReason, comment: err.message });
        else if (err instanceof GatewayError) failed.push({ ...item, failureReason: FAILURE.processingFailure, comment: err.message });
        else {
          req.log?.error({ err: { name: (err as Error)?.name, message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'STOW-RS instance failed');
          failed.push({ ...item, failureReason: FAILURE.processingFailure, comment: 'processing failure' });
        }
      }
    }
    audit.count = ok.length;
    const out: DicomJson = {};
    const study = target ?? (studies.size === 1 ? [...studies][0] : undefined);
    if (study) out['00081190'] = { vr: 'UR', Value: [`${base}/dicomweb/studies/${study}`] };
    if (failed.length) out['00081198'] = { vr: 'SQ', Value: failed.map(itemJson) };
    if (ok.length) out['00081199'] = { vr: 'SQ', Value: ok.map(itemJson) };
    const status = failed.length === 0 ? 200 : ok.length === 0 ? 409 : 202;
    res.status(status).type('application/dicom+json').send(JSON.stringify(out));
  };
  router.post('/studies', handler);
  router.post('/studies/:study', handler);
}

/**
 * WADO-RS of the KOS instances the gateway stores, mounted after the WADO-RS proxy (src/modules.ts):
 * the proxy answers every instance the index knows and hands on only what it does not, so a
 * retrieval of an archive's instance costs no lookup here.
 */
export function storedKosModule(router: Router, deps: AppDeps): void {
  getRetrieve(router, 'instance', (req, res) => retrieveStoredKos(req, res, deps));
}

const UID = /^[0-9.]{1,64}$/;

/**
 * WADO-RS of a KOS the gateway stores (the Retrieve URL a STOW-RS response names for it, PS3.18
 * §10.5.3): the manifest's own bytes, verbatim, as one application/dicom part. Reached only for an
 * instance the WADO-RS proxy did not find in the index; anything else is a 404.
 */
async function retrieveStoredKos(req: Request, res: Response, deps: AppDeps): Promise<void> {
  const notFound = () => new GatewayError(404, 'GW_DICOMWEB_NOT_FOUND', 'Instance not found');
  const { study, series, instance } = req.params as Record<string, string>;
  if (!UID.test(instance ?? '') || !UID.test(study ?? '')) throw notFound();
  const m = await readManifestByDocRef(deps.db, manifestResourceIds(instance!).kosDocRef, patientFilter(principalOf(req)), true);
  const model = m?.model as Manifest | undefined;
  if (!m || m.native_format !== 'kos' || model?.study.studyInstanceUid !== study || (model.document.seriesInstanceUid && model.document.seriesInstanceUid !== series)) throw notFound();
  negotiate('instances', req.get('accept'));
  res.locals.audit = { subtype: 'RAD-107', action: 'R', patientIds: m.patient_id ? [m.patient_id] : [], entities: [`study:${study}`, `series:${series}`, `instance:${instance}`], count: 1 } satisfies AuditInfo;
  if (m.status === 'entered-in-error') throw new GatewayError(404, 'GW_NOT_FOUND', 'This instance is not available');
  const boundary = `mado-${randomUUID()}`;
  res.status(200).type(`multipart/related; type="application/dicom"; boundary=${boundary}`);
  res.send(Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), m.content, Buffer.from(`\r\n--${boundary}--\r\n`)]));
}
