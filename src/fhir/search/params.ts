/**
 * The search parameters the gateway implements, per resource type, and where each is answered
 * (one explicit table, decisions.md D44). The route modules register these in src/fhir/registry.ts,
 * so the CapabilityStatement and CONFORMANCE.md list exactly what this table supports.
 */
import type { SearchParamDef, UnsupportedSearchParam } from '../registry.js';

const FHIR_SP = 'http://hl7.org/fhir/SearchParameter';
const MHD_SP = 'https://profiles.ihe.net/ITI/MHD/SearchParameter';
const MADO_SP = 'https://profiles.ihe.net/RAD/MADO/SearchParameter';

export type Target =
  /** manifest_token / submission_set_token rows with one of these codes */
  | { t: 'token'; codes: string[]; uid?: boolean; requireSystem?: boolean }
  /** A token answered by a column; map turns the token into column values (undefined = matches nothing) */
  | { t: 'column-token'; column: string; map?: (system: string | undefined, value: string) => string[] | undefined }
  | { t: 'date'; column: string }
  | { t: 'period' }
  /** Reference to a resource whose id is in `column`; :identifier resolves through token codes */
  | { t: 'reference'; column: string; targetType: string; identifierCodes?: string[] }
  | { t: 'string'; column: string }
  /** DocumentReference.identifier: uniqueId via manifest_token, the per-docref entryUUID via document_reference.entry_uuid */
  | { t: 'docref-identifier' }
  /** Name part of contained person resources referenced by author / source (migration 0005 name terms) */
  | { t: 'name-terms'; column: string; part: 'given' | 'family' }
  | { t: 'patient-identifier' }
  /** ImagingStudy._id (ids derive from the manifest's docref ids) */
  | { t: 'imaging-study-id' }
  | { t: 'endpoint-ref' }
  /**
   * DocumentReference.related: logical references (type + identifier) only. :identifier resolves
   * through tokens; a plain ImagingStudy reference resolves to that ImagingStudy's study.
   */
  | { t: 'related'; identifierCodes: string[] };

export interface SearchParamImpl extends SearchParamDef {
  target: Target;
  /** Other names accepted for this parameter (decisions.md D16) */
  aliases?: string[];
}

/** Format codes (SUPPL format codes, D3, D4): matched on code regardless of system. */
const FORMAT_CODES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.88.59': 'kos',
  'urn:oid:1.2.840.10008.5.1.4.1.1.88.59': 'kos',
  'urn:ihe:rad:1.2.840.10008.5.1.4.1.1.88.59': 'kos', // XDS-I.b formatCode for KOS manifests
  'urn:ihe:rad:MADO:fhir-manifest:2026': 'fhir',
};

const DOCREF_STATUS = new Set(['current', 'superseded', 'entered-in-error']);

const PERSON_NAME_DOC = 'a contained Practitioner, Patient or RelatedPerson the reference points at (#id); other references do not resolve. Default: starts-with, case- and accent-insensitive, on each given/family value (values over 64 characters must match whole); :exact: whole value, case- and accent-sensitive (FHIR 3.1.1.4.7).';

const lastUpdated = (column = 'lastUpdated'): SearchParamImpl => ({
  name: '_lastUpdated',
  type: 'date',
  definition: `${FHIR_SP}/Resource-lastUpdated`,
  documentation: 'When the resource last changed (status changes included).',
  target: { t: 'date', column },
});

const id = (target: Target = { t: 'column-token', column: 'id' }): SearchParamImpl => ({
  name: '_id',
  type: 'token',
  definition: `${FHIR_SP}/Resource-id`,
  target,
  modifiers: ['not'],
});

const tok = (name: string, codes: string[], definition: string, documentation: string, extra: Partial<SearchParamImpl> = {}): SearchParamImpl => ({
  name,
  type: 'token',
  definition,
  documentation,
  modifiers: ['missing', 'not'],
  target: { t: 'token', codes },
  ...extra,
});

