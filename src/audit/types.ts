/**
 * What a route tells the audit trail about the request it served. Handlers fill
 * `res.locals.audit` (never log identifiers themselves); src/audit records one AuditEvent per
 * request when the response finishes, shaped after IHE BALP.
 */
export type AuditSubtype =
  | 'ITI-65' // Provide Document Bundle (and POST Binary/Bundle)
  | 'ITI-66' // Find Document Lists
  | 'ITI-67' // Find Document References
  | 'ITI-68' // Retrieve Document
  | 'RAD-107' // WADO-RS retrieve
  | 'RAD-129' // QIDO-RS query
  | 'STOW-RS'
  | 'publish' // ImagingStudy $publish: a manifest built from an upstream archive (an Import)
  | 'read' // other FHIR reads (ImagingStudy, Endpoint, Patient, List, AuditEvent)
  | 'search' // other FHIR searches
  | 'update'
  | 'metadata';

/**
 * What the access policy decided a request is (src/auth/policy.ts Action, seen from the audit
 * trail): the recorder is handed a classifier producing it, so audit never depends on auth.
 */
export interface AuditedAction {
  kind: string;
  /** FHIR type concerned ('ImagingStudy' for DICOMweb), '*' when unknown */
  resourceType?: string;
  /** Scope interaction checked (c r u d s) */
  interaction?: string;
  /** The IHE transaction (or generic interaction) the route serves */
  subtype?: AuditSubtype;
}

export interface AuditInfo {
  subtype: AuditSubtype;
  /** FHIR action: C create, R read, U update, D delete, E execute (search) */
  action: 'C' | 'R' | 'U' | 'D' | 'E';
  /** Patients concerned (gateway Patient ids) */
  patientIds?: string[];
  /** Entities concerned: "DocumentReference/{id}", "Binary/{id}", "study:{uid}", "series:{uid}", "instance:{uid}" */
  entities?: string[];
  /** For searches: the raw query string (hashed by the audit module; never stored or logged raw) */
  query?: string;
  /** Number of resources returned / instances transferred */
  count?: number;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      audit?: AuditInfo;
    }
  }
}
