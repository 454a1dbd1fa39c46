/**
 * One FHIR AuditEvent per request, shaped after IHE BALP and the RAD-107 audit rules:
 * - ITI-67 / ITI-66 / other searches: type rest, subtype restful-interaction#search-type (+ IHE
 *   event code), action E, agents client=110153 (Source) / server=110152 (Destination).
 *   BALP wants one event per patient in the results; the gateway writes one event per request
 *   with one entity[patient] per patient (searchable by each, audit_event.entity_refs).
 * - ITI-68 / reads: type rest, subtype read (+ ITI-68), action R, client=110152 / server=110153.
 * - ITI-65 / STOW-RS: type DCM#110107 "Import" (MHD audit-65 Recipient), action C.
 * - RAD-107 (WADO-RS): type DCM#110104 "DICOM Instances Transferred", subtype RAD-107, action R;
 *   study UIDs as entity.what.identifier (type DCM#110180); 206 → outcome 4 (RAD-107 audit).
 * - RAD-129 (QIDO-RS): type DCM#110112 "Query", action E.
 * - 401 / 403: type DCM#110113 "Security Alert", subtype = the transaction attempted, outcome 4.
 * Outcome: 0 success, 4 minor failure (4xx, partial content), 8 serious failure (5xx),
 * 12 major failure (response aborted before it was complete).
 *
 * Deliberate deviation from BALP: entity[query].query (base64 of the raw request) is NOT stored.
 * Query strings carry patient business identifiers and names; the gateway keeps only their
 * SHA-256 (entity[query].what.identifier, system urn:mado-gateway:query-sha256), which still lets
 * an auditor prove which query was run when given the candidate query, without a PHI copy.
 */
import { hash } from 'node:crypto';
import type { AuditRow } from '../store/audit-store.js';
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding } from '@medplum/fhirtypes';
import type { Principal } from '../model/access.js';
import type { AuditedAction as Action, AuditInfo, AuditSubtype } from './types.js';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const AUDIT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const RESTFUL = 'http://hl7.org/fhir/restful-interaction';
const IHE_EVENT = 'urn:ihe:event-type-code';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const BALP_ENTITY = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
export const QUERY_HASH_SYSTEM = 'urn:mado-gateway:query-sha256';
export const ROLE_SYSTEM = 'urn:mado-gateway:role';
const USER_AGENT_EXT = 'urn:mado-gateway:StructureDefinition:user-agent';

const IHE_NAMES: Partial<Record<AuditSubtype, string>> = {
  'ITI-65': 'Provide Document Bundle',
  'ITI-66': 'Find Document Lists',
  'ITI-67': 'Find Document References',
  'ITI-68': 'Retrieve Document',
  'RAD-107': 'WADO-RS Retrieve',
  'RAD-129': 'QIDO-RS Query',
  'STOW-RS': 'Store Over the Web',
};

export interface AuditInput {
  id: string;
  recorded: Date;
  requestId: string;
  method: string;
  status: number;
  /** the response did not complete (client gone, stream broken) */
  aborted: boolean;
  principal?: Principal;
  action?: Action;
  info?: AuditInfo;
  breakGlass: boolean;
  clientIp?: string;
  userAgent?: string;
  /** raw query string (hashed here, never stored) */
  rawQuery?: string;
  serverUrl: string;
}

/** The audit_event row and its resource (one definition, owned by the store). */
export type AuditRecord = AuditRow;

export function outcomeCode(status: number, aborted: boolean, subtype?: string): '0' | '4' | '8' | '12' {
  if (status >= 500) return '8';
  if (aborted) return '12';
  if (status >= 400) return '4';
  if (status === 206 && subtype === 'RAD-107') return '4';
  return '0';
}

