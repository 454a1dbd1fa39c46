/**
 * AuditEvent entities, typed so each lands in the slice its profile defines (slices are told apart
 * by `entity.type`): the request id (BALP `transaction`), the patient (type 1 / role 1), the query
 * (type 2 / role 24, base64 raw request in `query`), the data read or retrieved (type 2, one per
 * event), the submission set of an ITI-65 (type 2 / role 20 Job). Further resources an event names
 * (the DocumentReferences of an ITI-65 or ITI-68, a study) are typed by their FHIR resource type so
 * they never fill a slice that allows one entity only.
 */
import { hash } from 'node:crypto';
import type { AuditEventEntity } from '@medplum/fhirtypes';
import { deepFreeze } from '../model/memo.js';
import { DCM, type EventKind } from './profiles.js';

const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const RESOURCE_TYPE = 'http://hl7.org/fhir/resource-types';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const BALP_ENTITY = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
const SYSTEM_OBJECT = deepFreeze({ system: ENTITY_TYPE, code: '2', display: 'System Object' });
const REPORT = deepFreeze({ system: OBJECT_ROLE, code: '3', display: 'Report' });

/** `full`: base64 of the raw request (BALP); `hash`: base64 of "sha256:<hex>" of it (privacy). */
export type StoreQuery = 'full' | 'hash';

// Codings every event repeats are shared (never modified after the event is built).
const REQUEST_ID_TYPE = Object.freeze({ system: BALP_ENTITY, code: 'XrequestId', display: 'X-Request-Id' });
const PERSON = Object.freeze({ system: ENTITY_TYPE, code: '1', display: 'Person' });
const PATIENT_ROLE = Object.freeze({ system: OBJECT_ROLE, code: '1', display: 'Patient' });
const QUERY_ROLE = Object.freeze({ system: OBJECT_ROLE, code: '24', display: 'Query' });

export function requestEntity(requestId: string): AuditEventEntity {
  return { what: { identifier: { value: requestId } }, type: REQUEST_ID_TYPE };
}

export function patientEntity(id: string): AuditEventEntity {
  return { what: { reference: `Patient/${id}` }, type: PERSON, role: PATIENT_ROLE };
}

/** BALP entity[query]: `query` 1..1, no `what`, no `detail`. */
export function queryEntity(rawRequest: string, mode: StoreQuery, resourceType?: string): AuditEventEntity {
  const text = mode === 'full' ? rawRequest : `sha256:${hash('sha256', rawRequest, 'hex')}`;
  return {
    type: SYSTEM_OBJECT,
    role: QUERY_ROLE,
    description: resourceType && resourceType !== '*' ? `${resourceType} search${mode === 'hash' ? ' (query stored as its SHA-256)' : ''}` : undefined,
    query: Buffer.from(text, 'utf8').toString('base64'),
  };
}

/**
 * Entities for what a read, retrieve or create touched ("DocumentReference/{id}", "Binary/{id}",
 * "List/{id}", "study:{uid}", "series:{uid}", "instance:{uid}"). Query events name no results.
 */
export function resourceEntities(kind: EventKind, refs: readonly string[], transaction?: string): AuditEventEntity[] {
  const out: AuditEventEntity[] = [];
  const uidDetails: Array<{ type: string; valueString: string }> = [];
  let study: AuditEventEntity | undefined;
  let data = false; // the one type-2 entity of a read (BALP entity[data])
  for (const e of refs) {
    const m = /^(study|series|instance):(.+)$/.exec(e);
    if (m?.[1] === 'study') {
      // RAD-107 keeps the DICOM shape; elsewhere the study is typed ImagingStudy (no slice).
      const type = kind === 'retrieve-images' ? SYSTEM_OBJECT : { system: RESOURCE_TYPE, code: 'ImagingStudy', display: 'ImagingStudy' };
      study = { what: { identifier: { type: { coding: [{ system: DCM, code: '110180', display: 'Study Instance UID' }] }, value: m[2] } }, type, role: REPORT };
      out.push(study);
    } else if (m) uidDetails.push({ type: m[1] === 'series' ? 'SeriesInstanceUID' : 'SOPInstanceUID', valueString: m[2]! });
    else if (kind !== 'query' && kind !== 'query-images') out.push(referenceEntity(kind, e, transaction, () => (data ? false : (data = true))));
  }
  if (uidDetails.length) {
    const holder = study ?? (out.push({ type: SYSTEM_OBJECT, role: REPORT }), out[out.length - 1]!);
    holder.detail = [...(holder.detail ?? []), ...uidDetails.slice(0, 1000)];
  }
  return out;
}

function referenceEntity(kind: EventKind, ref: string, transaction: string | undefined, takeData: () => boolean): AuditEventEntity {
  const type = ref.slice(0, Math.max(0, ref.indexOf('/')));
  if (kind === 'import' && type === 'List') return { what: { reference: ref }, type: SYSTEM_OBJECT, role: { system: OBJECT_ROLE, code: '20', display: 'Job' } };
  const isDocument = transaction === 'ITI-68' && (type === 'Binary' || type === 'Bundle');
  if ((kind === 'read' || kind === 'retrieve-images') && (isDocument || transaction !== 'ITI-68') && takeData()) {
    return { what: { reference: ref }, type: SYSTEM_OBJECT, role: isDocument ? REPORT : { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } };
  }
  return { what: { reference: ref }, type: { system: RESOURCE_TYPE, code: type || 'Resource', display: type || 'Resource' }, role: type === 'DocumentReference' ? REPORT : { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } };
}
