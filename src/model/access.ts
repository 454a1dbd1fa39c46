/**
 * Who is calling and which patients they may see: the types both the access layer (src/auth/,
 * which fills them in) and the storage layer (src/store/, which applies the patient filter inside
 * its SQL) need, so neither imports the other.
 */
import type { AccessRestriction } from './scope-restriction.js';

export type Role = 'radiologist' | 'referring' | 'technologist' | 'administrator';

export interface Principal {
  kind: 'loopback' | 'user' | 'system' | 'service';
  /** Stable identity for audit: JWT sub, Basic username or certificate subject */
  subject: string;
  issuer?: string;
  clientId?: string;
  jti?: string;
  roles: Role[];
  /** Granted scopes, as presented (SMART v1/v2, IUA ITI-6x, RAD-107) */
  scopes: string[];
  /**
   * Patient compartment (FHIR Patient ids of this gateway): set when the caller is limited to
   * some patients (SMART patient/ scopes with launch context, referring physician's care
   * relationship). undefined = not limited by patient.
   */
  patientIds?: string[];
  /** Granular scopes and confidentiality: what narrows the manifests this caller sees (set by the policy) */
  accessRestriction?: AccessRestriction;
  /** Break-glass purpose of use presented and accepted: read granted, audit flagged */
  breakGlass: boolean;
  /** How the caller authenticated (audit: BALP agent[user] / OAUTH token use) */
  authMethod?: 'loopback' | 'bearer' | 'basic' | 'mtls';
  /** SMART launch context: the token's `patient` claim (a gateway Patient id) */
  patientContext?: string;
  /** SMART launch patient given as a business identifier (auth.jwt.patientIdentifierClaim), resolved by the policy */
  patientIdentifier?: { system: string; value: string };
  /** Referring clinician's care relationship, resolved to gateway Patient ids (src/auth/policy.ts) */
  careRelationshipPatientIds?: string[];
  /** Care relationship as presented (system|value identifiers), resolved per request */
  careRelationship?: Array<{ system: string; value: string }>;
  /** Purpose(s) of use presented in the token (BALP agent.purposeOfUse) */
  purposeOfUse?: string[];
  /** IUA (ITI-71) home_community_id: the caller's organisation, recorded in the audit trail */
  homeCommunityId?: string;
  /** IUA national_provider_identifier, recorded in the audit trail */
  nationalProviderId?: string;
  /** Break-glass purpose presented (granted only on reads, by the policy) */
  breakGlassRequested?: boolean;
}

export const LOOPBACK_PRINCIPAL: Principal = Object.freeze({
  kind: 'loopback',
  subject: 'loopback',
  roles: ['administrator', 'radiologist', 'technologist'] as Role[],
  scopes: ['system/*.*'],
  breakGlass: false,
}) as Principal;

/**
 * SQL-side patient filter: `all` or the list of patient ids the caller may see (may be empty),
 * plus what else narrows the manifests (granular scopes, confidentiality; src/store/access-sql.ts).
 */
export type PatientFilter = ({ all: true } | { all: false; patientIds: string[] }) & { restrict?: AccessRestriction };

export function patientFilter(p: Principal): PatientFilter {
  const base: PatientFilter = p.patientIds === undefined ? { all: true } : { all: false, patientIds: p.patientIds };
  return p.accessRestriction ? { ...base, restrict: p.accessRestriction } : base;
}
