/**
 * Who is calling, as every route sees it (`req.principal`), and the one question search and
 * retrieval code asks of it: which patients may this caller see? The answer is applied inside
 * the SQL (never as a post-filter) so totals and paging never reveal hidden resources.
 *
 * src/auth/ (issue 8) authenticates requests and fills req.principal; until a request has been
 * authenticated (or when no authentication is configured — loopback only, see config.ts) the
 * principal is LOOPBACK_PRINCIPAL, which may see everything.
 */
import type { AccessRestriction } from '../model/scope-restriction.js';

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
  const restrict = p.accessRestriction;
  const base: PatientFilter = p.patientIds === undefined ? { all: true } : { all: false, patientIds: p.patientIds };
  return restrict ? { ...base, restrict } : base;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      principal?: Principal;
    }
  }
}

/** The request's principal (LOOPBACK_PRINCIPAL when authentication is not configured). */
export function principalOf(req: { principal?: Principal }): Principal {
  return req.principal ?? LOOPBACK_PRINCIPAL;
}
