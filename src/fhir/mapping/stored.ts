/**
 * The FHIR side of a stored manifest, rendered for the store (src/store/manifests.ts writes rows,
 * it never builds FHIR): both DocumentReferences of a version, the Endpoint and Patient resources,
 * the identifier systems of issuer-qualified ids, and the manifest_token search rows (their codes
 * are documented at the top of src/store/manifests.ts). Pure: no I/O.
 */
import type { DocumentDefaults } from '../../config.js';
import { manifestResourceIds, patientId as patientIdOf } from '../../model/ids.js';
import type { Code, Issuer, Manifest, PatientIdentifier } from '../../model/manifest.js';
import { schemeToSystem } from './codes.js';
import { issuerSystem } from './common.js';
import { applyDocRefMetadata, docRefMetadataTokens, type DocRefMetadata } from './docref-metadata.js';
import { manifestEndpoints, manifestToDocumentReferences, type MappingContext } from './to-fhir.js';

type Json = Record<string, any>;

const SYS_DCM = 'http://dicom.nema.org/resources/ontology/DCM';

/** One manifest version as its DocumentReferences show it. */
export interface DocRefVersion {
  status: 'current' | 'superseded' | 'entered-in-error';
  nativeFormat: 'kos' | 'fhir';
  date: Date;
  lastUpdated: Date;
  versionId: number;
  /** SOP Instance UID of the manifest this one replaces (relatesTo replaces) */
  replacesSop?: string;
  /** What the Document Source's DocumentReference said, overlaid on both */
  metadata?: DocRefMetadata | null;
}

/** Identifier system of an issuer-qualified DICOM id (patient_identifier.system, token system). */
export function issuerToSystem(iss: Issuer | undefined): string {
  return issuerSystem(iss) ?? iss?.localNamespace ?? iss?.universalEntityId ?? '';
}

function codeSystem(c: Code): string {
  return schemeToSystem(c.scheme) ?? c.scheme ?? '';
}


export interface Token {
  code: string;
  system: string;
  value: string;
}

function patientIds(m: Manifest): PatientIdentifier[] {
  const out: PatientIdentifier[] = [];
  const seen = new Set<string>();
  for (const p of [...(m.patient.id ? [m.patient.id] : []), ...m.patient.otherIds]) {
    if (!p.value) continue;
    const k = `${issuerToSystem(p.issuer)}|${p.value}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(p);
  }
  return out;
}

/** Study modalities as the docref shows them (Image Library, else union of series, decisions.md D35). */
export function studyModalities(m: Manifest): string[] {
  if (m.study.modalities.length) return [...m.study.modalities];
  const out: string[] = [];
  for (const e of m.evidence) for (const s of e.series) if (s.modality && !out.includes(s.modality)) out.push(s.modality);
  return out;
}

/** The manifest_token rows of a manifest (documented at the top of this file). */
export function manifestTokens(m: Manifest, defaults: DocumentDefaults, endpointIds: string[], metadata?: DocRefMetadata | null): Token[] {
  const out: Token[] = [];
  const seen = new Set<string>();
  const add = (code: string, system: string, value: string | undefined) => {
    if (!value) return;
    const k = `${code}\u0000${system}\u0000${value}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push({ code, system, value });
  };
  for (const p of patientIds(m)) add('patient.identifier', issuerToSystem(p.issuer), p.value);
  const sop = m.document.sopInstanceUid;
  add('identifier', 'urn:ietf:rfc:3986', `urn:oid:${sop}`);
  add('identifier', '', sop);
  for (const uid of [m.study.studyInstanceUid, ...m.evidence.map((e) => e.studyInstanceUid)]) {
    add('study-instance-uid', 'urn:dicom:uid', uid ? `urn:oid:${uid}` : undefined);
    add('study-instance-uid', '', uid);
  }
  const accessions = [m.study.accession, ...m.study.requests.map((r) => r.accession)];
  for (const a of accessions) if (a?.value) add('accession-number', issuerToSystem(a.issuer), a.value);
  const modalities = studyModalities(m);
  for (const e of m.evidence) for (const s of e.series) if (s.modality && !modalities.includes(s.modality)) modalities.push(s.modality);
  for (const mod of modalities) {
    add('modality', SYS_DCM, mod);
    add('event', SYS_DCM, mod);
  }
  for (const r of m.study.anatomicalRegions) {
    add('anatomical-region', codeSystem(r), r.value);
    add('event', codeSystem(r), r.value);
  }
  for (const e of m.evidence) for (const s of e.series) {
    if (s.bodySite?.value) add('bodysite', codeSystem(s.bodySite), s.bodySite.value);
    add('series', '', s.uid);
  }
  const kept = docRefMetadataTokens(metadata);
  for (const t of kept) add(t.code, t.system, t.value);
  const has = (code: string) => kept.some((t) => t.code === code);
  if (!has('category')) add('category', defaults.category.system, defaults.category.code);
  if (!has('type')) add('type', defaults.type.system, defaults.type.code);
  if (!has('setting')) add('setting', defaults.practiceSetting.system, defaults.practiceSetting.code);
  if (!has('facility')) add('facility', defaults.facilityType.system, defaults.facilityType.code);
  for (const id of endpointIds) add('endpoint', '', id);
  return out;
}

