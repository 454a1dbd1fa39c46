/**
 * AuditEvents for one request, shaped after the IHE MHD audit profiles and BALP (src/audit/profiles.ts
 * says which applies): type, subtypes, agents (agents.ts), entities (entities.ts), `meta.profile`.
 *
 * One AuditEvent per patient the response concerns (BALP PatientQuery: "one AuditEvent is created
 * for every Patient identified in the resulting search set"; the MHD profiles allow one patient
 * entity per event). A request concerning no identified patient gets one event (BALP Query / Read).
 * Outcome: 0 success, 4 minor failure (4xx, partial content), 8 serious failure (5xx), 12 major
 * failure (response aborted before it was complete). 401 / 403: DCM 110113 Security Alert.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEvent, AuditEventEntity, Extension } from '@medplum/fhirtypes';
import type { Principal } from '../model/access.js';
import { deepFreeze, memo } from '../model/memo.js';
import type { AuditRow } from '../store/audit-store.js';
import { auditAgents, serverWho } from './agents.js';
import { auditJson, type AuditFragment } from './json.js';
import { patientEntity, queryEntity, requestEntity, resourceEntities, type StoreQuery } from './entities.js';
import { actionFor, eventShape, type ActionCode, type EventShape } from './profiles.js';
import type { AuditedAction as Action, AuditInfo, AuditSubtype } from './types.js';

export { ROLE_SYSTEM } from './agents.js';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const COUNT_EXT = 'urn:mado-gateway:StructureDefinition:result-count';

export interface AuditInput {
  id: string;
  recorded: Date;
  requestId: string;
  method: string;
  /** request path, e.g. /fhir/DocumentReference (the raw query of BALP entity[query]) */
  path?: string;
  status: number;
  /** the response did not complete (client gone, stream broken) */
  aborted: boolean;
  principal?: Principal;
  action?: Action;
  info?: AuditInfo;
  breakGlass: boolean;
  clientIp?: string;
  userAgent?: string;
  /** raw query string of the request */
  rawQuery?: string;
  serverUrl: string;
  /** how entity[query].query keeps the request (default full, as BALP asks) */
  storeQuery?: StoreQuery;
}

/** The audit_event row and its resource (one definition, owned by the store). */
export type AuditRecord = AuditRow & { resource: AuditEvent };

export function outcomeCode(status: number, aborted: boolean, subtype?: string): '0' | '4' | '8' | '12' {
  if (status >= 500) return '8';
  if (aborted) return '12';
  if (status >= 400) return '4';
  if (status === 206 && subtype === 'RAD-107') return '4';
  return '0';
}

/** One record per patient concerned (at least one). */
export function buildAuditEvents(a: AuditInput): AuditRecord[] {
  const subtype: AuditSubtype | undefined = a.info?.subtype ?? a.action?.subtype;
  const actionCode = a.info?.action ?? actionFor(a.action, a.method);
  const shape = eventShape(subtype, actionCode, a.status, a.method, a.action);
  const patientIds = [...new Set(a.info?.patientIds ?? [])];
  // QIDO-RS / WADO-RS keep one event per request naming every patient (DICOM PS3.15 A.5.3.2 has
  // one Participant Object per patient); the FHIR profiles allow one patient per event.
  const perPatient = shape.kind !== 'retrieve-images' && shape.kind !== 'query-images' && patientIds.length > 1;
  const groups = perPatient ? patientIds.map((p) => [p]) : [patientIds];
  return groups.map((pids, i) => buildOne(a, shape, actionCode, subtype, pids, i === 0 ? a.id : randomUUID()));
}

/** The first (or only) record: kept for callers that build a single event. */
export function buildAuditEvent(a: AuditInput): AuditRecord {
  return buildAuditEvents(a)[0]!;
}

