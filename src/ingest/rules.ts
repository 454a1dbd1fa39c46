/**
 * The one rule set for a manifest submission: what the CLI `validate`, `POST /fhir/$validate` and
 * every ingest path apply. It runs the ingest parsers themselves (parseKos / parseFhirManifest), so
 * "valid" means exactly "the server would accept it" (decisions.md D93) and the warnings are the ones the ingest
 * response carries. Stores nothing.
 */
import type { Config } from '../config.js';
import type { ValidationIssue } from '../model/manifest.js';
import { GatewayError } from '../http/errors.js';
import { IngestError, parseFhirManifest, parseKos } from './service.js';

export interface ManifestValidation {
  /** true exactly when an ingest path would store (or apply) it */
  accepted: boolean;
  /** 'manifest' | 'rejection-note' when accepted */
  kind?: 'manifest' | 'rejection-note';
  issues: ValidationIssue[];
}

function refused(err: unknown): ManifestValidation {
  if (err instanceof IngestError) {
    const issues = err.issues.length ? err.issues : [{ severity: 'error' as const, code: err.code, path: '', message: err.message }];
    return { accepted: false, issues: issues.some((i) => i.severity === 'error') ? issues : [{ severity: 'error', code: err.code, path: '', message: err.message }, ...issues] };
  }
  if (err instanceof GatewayError && err.status < 500) return { accepted: false, issues: [{ severity: 'error', code: err.code, path: err.extra.expression?.[0] ?? '', message: err.message }] };
  throw err;
}

/** A DICOM Part 10 object as STOW-RS / POST /fhir/Binary would take it. */
export function validateKosSubmission(bytes: Uint8Array, config: Readonly<Config>): ManifestValidation {
  try {
    const r = parseKos(bytes, config);
    return r.kind === 'manifest' ? { accepted: true, kind: 'manifest', issues: r.manifest.warnings } : { accepted: true, kind: 'rejection-note', issues: r.rejection.warnings };
  } catch (err) {
    return refused(err);
  }
}

/** A FHIR manifest (parsed JSON) as POST /fhir/Bundle / ITI-65 would take it. `raw` is its UTF-8 JSON. */
export function validateFhirSubmission(resource: unknown, raw: Uint8Array, config: Readonly<Config>): ManifestValidation {
  try {
    return { accepted: true, kind: 'manifest', issues: parseFhirManifest(resource, raw, config).warnings };
  } catch (err) {
    return refused(err);
  }
}