export const DOCUMENT_REFERENCE_PARAMS: SearchParamImpl[] = [
  id(),
  lastUpdated(),
  {
    name: 'patient',
    type: 'reference',
    definition: `${FHIR_SP}/clinical-patient`,
    documentation: 'Patient/{id}, {id} or an absolute URL; patient:identifier=system|value is patient.identifier.',
    modifiers: ['identifier', 'missing'],
    target: { t: 'reference', column: 'patient', targetType: 'Patient', identifierCodes: ['patient.identifier'] },
  },
  {
    name: 'subject',
    type: 'reference',
    definition: `${FHIR_SP}/DocumentReference-subject`,
    documentation: 'As patient; subject:identifier=system|value (MADO/EHDS) is patient.identifier.',
    modifiers: ['identifier', 'missing'],
    target: { t: 'reference', column: 'patient', targetType: 'Patient', identifierCodes: ['patient.identifier'] },
  },
  tok('patient.identifier', ['patient.identifier'], 'chained: patient.identifier', 'Issuer-aware patient identifier: system|value, or |value for an identifier without issuer; a bare value is refused (product ask 7, ITI TF-2 Appendix Z.2).', {
    target: { t: 'token', codes: ['patient.identifier'], requireSystem: true },
  }),
  {
    name: 'status',
    type: 'token',
    definition: `${FHIR_SP}/DocumentReference-status`,
    documentation: 'current | superseded | entered-in-error. Without status, entered-in-error documents are not returned.',
    modifiers: ['not'],
    target: { t: 'column-token', column: 'status', map: (_s, v) => (DOCREF_STATUS.has(v) ? [v] : undefined) },
  },
  { name: 'creation', type: 'date', definition: `${MHD_SP}/DocumentReference-Creation`, documentation: 'content.attachment.creation.', modifiers: ['missing'], target: { t: 'date', column: 'creation' } },
  { name: 'date', type: 'date', definition: `${FHIR_SP}/DocumentReference-date`, documentation: 'When the DocumentReference was created (decisions.md D29).', target: { t: 'date', column: 'date' } },
  { name: 'author.given', type: 'string', definition: 'chained: author.given', documentation: `Given name of an author: ${PERSON_NAME_DOC} DocumentReferences rendered from MADO manifests name a Device and an Organization (decisions.md D30) and do not match.`, modifiers: ['exact'], target: { t: 'name-terms', column: 'authorTerms', part: 'given' } },
  { name: 'author.family', type: 'string', definition: 'chained: author.family', documentation: `Family name of an author: ${PERSON_NAME_DOC} DocumentReferences rendered from MADO manifests name a Device and an Organization (decisions.md D30) and do not match.`, modifiers: ['exact'], target: { t: 'name-terms', column: 'authorTerms', part: 'family' } },
  tok('category', ['category'], `${FHIR_SP}/DocumentReference-category`, 'classCode.'),
  tok('type', ['type'], `${FHIR_SP}/clinical-type`, 'typeCode.'),
  tok('setting', ['setting'], `${FHIR_SP}/DocumentReference-setting`, 'practiceSettingCode.'),
  { name: 'period', type: 'date', definition: `${FHIR_SP}/DocumentReference-period`, documentation: 'context.period, interval overlap (ge = serviceStopTimeFrom, lt = serviceStartTimeTo); a period without end is the instant of its start.', target: { t: 'period' } },
  tok('facility', ['facility'], `${FHIR_SP}/DocumentReference-facility`, 'healthcareFacilityTypeCode.'),
  tok('event', ['event'], `${FHIR_SP}/DocumentReference-event`, 'eventCodeList (modality and anatomic region codes, decisions.md D28).'),
  tok('security-label', ['security-label'], `${FHIR_SP}/DocumentReference-security-label`, 'confidentialityCode.'),
  {
    name: 'format',
    type: 'token',
    definition: `${FHIR_SP}/DocumentReference-format`,
    documentation: 'KOS 1.2.840.10008.5.1.4.1.1.88.59 or FHIR urn:ihe:rad:MADO:fhir-manifest:2026, matched on the code whatever the system (decisions.md D4).',
    modifiers: ['not'],
    target: { t: 'column-token', column: 'format', map: (_s, v) => (FORMAT_CODES[v] ? [FORMAT_CODES[v]!] : undefined) },
  },
  {
    name: 'related',
    type: 'reference',
    definition: `${FHIR_SP}/DocumentReference-related`,
    documentation: 'context.related holds logical references (Study Instance UID, Accession Number, and any identifier the Document Source submitted): related:identifier matches them; related=ImagingStudy/{id} (or an absolute URL) matches the documents of that ImagingStudy\'s study; other reference targets match nothing.',
    modifiers: ['identifier'],
    target: { t: 'related', identifierCodes: ['study-instance-uid', 'accession-number', 'related'] },
  },
  tok('identifier', ['identifier'], `${FHIR_SP}/clinical-identifier`, 'masterIdentifier and identifier: the uniqueId (urn:ietf:rfc:3986|urn:oid:<SOP Instance UID>, shared by the KOS and FHIR docref) and the entryUUID of each docref (urn:ietf:rfc:3986|urn:uuid:<uuid>). urn:oid:/urn:uuid: values also match bare (decisions.md D13, D14); |value matches identifiers without a system, which these docrefs do not carry.', {
    target: { t: 'docref-identifier' },
  }),
  tok('study-instance-uid', ['study-instance-uid'], `${MADO_SP}/SearchParameterDocumentReferenceStudyInstanceUid`, 'MADO: Study Instance UID (urn:oid: or bare, decisions.md D14).', {
    target: { t: 'token', codes: ['study-instance-uid'], uid: true },
  }),
  tok('accession-number', ['accession-number'], `${MADO_SP}/SearchParameterDocumentReferenceAccessionNumber`, 'MADO: Accession Number (system = issuer).'),
  tok('modality', ['modality'], `${MADO_SP}/SearchParameterDocumentReferenceModality`, 'MADO: modality (DCM codes).'),
  tok('anatomical-region', ['anatomical-region'], `${MADO_SP}/SearchParameterDocumentReferenceBodySite`, 'MADO: anatomic region; also accepted as bodysite (decisions.md D16).', { aliases: ['bodysite'] }),
];