function buildOne(a: AuditInput, shape: EventShape, actionCode: ActionCode, subtype: AuditSubtype | undefined, patientIds: string[], id: string): AuditRecord {
  const outcome = outcomeCode(a.status, a.aborted, subtype);
  const refs = [...new Set(a.info?.entities ?? [])];
  const entity = eventEntities(a, shape, patientIds, refs, subtype);
  const profile = outcome === '0' && shape.profile ? (patientIds.length ? shape.profile.withPatient : shape.profile.withoutPatient) : undefined;
  const extension: Extension[] | undefined = a.info?.count !== undefined ? [{ url: COUNT_EXT, valueInteger: a.info.count }] : undefined;
  const resource: AuditEvent = {
    resourceType: 'AuditEvent',
    id,
    meta: metaOf(profile, a.breakGlass),
    extension,
    type: shape.type,
    subtype: shape.subtypes,
    action: actionCode,
    recorded: a.recorded.toISOString(),
    outcome,
    outcomeDesc: a.status >= 400 || a.aborted ? `HTTP ${a.status}${a.aborted ? ' (aborted)' : ''}` : undefined,
    purposeOfEvent: a.breakGlass ? [{ coding: [{ system: ACT_REASON, code: 'BTG', display: 'break the glass' }] }] : undefined,
    agent: auditAgents(a, actionCode === 'R'),
    source: sourceOf(a.serverUrl),
    entity,
  };
  const isQuery = shape.kind === 'query' || shape.kind === 'query-images';
  const fragments: AuditFragment[] = [];
  const json = auditJson(resource, fragments);
  return {
    id,
    recorded: a.recorded,
    typeCode: shape.type.code!,
    subtypeCode: shape.subtypeCode,
    action: actionCode,
    outcome,
    agentWho: a.principal?.subject ?? null,
    patientRef: patientIds[0] ? `Patient/${patientIds[0]}` : null,
    // Queries index their patients only (BALP query events name patient + query, not results;
    // each extra GIN entry costs on every search). Reads, retrievals and creates index what they
    // touched, bounded: a study retrieve can name thousands of instances.
    entityRefs: [...patientIds.map((x) => `Patient/${x}`), ...(isQuery ? [] : refs.slice(0, 1000))],
    breakGlass: a.breakGlass,
    // undefined members vanish when the resource is serialised (JSON has no undefined)
    resource,
    json,
    fragments,
  };
}

const metas = new Map<string, AuditEvent['meta']>();

/** meta: the profile claimed and the break-glass label; a handful of combinations, each built once. */
function metaOf(profile: string | undefined, breakGlass: boolean): AuditEvent['meta'] {
  if (!profile && !breakGlass) return undefined;
  return memo(metas, 100, `${breakGlass ? 'B' : ''}|${profile ?? ''}`, () =>
    deepFreeze({ ...(profile ? { profile: [profile] } : {}), ...(breakGlass ? { security: [{ system: ACT_REASON, code: 'BTG' }] } : {}) }));
}

const sources = new Map<string, AuditEvent['source']>();

/** AuditEvent.source: this gateway, the same in every event (built once per server URL). */
function sourceOf(serverUrl: string): AuditEvent['source'] {
  return memo(sources, 100, serverUrl, () =>
    deepFreeze({ observer: serverWho(serverUrl), type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }] }));
}

function eventEntities(a: AuditInput, shape: EventShape, patientIds: string[], refs: string[], subtype: AuditSubtype | undefined): AuditEventEntity[] {
  const entity: AuditEventEntity[] = [requestEntity(a.requestId), ...patientIds.map(patientEntity)];
  const isQuery = shape.kind === 'query' || shape.kind === 'query-images';
  if (isQuery && (a.rawQuery !== undefined || a.info?.query !== undefined)) {
    // GET: the query string as sent; POST _search: the form body (the search module's AuditInfo.query)
    const q = a.method === 'GET' || a.method === 'HEAD' ? (a.rawQuery ?? a.info?.query ?? '') : (a.info?.query ?? a.rawQuery ?? '');
    const raw = `${a.serverUrl.replace(/\/+$/, '')}${a.path ?? ''}${q ? `?${q}` : ''}`;
    entity.push(queryEntity(raw, a.storeQuery ?? 'full', a.action?.resourceType));
  }
  entity.push(...resourceEntities(shape.kind, refs, subtype));
  return entity;
}
