/**
 * Which AuditEvent shape a request gets: event type, subtypes and the profile it claims
 * (`meta.profile`). Profiles: IHE MHD 4.2 Document Responder / Recipient audit profiles, which
 * derive from IHE BALP 1.1 (Basic Audit Log Patterns):
 * - ITI-65 at the Recipient: type DCM 110107 Import, subtype ITI-65, action C (MHD audit-65).
 * - ITI-66 / ITI-67 at the Responder: BALP PatientQuery — type `rest`, subtype search-type plus the
 *   transaction, action E. BALP fixes `type` to `rest`, so the DICOM event ID 110112 Query is
 *   carried as one more subtype (BALP's own MHD examples move the DICOM code there the same way).
 * - ITI-68 at the Responder: BALP PatientRead — type `rest`, subtype read + ITI-68 (+ DCM 110106
 *   Export), action R.
 * - Other FHIR reads / searches: BALP (Patient)Read / (Patient)Query.
 * - RAD-107 (DCM 110104), QIDO-RS (DCM 110112), STOW-RS (DCM 110107): DICOM PS3.15 A.5 event IDs,
 *   no FHIR profile.
 * BALP records failures "differently" (its profiles fix outcome 0): a failed request claims no profile
 * (decisions.md D70).
 */
import type { Coding } from '@medplum/fhirtypes';
import { deepFreeze, memo } from '../model/memo.js';
import type { AuditedAction as Action, AuditSubtype } from './types.js';

export const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const AUDIT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const RESTFUL = 'http://hl7.org/fhir/restful-interaction';
const IHE_EVENT = 'urn:ihe:event-type-code';
const MHD = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/';
const BALP = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/';

export const PROFILES = {
  iti65: `${MHD}IHE.MHD.ProvideBundle.Audit.Recipient`,
  iti66: `${MHD}IHE.MHD.FindDocumentLists.Audit.Responder`,
  iti67: `${MHD}IHE.MHD.FindDocumentReferences.Audit.Responder`,
  iti68: `${MHD}IHE.MHD.RetrieveDocument.Audit.Responder`,
  patientQuery: `${BALP}IHE.BasicAudit.PatientQuery`,
  query: `${BALP}IHE.BasicAudit.Query`,
  patientRead: `${BALP}IHE.BasicAudit.PatientRead`,
  read: `${BALP}IHE.BasicAudit.Read`,
} as const;

const IHE_NAMES: Partial<Record<AuditSubtype, string>> = {
  'ITI-65': 'Provide Document Bundle',
  'ITI-66': 'Find Document Lists',
  'ITI-67': 'Find Document References',
  'ITI-68': 'Retrieve Document',
  'RAD-107': 'WADO-RS Retrieve',
  'RAD-129': 'QIDO-RS Query',
  'STOW-RS': 'Store Over the Web',
};

export type ActionCode = 'C' | 'R' | 'U' | 'D' | 'E';

/** The families of events: each has its own agent directions and entity rules. */
export type EventKind = 'import' | 'query' | 'read' | 'retrieve-images' | 'query-images' | 'denied' | 'other';

export interface EventShape {
  kind: EventKind;
  type: Coding;
  subtypes: Coding[];
  /** the value indexed in audit_event.subtype_code */
  subtypeCode: string;
  /** profile claimed when the request succeeded, with / without an identified patient */
  profile?: { withPatient: string; withoutPatient?: string };
}

// A few dozen distinct shapes occur (transaction × action × method); each is built once and shared,
// frozen, by the events that have it (the memo is bounded: resource types come from request paths).
const shapes = new Map<string, EventShape>();

export function eventShape(subtype: AuditSubtype | undefined, actionCode: ActionCode, status: number, method: string, action?: Action): EventShape {
  const key = `${subtype}|${actionCode}|${status === 401 || status === 403 ? 'denied' : ''}|${method}|${action?.kind}|${action?.resourceType}`;
  return memo(shapes, 1_000, key, () => deepFreeze(buildEventShape(subtype, actionCode, status, method, action)));
}