export const IMAGING_STUDY_PARAMS: SearchParamImpl[] = [
  id({ t: 'imaging-study-id' }),
  lastUpdated(),
  {
    name: 'patient',
    type: 'reference',
    definition: `${FHIR_SP}/clinical-patient`,
    modifiers: ['identifier'],
    target: { t: 'reference', column: 'patient', targetType: 'Patient', identifierCodes: ['patient.identifier'] },
  },
  {
    name: 'subject',
    type: 'reference',
    definition: `${FHIR_SP}/ImagingStudy-subject`,
    modifiers: ['identifier'],
    target: { t: 'reference', column: 'patient', targetType: 'Patient', identifierCodes: ['patient.identifier'] },
  },
  tok('patient.identifier', ['patient.identifier'], 'chained: patient.identifier', 'Issuer-aware patient identifier (system|value or |value).', {
    target: { t: 'token', codes: ['patient.identifier'], requireSystem: true },
  }),
  tok('identifier', ['study-instance-uid', 'accession-number'], `${FHIR_SP}/clinical-identifier`, 'Study Instance UID (urn:dicom:uid|urn:oid:…, or bare) or Accession Number.', {
    target: { t: 'token', codes: ['study-instance-uid', 'accession-number'], uid: true },
  }),
  { name: 'started', type: 'date', definition: `${FHIR_SP}/ImagingStudy-started`, modifiers: ['missing'], target: { t: 'date', column: 'started' } },
  tok('modality', ['modality'], `${FHIR_SP}/ImagingStudy-modality`, 'Modality (DCM).'),
  tok('bodysite', ['bodysite', 'anatomical-region'], `${FHIR_SP}/ImagingStudy-bodysite`, 'Series body site or study anatomic region.'),
  { name: 'endpoint', type: 'reference', definition: `${FHIR_SP}/ImagingStudy-endpoint`, documentation: 'Endpoint/{id} of a series or the study.', target: { t: 'endpoint-ref' } },
  tok('series', ['series'], `${FHIR_SP}/ImagingStudy-series`, 'Series Instance UID (bare).'),
  {
    name: 'status',
    type: 'token',
    definition: `${FHIR_SP}/ImagingStudy-status`,
    documentation: 'available (current manifest) | entered-in-error. Without status, entered-in-error studies are not returned.',
    modifiers: ['not'],
    target: { t: 'column-token', column: 'status', map: (_s, v) => (v === 'available' ? ['current'] : v === 'entered-in-error' ? ['entered-in-error'] : undefined) },
  },
];