export function buildAuditEvent(a: AuditInput): AuditRecord {
  const info = a.info;
  const subtype: AuditSubtype | undefined = info?.subtype ?? a.action?.subtype;
  const denied = a.status === 401 || a.status === 403;
  const actionCode = info?.action ?? actionFor(a.action, a.method);
  const outcome = outcomeCode(a.status, a.aborted, subtype);

  // type
  let type: Coding;
  if (denied) type = { system: DCM, code: '110113', display: 'Security Alert' };
  else if (subtype === 'RAD-107') type = { system: DCM, code: '110104', display: 'DICOM Instances Transferred' };
  else if (subtype === 'RAD-129') type = { system: DCM, code: '110112', display: 'Query' };
  else if (subtype === 'ITI-65' || subtype === 'STOW-RS' || subtype === 'publish') type = { system: DCM, code: '110107', display: 'Import' };
  else type = { system: AUDIT_TYPE, code: 'rest', display: 'Restful Operation' };

  // subtype: restful interaction + IHE transaction
  const subtypes: Coding[] = [];
  const restful = restfulInteraction(actionCode, subtype, a.action);
  if (restful) subtypes.push({ system: RESTFUL, code: restful, display: restful });
  if (subtype && IHE_NAMES[subtype]) subtypes.push({ system: IHE_EVENT, code: subtype, display: IHE_NAMES[subtype] });
  if (!subtypes.length) subtypes.push({ system: 'urn:mado-gateway:http-method', code: a.method, display: a.method });
  const subtypeCode = subtype && IHE_NAMES[subtype] ? subtype : (restful ?? a.method);

  // agents (BALP): for a read the client receives data (Destination 110152, server Source 110153);
  // for a query or a create the client is the Source (110153) and the server the Destination.
  const clientIsDestination = actionCode === 'R';
  const p = a.principal;
  const clientAgent: AuditEventAgent = {
    type: { coding: [clientIsDestination ? { system: DCM, code: '110152', display: 'Destination Role ID' } : { system: DCM, code: '110153', display: 'Source Role ID' }] },
    who: p?.clientId ? { identifier: { system: p.issuer, value: p.clientId } } : { display: a.clientIp ?? 'unknown' },
    requestor: false,
    network: a.clientIp ? { address: a.clientIp, type: isIp(a.clientIp) ? '2' : '1' } : undefined,
  };
  if (a.userAgent) clientAgent.extension = [{ url: USER_AGENT_EXT, valueString: a.userAgent.slice(0, 256) }];
  const serverAgent: AuditEventAgent = {
    type: { coding: [clientIsDestination ? { system: DCM, code: '110153', display: 'Source Role ID' } : { system: DCM, code: '110152', display: 'Destination Role ID' }] },
    who: { display: 'mado-gateway', identifier: { value: a.serverUrl } },
    requestor: false,
    network: { address: hostOf(a.serverUrl), type: '1' },
  };
  const purposeOfUse = [
    ...(a.breakGlass ? [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG', display: 'break the glass' }] }] : []),
    ...(p?.purposeOfUse ?? []).map((code) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code }] })),
  ];
  const userAgent: AuditEventAgent = {
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
    who: p ? { identifier: { system: p.issuer, value: p.subject } } : { display: 'anonymous' },
    requestor: true,
    role: p?.roles.length ? [{ coding: p.roles.map((r) => ({ system: ROLE_SYSTEM, code: r })) }] : undefined,
    purposeOfUse: purposeOfUse.length ? purposeOfUse : undefined,
    // BALP OAUTHaccessTokenUse: the token is identified by its jti, never copied
    policy: p?.jti ? [`urn:ietf:params:oauth:jti:${p.jti}`] : undefined,
    extension: p?.authMethod ? [{ url: 'urn:mado-gateway:StructureDefinition:auth-method', valueCode: p.authMethod }] : undefined,
  };
  const agent: AuditEventAgent[] = [clientAgent, serverAgent, userAgent];

  // entities
  const entity: AuditEventEntity[] = [
    { what: { identifier: { value: a.requestId } }, type: { system: BALP_ENTITY, code: 'XrequestId', display: 'X-Request-Id' } },
  ];
  const patientIds = [...new Set(info?.patientIds ?? [])];
  for (const pid of patientIds) {
    entity.push({ what: { reference: `Patient/${pid}` }, type: { system: ENTITY_TYPE, code: '1', display: 'Person' }, role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } });
  }
  const isQuery = actionCode === 'E';
  if (isQuery && (a.rawQuery !== undefined || info?.query !== undefined)) {
    const q = info?.query ?? a.rawQuery ?? '';
    entity.push({
      what: { identifier: { system: QUERY_HASH_SYSTEM, value: hash('sha256', q) } },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
      description: a.action?.resourceType && a.action.resourceType !== '*' ? `${a.action.resourceType} search` : undefined,
      detail: info?.count !== undefined ? [{ type: 'count', valueString: String(info.count) }] : undefined,
    });
  }
  const refs = [...new Set(info?.entities ?? [])];
  const uidDetails: Array<{ type: string; valueString: string }> = [];
  let studyEntity: AuditEventEntity | undefined;
  for (const e of refs) {
    const m = /^(study|series|instance):(.+)$/.exec(e);
    if (m) {
      if (m[1] === 'study') {
        studyEntity = {
          what: { identifier: { type: { coding: [{ system: DCM, code: '110180', display: 'Study Instance UID' }] }, value: m[2] } },
          type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
          role: { system: OBJECT_ROLE, code: '3', display: 'Report' },
        };
        entity.push(studyEntity);
      } else uidDetails.push({ type: m[1] === 'series' ? 'SeriesInstanceUID' : 'SOPInstanceUID', valueString: m[2]! });
    } else if (!isQuery) {
      // BALP Query events carry patient + query only, not the resources a search returned.
      entity.push({ what: { reference: e }, type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: subtype === 'ITI-68' ? '3' : '4', display: subtype === 'ITI-68' ? 'Report' : 'Domain Resource' } });
    }
  }
  if (uidDetails.length) {
    const holder = studyEntity ?? (entity.push({ type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '3', display: 'Report' } }), entity[entity.length - 1]!);
    holder.detail = [...(holder.detail ?? []), ...uidDetails.slice(0, 1000)];
  }
  if (!isQuery && info?.count !== undefined) {
    entity.push({ type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, description: 'count', detail: [{ type: 'count', valueString: String(info.count) }] });
  }

  const resource: AuditEvent = {
    resourceType: 'AuditEvent',
    id: a.id,
    meta: a.breakGlass ? { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' }] } : undefined,
    type,
    subtype: subtypes,
    action: actionCode,
    recorded: a.recorded.toISOString(),
    outcome,
    outcomeDesc: a.status >= 400 || a.aborted ? `HTTP ${a.status}${a.aborted ? ' (aborted)' : ''}` : undefined,
    purposeOfEvent: a.breakGlass ? [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG', display: 'break the glass' }] }] : undefined,
    agent,
    source: { observer: { display: 'mado-gateway' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }] },
    entity,
  };
  return {
    id: a.id,
    recorded: a.recorded,
    typeCode: type.code!,
    subtypeCode: subtypeCode ?? null,
    action: actionCode,
    outcome,
    agentWho: p?.subject ?? null,
    patientRef: patientIds[0] ? `Patient/${patientIds[0]}` : null,
    // Queries index their patients only (BALP query events name patient + query, not results;
    // each extra GIN entry costs on every search). Reads, retrievals and creates index what they
    // touched, bounded: a study retrieve can name thousands of instances.
    entityRefs: [...patientIds.map((x) => `Patient/${x}`), ...(isQuery ? [] : refs.slice(0, 1000))],
    breakGlass: a.breakGlass,
    // undefined members vanish when the resource is serialised (JSON has no undefined)
    resource,
  };
}