function buildEventShape(subtype: AuditSubtype | undefined, actionCode: ActionCode, status: number, method: string, action?: Action): EventShape {
  const restful = restfulInteraction(actionCode, subtype, action);
  const subtypes: Coding[] = [];
  if (restful) subtypes.push({ system: RESTFUL, code: restful, display: restful });
  if (subtype && IHE_NAMES[subtype]) subtypes.push({ system: IHE_EVENT, code: subtype, display: IHE_NAMES[subtype] });
  if (!subtypes.length) subtypes.push({ system: 'urn:mado-gateway:http-method', code: method, display: method });
  const subtypeCode = subtype && IHE_NAMES[subtype] ? subtype : (restful ?? method);
  const base = { subtypes, subtypeCode };
  if (status === 401 || status === 403) return { ...base, kind: 'denied', type: { system: DCM, code: '110113', display: 'Security Alert' } };
  if (subtype === 'RAD-107') return { ...base, kind: 'retrieve-images', type: { system: DCM, code: '110104', display: 'DICOM Instances Transferred' } };
  if (subtype === 'RAD-129') return { ...base, kind: 'query-images', type: { system: DCM, code: '110112', display: 'Query' } };
  if (subtype === 'STOW-RS') return { ...base, kind: 'import', type: { system: DCM, code: '110107', display: 'Import' } };
  // ImagingStudy $publish stores a manifest the gateway built from an upstream archive: an Import
  if (subtype === 'publish' && actionCode === 'C') return { ...base, kind: 'import', type: { system: DCM, code: '110107', display: 'Import' } };
  if (subtype === 'ITI-65' && actionCode === 'C') return { ...base, kind: 'import', type: { system: DCM, code: '110107', display: 'Import' }, profile: { withPatient: PROFILES.iti65 } };
  const rest: Coding = { system: AUDIT_TYPE, code: 'rest', display: 'Restful Operation' };
  // $validate reads and stores nothing: an operation, no BALP query/read profile applies
  if (action?.kind === 'validate') return { ...base, kind: 'other', type: rest };
  if (actionCode === 'E') {
    if (subtype === 'ITI-66' || subtype === 'ITI-67') subtypes.push({ system: DCM, code: '110112', display: 'Query' });
    const mhd = subtype === 'ITI-67' ? PROFILES.iti67 : subtype === 'ITI-66' ? PROFILES.iti66 : PROFILES.patientQuery;
    return { ...base, kind: 'query', type: rest, profile: { withPatient: mhd, withoutPatient: PROFILES.query } };
  }
  if (actionCode === 'R') {
    if (subtype === 'ITI-68') subtypes.push({ system: DCM, code: '110106', display: 'Export' });
    const profile = subtype === 'metadata' ? undefined : { withPatient: subtype === 'ITI-68' ? PROFILES.iti68 : PROFILES.patientRead, withoutPatient: PROFILES.read };
    return { ...base, kind: 'read', type: rest, profile };
  }
  return { ...base, kind: 'other', type: rest };
}

function restfulInteraction(actionCode: string, subtype: AuditSubtype | undefined, action: Action | undefined): string | undefined {
  if (subtype === 'metadata') return 'capabilities';
  if (subtype === 'publish') return 'operation';
  if (subtype === 'RAD-107' || subtype === 'RAD-129' || subtype === 'STOW-RS') return undefined; // not FHIR interactions
  if (subtype === 'ITI-65' && action?.resourceType === 'Bundle' && action.kind === 'create') return 'transaction';
  if (action?.kind === 'validate') return 'operation';
  const byAction: Record<string, string> = { R: 'read', C: 'create', U: 'update', D: 'delete' };
  if (actionCode === 'E') return action?.resourceType === '*' ? 'search-system' : 'search-type';
  return byAction[actionCode];
}

export function actionFor(action: Action | undefined, method: string): ActionCode {
  switch (action?.kind) {
    case 'search':
    case 'query-images':
      return 'E';
    case 'create':
      return 'C';
    case 'update':
      return method === 'DELETE' ? 'D' : 'U';
    case 'read':
    case 'retrieve-images':
    case 'public':
      return 'R';
    case 'audit-read':
      return action.interaction === 's' ? 'E' : 'R';
    case 'validate':
      return 'E';
    default:
      return method === 'POST' ? 'C' : method === 'PUT' || method === 'PATCH' ? 'U' : method === 'DELETE' ? 'D' : 'R';
  }
}