function fhirInstant(d: Date): string {
  return d.toISOString();
}


/** Rendered docrefs with versionId/lastUpdated and the replaces link (MHD replace, ITI-65). */
export function renderDocRefs(
  m: Manifest,
  ctx: MappingContext,
  o: DocRefVersion,
): { kos: Json; fhir: Json; derivedPatient?: Json } {
  const { kos, fhir } = manifestToDocumentReferences(m, ctx, { status: o.status, nativeFormat: o.nativeFormat, date: fhirInstant(o.date), lastUpdated: fhirInstant(o.lastUpdated) }) as unknown as { kos: Json; fhir: Json };
  const old = o.replacesSop ? manifestResourceIds(o.replacesSop) : undefined;
  // The patient as the manifest states it, before a source's own patient is overlaid.
  const derivedPatient = (kos.contained as Json[] | undefined)?.find((c) => c.resourceType === 'Patient');
  for (const [r, oldId] of [[kos, old?.kosDocRef], [fhir, old?.fhirDocRef]] as const) {
    r.meta = { versionId: String(o.versionId), ...r.meta };
    applyDocRefMetadata(r, o.metadata, patientIdOf(m.patient));
    if (oldId) (r.relatesTo ??= []).push({ code: 'replaces', target: { reference: `DocumentReference/${oldId}`, type: 'DocumentReference' } });
  }
  return { kos, fhir, derivedPatient };
}

/** Patient resource for the patient table: the patient the manifest states, with our id. */
function patientResource(src: Json, id: string): Json {
  const r: Json = { resourceType: 'Patient', id, meta: { profile: ['https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoPatient'] } };
  for (const k of ['identifier', 'name', 'gender', 'birthDate']) if (src[k] !== undefined) r[k] = src[k];
  return r;
}

/** Endpoint resources of a manifest (as its FHIR Bundle has them), sorted by id: a fixed lock order across transactions. */
export function endpointResources(m: Manifest, ctx: MappingContext): Json[] {
  return (manifestEndpoints(m, ctx) as Json[]).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Issuer-qualified patient ids of a manifest, de-duplicated, with their identifier systems. */
export function patientIdentifiers(m: Manifest): Array<{ system: string; value: string }> {
  return patientIds(m).map((p) => ({ system: issuerToSystem(p.issuer), value: p.value }));
}

/** Everything the store needs rendered for a manifest, in one object it is handed (src/store/manifests.ts ManifestRendering). */
export function storeRendering(ctx: MappingContext) {
  return {
    docRefs: (m: Manifest, o: DocRefVersion) => renderDocRefs(m, ctx, o),
    endpoints: (m: Manifest) => endpointResources(m, ctx),
    tokens: (m: Manifest, endpointIds: string[], metadata?: DocRefMetadata | null) => manifestTokens(m, ctx.defaults, endpointIds, metadata),
    patientResource,
    patientIdentifiers,
    issuerSystem: issuerToSystem,
    studyModalities,
  };
}