export const PATIENT_PARAMS: SearchParamImpl[] = [
  id(),
  lastUpdated(),
  { name: 'identifier', type: 'token', definition: `${FHIR_SP}/Patient-identifier`, documentation: 'system|value or |value (no issuer); a bare value is refused (product ask 7).', modifiers: ['not'], target: { t: 'patient-identifier' } },
  { name: 'name', type: 'string', definition: `${FHIR_SP}/Patient-name`, documentation: 'Starts-with on any name part, case-insensitive.', modifiers: ['exact'], target: { t: 'string', column: 'name' } },
  { name: 'family', type: 'string', definition: `${FHIR_SP}/individual-family`, modifiers: ['exact'], target: { t: 'string', column: 'family' } },
  { name: 'given', type: 'string', definition: `${FHIR_SP}/individual-given`, modifiers: ['exact'], target: { t: 'string', column: 'given' } },
  { name: 'birthdate', type: 'date', definition: `${FHIR_SP}/individual-birthdate`, modifiers: ['missing'], target: { t: 'date', column: 'birthdate' } },
];

export const ENDPOINT_PARAMS: SearchParamImpl[] = [
  id(),
  lastUpdated(),
  { name: 'connection-type', type: 'token', definition: `${FHIR_SP}/Endpoint-connection-type`, documentation: 'Matched on the code (dicom-wado-rs, ihe-iid).', target: { t: 'column-token', column: 'connection-type' } },
];

export const LIST_PARAMS: SearchParamImpl[] = [
  id(),
  lastUpdated(),
  { name: 'patient', type: 'reference', definition: `${FHIR_SP}/clinical-patient`, modifiers: ['identifier'], target: { t: 'reference', column: 'patient', targetType: 'Patient', identifierCodes: ['patient.identifier'] } },
  tok('patient.identifier', ['patient.identifier'], 'chained: patient.identifier', 'Issuer-aware patient identifier (system|value or |value).', {
    target: { t: 'token', codes: ['patient.identifier'], requireSystem: true },
  }),
  tok('code', ['code'], `${FHIR_SP}/clinical-code`, 'submissionset | folder (MHDlistTypes).'),
  { name: 'status', type: 'token', definition: `${FHIR_SP}/List-status`, documentation: 'current | retired | entered-in-error (code only).', modifiers: ['not'], target: { t: 'column-token', column: 'status' } },
  { name: 'date', type: 'date', definition: `${FHIR_SP}/clinical-date`, target: { t: 'date', column: 'date' } },
  tok('identifier', ['identifier'], `${FHIR_SP}/clinical-identifier`, 'uniqueId / entryUUID.', { target: { t: 'token', codes: ['identifier'], uid: true } }),
  tok('designationType', ['designation-type'], `${MHD_SP}/List-DesignationType`, 'SubmissionSet contentTypeCode.'),
  tok('sourceId', ['source-id'], `${MHD_SP}/List-SourceId`, 'SubmissionSet sourceId (ihe-sourceId extension).', { target: { t: 'token', codes: ['source-id'], uid: true } }),
  { name: 'source.given', type: 'string', definition: 'chained: source.given', documentation: `Given name of the SubmissionSet author (List.source): ${PERSON_NAME_DOC}`, modifiers: ['exact'], target: { t: 'name-terms', column: 'sourceTerms', part: 'given' } },
  { name: 'source.family', type: 'string', definition: 'chained: source.family', documentation: `Family name of the SubmissionSet author (List.source): ${PERSON_NAME_DOC}`, modifiers: ['exact'], target: { t: 'name-terms', column: 'sourceTerms', part: 'family' } },
];