function actionFor(action: Action | undefined, method: string): 'C' | 'R' | 'U' | 'D' | 'E' {
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
    default:
      return method === 'POST' ? 'C' : method === 'PUT' || method === 'PATCH' ? 'U' : method === 'DELETE' ? 'D' : 'R';
  }
}

function restfulInteraction(actionCode: string, subtype: AuditSubtype | undefined, action: Action | undefined): string | undefined {
  if (subtype === 'metadata') return 'capabilities';
  if (subtype === 'publish') return 'operation';
  if (subtype === 'RAD-107' || subtype === 'RAD-129' || subtype === 'STOW-RS') return undefined; // not FHIR interactions
  if (subtype === 'ITI-65' && action?.resourceType === 'Bundle' && action.kind === 'create') return 'transaction';
  switch (actionCode) {
    case 'E':
      return action?.resourceType === '*' ? 'search-system' : 'search-type';
    case 'R':
      return 'read';
    case 'C':
      return 'create';
    case 'U':
      return 'update';
    case 'D':
      return 'delete';
    default:
      return undefined;
  }
}

function isIp(s: string): boolean {
  return /^[0-9.]+$/.test(s) || s.includes(':');
}

function hostOf(u: string): string {
  try {
    return new URL(u).hostname;
  } catch {
    return u;
  }
}
