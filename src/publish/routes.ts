/**
 * POST /fhir/ImagingStudy/$publish — the content creator over HTTP. Body: FHIR Parameters with
 * `study` (valueString, Study Instance UID) and optional `upstream` (valueString, configured
 * upstream name). 201 with the new manifest's DocumentReferences, 200 when the study is unchanged,
 * 404 when the upstream has no such study, 422 (OperationOutcome) when it cannot make a valid
 * manifest. Without `study`, `since` (valueString YYYYMMDD) or `all` (valueBoolean true) lists the
 * upstream's Study Instance UIDs instead (200, nothing published): what the CLI's --since / --all
 * publish one by one. Authorised as a create (technologist role) and audited as an Import.
 */
import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import type { Router } from 'express';
import type { AuditInfo } from '../audit/types.js';
import type { AppDeps } from '../deps.js';
import { upstreamRegistryOf } from '../dicomweb/index.js';
import { isValidUid } from '../dicom/uid.js';
import { parseFhirXml, sendResource } from '../fhir/format.js';
import { addOperation } from '../fhir/registry.js';
import { parseJson, readBody, requireMediaType } from '../http/body.js';
import { GatewayError } from '../http/errors.js';
import { publisherFor, type PublishResult } from './service.js';

type Json = Record<string, any>;

function param(body: Json, name: string): Json | undefined {
  const all = (Array.isArray(body.parameter) ? body.parameter : []).filter((p: Json) => p?.name === name);
  if (all.length > 1) throw new GatewayError(400, 'GW_PUBLISH_BAD_PARAMETERS', `Parameter "${name}" is given more than once`);
  return all[0];
}

export interface PublishRequest {
  study?: string;
  upstream?: string;
  since?: string;
  all?: boolean;
}

export function parsePublishParameters(body: unknown): PublishRequest {
  const b = body as Json;
  if (b?.resourceType !== 'Parameters') throw new GatewayError(400, 'GW_PUBLISH_BAD_PARAMETERS', '$publish expects a FHIR Parameters resource');
  const study = param(b, 'study')?.valueString;
  const upstream = param(b, 'upstream')?.valueString;
  const since = param(b, 'since')?.valueString ?? param(b, 'since')?.valueDate?.replace(/-/g, '');
  const all = param(b, 'all')?.valueBoolean === true;
  if (study !== undefined && (typeof study !== 'string' || !isValidUid(study))) throw new GatewayError(400, 'GW_PUBLISH_BAD_PARAMETERS', 'Parameter "study" must be a Study Instance UID (valueString)', { expression: ['Parameters.parameter.where(name=\'study\')'] });
  if (upstream !== undefined && (typeof upstream !== 'string' || !upstream)) throw new GatewayError(400, 'GW_PUBLISH_BAD_PARAMETERS', 'Parameter "upstream" must be a configured upstream name (valueString)');
  if (since !== undefined && !/^\d{8}$/.test(String(since))) throw new GatewayError(400, 'GW_PUBLISH_BAD_PARAMETERS', 'Parameter "since" must be a date YYYYMMDD');
  if (!study && !since && !all) throw new GatewayError(400, 'GW_PUBLISH_BAD_PARAMETERS', 'Parameter "study" (valueString, Study Instance UID) is required');
  if (study && (since || all)) throw new GatewayError(400, 'GW_PUBLISH_BAD_PARAMETERS', '"study" cannot be combined with "since" or "all"');
  return { study, upstream, since, all };
}