const TARGET_COMMUNITY: UnsupportedSearchParam = {
  name: 'targetCommunityIdList',
  type: 'uri',
  definition: `${MHD_SP}/IHE-TargetCommunityIdList`,
  reason: 'MHD Target Communities Option (ITI-67/66 via an XCA gateway) is not implemented: the gateway answers from its own store, which carries no homeCommunityId.',
};

/**
 * Parameters of the MHD transactions this server does not implement (MHD ITI-67, MHD ITI-66). Listed in
 * the CapabilityStatement (resource documentation) and CONFORMANCE.md; a request using one gets
 * the unknown-parameter warning, or 400 with Prefer: handling=strict.
 */
export const UNSUPPORTED: Record<string, UnsupportedSearchParam[]> = {
  DocumentReference: [TARGET_COMMUNITY],
  List: [TARGET_COMMUNITY],
};

export function findUnsupported(type: string, name: string): UnsupportedSearchParam | undefined {
  return UNSUPPORTED[type]?.find((p) => p.name === name);
}

/** Sort keys accepted per type (`_sort`), with the column they order on. */
export const SORTS: Record<string, Record<string, string>> = {
  DocumentReference: { _lastUpdated: 'lastUpdated', date: 'date', creation: 'creation' },
  ImagingStudy: { _lastUpdated: 'lastUpdated', started: 'started' },
  Patient: { _lastUpdated: 'lastUpdated' },
  Endpoint: { _lastUpdated: 'lastUpdated' },
  List: { _lastUpdated: 'lastUpdated', date: 'date' },
};

export const PARAMS: Record<string, SearchParamImpl[]> = {
  DocumentReference: DOCUMENT_REFERENCE_PARAMS,
  ImagingStudy: IMAGING_STUDY_PARAMS,
  Patient: PATIENT_PARAMS,
  Endpoint: ENDPOINT_PARAMS,
  List: LIST_PARAMS,
};

/** _include / _revinclude values per type (FHIR 3.1.1.5.4). */
export const INCLUDES: Record<string, string[]> = {
  DocumentReference: ['DocumentReference:subject', 'DocumentReference:patient'],
  ImagingStudy: ['ImagingStudy:patient', 'ImagingStudy:subject', 'ImagingStudy:endpoint'],
  List: ['List:subject', 'List:patient'],
};
export const REVINCLUDES: Record<string, string[]> = {
  Patient: ['DocumentReference:subject', 'DocumentReference:patient', 'ImagingStudy:subject', 'ImagingStudy:patient'],
  ImagingStudy: [],
};

export function findParam(type: string, name: string): SearchParamImpl | undefined {
  return PARAMS[type]?.find((p) => p.name === name || p.aliases?.includes(name));
}

/** Registry view (what the CapabilityStatement lists): aliases as their own entries. */
export function registryParams(type: string): SearchParamDef[] {
  const out: SearchParamDef[] = [];
  for (const p of PARAMS[type] ?? []) {
    out.push({ name: p.name, type: p.type, definition: p.definition?.startsWith('chained') ? undefined : p.definition, documentation: p.documentation, modifiers: p.modifiers });
    for (const a of p.aliases ?? []) out.push({ name: a, type: p.type, definition: p.definition, documentation: `Alias of ${p.name} (decisions.md D16).`, modifiers: p.modifiers });
  }
  return out;
}
