/**
 * What narrows a caller's view of manifests beyond the patient filter, as data the store turns
 * into SQL (src/store/access-sql.ts) inside the same query — so a hidden document is a 404 and
 * never counted:
 * - SMART App Launch 2.x granular scopes (`patient/DocumentReference.rs?category=…`): each granted
 *   scope's query is a conjunction of token conditions; several scopes are alternatives.
 * - Confidentiality (HL7 v3 Confidentiality R, V as DocumentReference.securityLabel): labels the
 *   caller is not cleared for.
 */

/** Token search parameters a scope query may use (manifest_token codes). */
export type RestrictedParam = 'category' | 'type' | 'security-label' | 'modality';

/** One parameter of a scope query: any of the values matches (FHIR token: system|code, code, system|). */
export interface TokenCondition {
  param: RestrictedParam;
  values: Array<{ system?: string; code?: string }>;
}

/** All conditions of one scope's query must hold. */
export type ScopeQuery = TokenCondition[];

export interface AccessRestriction {
  /** Every group must hold; within a group one of the scope queries */
  scopeGroups?: ScopeQuery[][];
  /** Confidentiality codes (R, V) whose documents the caller may not see */
  hiddenConfidentiality?: string[];
}

/** Code systems a confidentiality label may be written in (URI, OID, or none). */
export const CONFIDENTIALITY_SYSTEMS = ['http://terminology.hl7.org/CodeSystem/v3-Confidentiality', 'urn:oid:2.16.840.1.113883.5.25', ''];

export function isRestricted(r: AccessRestriction | undefined): r is AccessRestriction {
  return Boolean(r && (r.scopeGroups?.length || r.hiddenConfidentiality?.length));
}