export function resultParameters(r: PublishResult): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'outcome', valueCode: r.outcome },
    { name: 'study', valueString: r.studyInstanceUid },
    { name: 'upstream', valueString: r.upstream },
    { name: 'documentReference', valueReference: { reference: `DocumentReference/${r.stored.kosDocRefId}`, type: 'DocumentReference' } },
    { name: 'documentReference', valueReference: { reference: `DocumentReference/${r.stored.fhirDocRefId}`, type: 'DocumentReference' } },
    { name: 'instances', valueInteger: r.instances },
    { name: 'superseded', valueInteger: r.superseded.length },
  ];
  for (const f of r.forwarded) {
    parameter.push({ name: 'forward', part: [
      { name: 'recipient', valueString: f.recipient }, { name: 'status', valueCode: f.status }, { name: 'attempts', valueInteger: f.attempts },
      ...(f.error ? [{ name: 'error', valueString: f.error }] : []),
    ] });
  }
  return { resourceType: 'Parameters', parameter };
}

export function publishModule(router: Router, deps: AppDeps): void {
  const { config } = deps;
  const base = config.publicBaseUrl.replace(/\/+$/, '');
  addOperation('ImagingStudy', {
    name: 'publish',
    definition: 'urn:mado-gateway:OperationDefinition:ImagingStudy-publish',
    documentation: [
      'Content creator (MADO Imaging Manifest Creator): builds the MADO manifest (KOS with the TID 1600 Image Library) of one study from an upstream archive\'s',
      'DICOMweb (QIDO-RS study and series, WADO-RS series metadata) and stores it through the ingest path. In: Parameters `study` (valueString, Study Instance UID),',
      'optional `upstream` (valueString, configured upstream name). Out: Parameters `outcome` (created | replaced | unchanged), the two `documentReference`s,',
      '`instances`, `superseded`, and one `forward` per configured MHD recipient. 201 new manifest, 200 unchanged study (no new version), 404 no such study in the',
      'upstream, 422 OperationOutcome when the study cannot make a valid manifest (e.g. `GW_PUBLISH_NO_PATIENT_ISSUER`: no Issuer of Patient ID in the archive and',
      'no `upstreams[].patientIdIssuer`). With `since` (valueString YYYYMMDD) or `all` (valueBoolean) instead of `study`: 200 Parameters listing the',
      'upstream\'s Study Instance UIDs, nothing published. Requires the create right (technologist role); audited as an Import (DCM 110107).',
    ].join(' '),
  });
  const publisher = publisherFor({ db: deps.db, config, log: deps.log, registry: upstreamRegistryOf(config) });
  router.post('/ImagingStudy/\\$publish', async (req, res) => {
    res.locals.audit = { subtype: 'publish', action: 'C' } satisfies AuditInfo;
    const mt = requireMediaType(req, ['application/fhir+json', 'application/json', 'application/fhir+xml', 'application/xml']);
    const raw = await readBody(req, 1024 * 1024);
    const body = mt.endsWith('xml') ? parseFhirXml(raw.toString('utf8')) : parseJson(raw);
    const p = parsePublishParameters(body);
    if (!p.study) {
      const studies = await publisher.list(p.upstream, p.all ? undefined : p.since);
      res.locals.audit = { subtype: 'publish', action: 'E', count: studies.length };
      sendResource(req, res, { resourceType: 'Parameters', parameter: studies.map((s) => ({ name: 'study', valueString: s })) } satisfies Parameters, 200);
      return;
    }
    res.locals.audit = { subtype: 'publish', action: 'C', entities: [`study:${p.study}`] } satisfies AuditInfo;
    const ac = new AbortController();
    res.once('close', () => { if (!res.writableFinished) ac.abort(); });
    const r = await publisher.publish(p.study, p.upstream, ac.signal);
    const s = r.stored;
    res.locals.audit = { subtype: 'publish', action: 'C', patientIds: s.patientId ? [s.patientId] : [], entities: [`DocumentReference/${s.kosDocRefId}`, `study:${s.studyInstanceUid}`], count: r.outcome === 'unchanged' ? 0 : 1 };
    res.setHeader('Location', `${base}/fhir/DocumentReference/${s.kosDocRefId}`);
    res.setHeader('X-Publish-Result', r.outcome);
    sendResource(req, res, resultParameters(r), r.outcome === 'unchanged' ? 200 : 201);
  });
}
