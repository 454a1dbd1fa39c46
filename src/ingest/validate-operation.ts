/**
 * POST /fhir/$validate (FHIR R4 §3.1.0.6 operation, type-less): the inputs ingest takes — a KOS
 * (application/dicom), a FHIR manifest (MadoFhirBundle or the legacy forms, JSON or XML), or a
 * Binary resource wrapping either — checked by the very functions ingest runs (parseKos,
 * parseFhirManifest), storing nothing.
 *
 * Answer: 200 with an OperationOutcome whenever the content could be examined, valid or not (the
 * outcome's error issues say it is invalid, each with its element path); 413 / 415 only when the
 * request itself is unusable. Checks that need the store (duplicate SOP Instance UID with other
 * bytes, a replace target that does not exist) are not made: they depend on the moment of
 * submission, not on the manifest.
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Request, Response, Router } from 'express';
import type { AppDeps } from '../deps.js';
import { systemOperations } from '../fhir/capability.js';
import { parseFhirXml, sendResource } from '../fhir/format.js';
import { parseJson, readBody, requireMediaType } from '../http/body.js';
import { GatewayError } from '../http/errors.js';
import type { Config } from '../config.js';
import type { ValidationIssue } from '../model/manifest.js';
import { parseFhirManifest, parseKos } from './service.js';

type Json = Record<string, unknown>;

const JSON_TYPES = ['application/fhir+json', 'application/json'];
const XML_TYPES = ['application/fhir+xml', 'application/xml'];
const ISSUE_SYSTEM = 'urn:mado-gateway:issue-code';

function toIssue(i: ValidationIssue): OperationOutcomeIssue {
  return {
    severity: i.severity,
    code: i.severity === 'error' ? 'invalid' : 'informational',
    details: { coding: [{ system: ISSUE_SYSTEM, code: i.code }], text: i.message },
    ...(i.path ? { expression: [i.path] } : {}),
  };
}

/** The refusal ingest would answer, as the first issue, followed by the issues it carried. */
function refusalIssues(err: GatewayError): OperationOutcomeIssue[] {
  const head: OperationOutcomeIssue = {
    severity: 'error',
    code: err.status === 413 ? 'too-costly' : 'invalid',
    details: { coding: [{ system: 'urn:mado-gateway:error', code: err.code }], text: err.message },
    ...(err.extra.expression ? { expression: err.extra.expression } : {}),
  };
  return [head, ...(err.extra.issues ?? [])];
}

interface Checked {
  format: 'KOS' | 'FHIR';
  what: string;
  warnings: ValidationIssue[];
}

function checkKos(bytes: Uint8Array, config: Readonly<Config>): Checked {
  const p = parseKos(bytes, config);
  if (p.kind === 'rejection-note') return { format: 'KOS', what: 'an IOCM rejection note', warnings: p.rejection.warnings };
  return { format: 'KOS', what: 'a MADO manifest', warnings: p.manifest.warnings };
}

function checkFhir(resource: unknown, raw: Uint8Array, config: Readonly<Config>): Checked {
  const r = resource as Json | undefined;
  if (r?.resourceType === 'Binary') {
    // A Binary resource wrapping a KOS or a FHIR manifest, as POST /fhir/Binary takes it.
    const ct = String(r.contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (typeof r.data !== 'string' || !r.data) throw new GatewayError(422, 'GW_BINARY_EMPTY', 'Binary.data is missing');
    const bytes = Buffer.from(r.data, 'base64');
    if (ct === 'application/dicom') return checkKos(bytes, config);
    if (ct === 'application/fhir+json' || ct === 'application/json') return checkFhir(parseJson(bytes), bytes, config);
    throw new GatewayError(422, 'GW_UNSUPPORTED_MEDIA_TYPE', `Binary.contentType "${ct || '(none)'}" is not a MADO manifest (application/dicom or application/fhir+json)`);
  }
  const p = parseFhirManifest(resource, raw, config);
  return { format: 'FHIR', what: 'a MADO manifest', warnings: p.warnings };
}

/** Validate one submission; never throws a GatewayError for content (it becomes the outcome). */
export async function validateSubmission(req: Request, config: Readonly<Config>): Promise<OperationOutcome> {
  const mt = requireMediaType(req, [...JSON_TYPES, ...XML_TYPES, 'application/dicom']);
  const body = await readBody(req, config.limits.maxBodyBytes);
  try {
    let c: Checked;
    if (mt === 'application/dicom') c = checkKos(body, config);
    else if (XML_TYPES.includes(mt)) {
      const resource = parseFhirXml(body.toString('utf8'));
      c = checkFhir(resource, Buffer.from(JSON.stringify(resource), 'utf8'), config);
    } else c = checkFhir(parseJson(body), body, config);
    const head: OperationOutcomeIssue = {
      severity: 'information',
      code: 'informational',
      details: { coding: [{ system: ISSUE_SYSTEM, code: 'GW_VALID' }], text: `Valid: ${c.what} (${c.format}); ingest would accept it` },
    };
    return { resourceType: 'OperationOutcome', issue: [head, ...c.warnings.map(toIssue)] };
  } catch (err) {
    if (err instanceof GatewayError && err.status >= 400 && err.status < 500 && err.status !== 413) {
      return { resourceType: 'OperationOutcome', issue: refusalIssues(err) };
    }
    throw err;
  }
}

export function validateOperationModule(router: Router, deps: AppDeps): void {
  if (!systemOperations.some((o) => o.name === 'validate')) {
    systemOperations.push({
      name: 'validate',
      definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
      documentation: 'POST /fhir/$validate with a KOS (application/dicom) or a MADO FHIR manifest: the ingest rules, nothing stored; 200 with an OperationOutcome (X-Validation-Result: valid | invalid)',
    });
  }
  router.post('/$validate', async (req: Request, res: Response) => {
    // No res.locals.audit: the policy's classification (kind validate → restful "operation") says it all.
    const outcome = await validateSubmission(req, deps.config);
    const errors = outcome.issue.filter((i) => i.severity === 'error' || i.severity === 'fatal').length;
    res.setHeader('X-Validation-Result', errors ? 'invalid' : 'valid');
    sendResource(req, res, outcome, 200);
  });
}
