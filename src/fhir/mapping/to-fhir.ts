/**
 * Manifest model → MADO FHIR document Bundle (IG FHIR manifest, mapping table IG KOS→FHIR mapping) and the two MHD
 * DocumentReferences (IG MHD envelope, MHD DocumentReference profiles). Pure and deterministic: ids come from src/model/ids.ts
 * and no clock is read, so the same manifest and context give byte-identical JSON.
 */
import type { Bundle, DocumentReference } from '@medplum/fhirtypes';
import type { DocumentDefaults } from '../../config.js';
import { primaryEvidence, type Manifest, type Series, type StudyReference } from '../../model/manifest.js';

export { primaryEvidence };
import { dimseEndpointId, endpointId, fullUrlFor, imagingStudyId, manifestResourceIds, patientId, uuidV5, viewerEndpointId } from '../../model/ids.js';
import { codeToCoding, codeToConcept, EXT, FHIR_FORMAT, KOS_FORMAT, modalityCoding, PROFILE, SYS } from './codes.js';
import { ACCESSION_TYPE, esc, GENDER, identifierFor, type Json, patientIdentifier, pnToHumanName, pnToHumanNames, studyUidIdentifier } from './common.js';
import { dicomToFhirDate, dicomToFhirDateTime } from './datetime.js';

export interface MappingContext {
  /** Absolute base of the gateway, no trailing slash (contract PUBLIC_BASE_URL) */
  publicBaseUrl: string;
  defaults: DocumentDefaults;
}

export interface DocRefOptions {
  status: 'current' | 'superseded' | 'entered-in-error';
  /** The form the manifest was submitted in (informative; both docrefs are always produced) */
  nativeFormat: 'kos' | 'fhir';
  /** DocumentReference creation instant (MHD `date`, decisions.md D29) */
  date?: string;
  lastUpdated?: string;
}

/** Placeholder address of a MadoWadoEndpoint whose URL is unknown (IG MADO profiles, D18). */
export const NOT_SPECIFIED = 'http://notspecified';

const DAR_UNKNOWN = { extension: [{ url: EXT.dataAbsentReason, valueCode: 'unknown' }] };


function splitXon(m: Manifest): { name?: string; id?: string } {
  const raw = m.document.institutionName;
  const parts = raw?.split('^') ?? [];
  const name = parts[0] || undefined;
  const id = m.document.institutionId ?? (parts.length >= 10 && parts[9] ? parts[9] : undefined);
  return { name, id };
}

function ref(resourceType: string, id: string, display?: string): Json {
  const r: Json = { reference: fullUrlFor(resourceType, id), type: resourceType };
  if (display) r.display = display;
  return r;
}

/** A reference outside a Bundle: `Type/id` (FHIR R4 2.3.0.1 literal relative reference). */
function relativeRef(resourceType: string, id: string): Json {
  return { reference: `${resourceType}/${id}`, type: resourceType };
}

/** How an ImagingStudy refers to the other resources: by the Bundle's fullUrl, or standalone. */
type RefOf = (resourceType: string, id: string) => Json;

function meta(profile: string): Json {
  return { profile: [profile] };
}

/** One Endpoint of the Bundle: a MadoWadoEndpoint (Retrieve URL / Location UID) or a DIMSE one (Retrieve AE Title). */
export interface EndpointInfo { kind: 'wado' | 'dimse'; id: string; url?: string; location?: string; ae?: string }

/** One ImagingStudy of the Bundle: one per study the evidence references (PS3.3 C.17.2.1 allows several). */
interface StudyView {
  ev: StudyReference;
  id: string;
  primary: boolean;
  /** ImagingStudy.modality */
  modalities: string[];
  viewerId?: string;
}

interface Derived {
  ids: ReturnType<typeof manifestResourceIds>;
  patientId: string;
  tz: string;
  started?: string;
  created: string;
  /** the primary study's evidence (SUPPL 6.X.2.2) */
  evidence?: StudyReference;
  /** study modalities as the docrefs show them (Image Library, else all series) */
  modalities: string[];
  studies: StudyView[];
  endpoints: Map<string, EndpointInfo>;
  seriesEndpoints: (s: Series) => string[];
}

const seriesModalities = (series: Series[]): string[] => [...new Set(series.map((s) => s.modality).filter((x): x is string => !!x))];
const wadoKey = (s: Series): string => `wado\u0000${s.retrieveUrl ?? ''}\u0000${s.retrieveLocationUid ?? ''}`;
const dimseKey = (s: Series): string => `dimse\u0000${s.retrieveAeTitle}`;
/**
 * A MadoWadoEndpoint unless only a Retrieve AE Title locates the series: then only the DIMSE one (a
 * placeholder WADO Endpoint would have neither address nor Retrieve Location UID, which MADO requires).
 */
const hasWado = (s: Series): boolean => !!(s.retrieveUrl || s.retrieveLocationUid || !s.retrieveAeTitle);

function endpointMap(m: Manifest): Map<string, EndpointInfo> {
  const endpoints = new Map<string, EndpointInfo>();
  for (const e of m.evidence) for (const s of e.series) {
    const k = wadoKey(s);
    if (hasWado(s) && !endpoints.has(k)) endpoints.set(k, { kind: 'wado', id: endpointId(s.retrieveUrl, s.retrieveLocationUid), url: s.retrieveUrl, location: s.retrieveLocationUid });
    if (s.retrieveAeTitle && !endpoints.has(dimseKey(s))) endpoints.set(dimseKey(s), { kind: 'dimse', id: dimseEndpointId(s.retrieveAeTitle), ae: s.retrieveAeTitle });
  }
  return endpoints;
}

function studyViews(m: Manifest, evidence: StudyReference | undefined): StudyView[] {
  const sop = m.document.sopInstanceUid;
  // evidence items naming the same study (allowed, if odd) make one ImagingStudy
  const views: StudyReference[] = [];
  const at = new Map<string, number>();
  for (const e of evidence ? [evidence, ...m.evidence.filter((x) => x !== evidence)] : []) {
    const i = at.get(e.studyInstanceUid);
    if (i === undefined) { at.set(e.studyInstanceUid, views.length); views.push(e); }
    else views[i] = { ...views[i]!, series: [...views[i]!.series, ...e.series] };
  }
  return views.map((ev, i) => {
    const primary = i === 0;
    // decisions.md D35: study modalities from the Image Library (it describes the manifest's study), else the union of series modalities.
    const modalities = primary && m.study.modalities.length ? [...m.study.modalities] : seriesModalities(ev.series);
    const v: StudyView = { ev, id: imagingStudyId(sop, ev.studyInstanceUid, primary), primary, modalities };
    if (ev.displayUri) v.viewerId = viewerEndpointId(sop, ev.studyInstanceUid, primary);
    return v;
  });
}

function derive(m: Manifest, ctx: MappingContext): Derived {
  const ids = manifestResourceIds(m.document.sopInstanceUid);
  const tz = m.document.timezoneOffset || ctx.defaults.defaultTimezoneOffset;
  const started = dicomToFhirDateTime(m.study.date, m.study.time, tz, tz);
  const created =
    dicomToFhirDateTime(m.document.contentDate, m.document.contentTime, tz, tz) ?? started ?? '1970-01-01T00:00:00+00:00';
  const evidence = primaryEvidence(m);
  const modalities = m.study.modalities.length ? [...m.study.modalities] : seriesModalities(m.evidence.flatMap((e) => e.series));
  const endpoints = endpointMap(m);
  const seriesEndpoints = (s: Series): string[] => {
    const out: string[] = [];
    if (hasWado(s)) out.push(endpoints.get(wadoKey(s))!.id);
    if (s.retrieveAeTitle) out.push(endpoints.get(dimseKey(s))!.id);
    return out;
  };
  return { ids, patientId: patientId(m.patient), tz, started, created, evidence, modalities, studies: studyViews(m, evidence), endpoints, seriesEndpoints };
}

/** A FHIR instant from a dateTime (Bundle.timestamp needs seconds and an offset). */
function toInstant(dt: string, tz: string): string {
  if (/T/.test(dt)) return dt;
  return `${dt}T00:00:00${tz.slice(0, 3)}:${tz.slice(3)}`;
}

function patientResource(m: Manifest, d: Derived): Json {
  const p = m.patient;
  const identifiers: Json[] = [];
  const seen = new Set<string>();
  for (const pid of [...(p.id ? [p.id] : []), ...p.otherIds]) {
    const ident = patientIdentifier(pid);
    const k = JSON.stringify(ident);
    if (seen.has(k)) continue;
    seen.add(k);
    identifiers.push(ident);
  }
  const r: Json = { resourceType: 'Patient', id: d.patientId, meta: meta(PROFILE.patient) };
  if (identifiers.length) r.identifier = identifiers;
  const names = pnToHumanNames(p.name);
  if (names.length) r.name = names;
  if (p.sex) r.gender = GENDER[p.sex.toUpperCase()] ?? 'unknown';
  const bd = dicomToFhirDate(p.birthDate);
  if (bd) r.birthDate = bd;
  return r;
}

/**
 * A Retrieve AE Title (0008,0054) as an Endpoint: connection type dicom-dimse (IHE RO SMRT code
 * system, the published code for DIMSE), the AE Title as Endpoint.name; host and port are not in a
 * KOS, so the address is the placeholder with data-absent-reason, as for a WADO Endpoint without URL.
 */
function dimseEndpoint(e: EndpointInfo): Json {
  return {
    resourceType: 'Endpoint',
    id: e.id,
    status: 'active',
    connectionType: { system: SYS.dicomConnType, code: 'dicom-dimse', display: 'DICOM DIMSE' },
    name: e.ae,
    payloadType: [{ coding: [{ system: SYS.payloadType, code: 'none', display: 'None' }], text: 'DICOM DIMSE' }],
    payloadMimeType: ['application/dicom'],
    address: NOT_SPECIFIED,
    _address: DAR_UNKNOWN,
  };
}

function wadoEndpoint(e: EndpointInfo): Json {
  const r: Json = { resourceType: 'Endpoint', id: e.id, meta: meta(PROFILE.wadoEndpoint) };
  if (e.location) r.extension = [{ url: EXT.retrieveLocationUid, valueString: e.location }];
  r.status = 'active';
  r.connectionType = { system: SYS.connType, code: 'dicom-wado-rs', display: 'DICOM WADO-RS' };
  r.name = 'WADO-RS';
  r.payloadType = [{ coding: [{ system: SYS.payloadType, code: 'none', display: 'None' }], text: 'DICOM WADO-RS' }];
  r.payloadMimeType = ['application/dicom'];
  if (e.url) r.address = e.url;
  else {
    // Only the Retrieve Location UID is known: SHALL use http://notspecified + data-absent-reason (§1.6.3).
    r.address = NOT_SPECIFIED;
    r._address = DAR_UNKNOWN;
  }
  return r;
}

function viewerEndpoint(id: string, uri: string): Json {
  return {
    resourceType: 'Endpoint',
    id,
    meta: meta(PROFILE.viewerEndpoint),
    status: 'active',
    // decisions.md D26: connectionType is unconstrained by MADO but 1..1 in R4; ihe-iid follows IHE RAD IMR.
    connectionType: { system: SYS.connType, code: 'ihe-iid', display: 'IHE IID' },
    name: 'Web viewer',
    payloadType: [{ coding: [{ system: SYS.payloadType, code: 'none', display: 'None' }] }],
    payloadMimeType: ['text/html'],
    address: uri,
  };
}

function serviceRequests(m: Manifest, d: Derived): Json[] {
  const reqs = m.study.requests.length ? m.study.requests : m.study.accession ? [{ accession: m.study.accession, requestedProcedureCodes: [] }] : [];
  return reqs.map((rq, i) => {
    const identifier: Json[] = [];
    if (rq.accession?.value) identifier.push({ type: ACCESSION_TYPE, ...identifierFor(rq.accession.value, rq.accession.issuer) });
    if (rq.placerOrderNumber) identifier.push({ type: { coding: [{ system: SYS.v20203, code: 'PLAC', display: 'Placer Identifier' }] }, ...identifierFor(rq.placerOrderNumber, rq.placerIssuer) });
    if (rq.fillerOrderNumber) identifier.push({ type: { coding: [{ system: SYS.v20203, code: 'FILL', display: 'Filler Identifier' }] }, ...identifierFor(rq.fillerOrderNumber, rq.fillerIssuer) });
    if ('requestedProcedureId' in rq && rq.requestedProcedureId) identifier.push({ type: { text: 'Requested Procedure ID' }, value: rq.requestedProcedureId });
    const r: Json = { resourceType: 'ServiceRequest', id: d.ids.serviceRequest(i), meta: meta(PROFILE.serviceRequest) };
    if (identifier.length) r.identifier = identifier;
    r.status = 'completed';
    r.intent = 'order';
    r.category = [{ coding: [{ system: SYS.sct, code: '363679005', display: 'Imaging' }] }];
    const codes = rq.requestedProcedureCodes ?? [];
    const desc = 'requestedProcedureDescription' in rq ? rq.requestedProcedureDescription : undefined;
    if (codes.length || desc) {
      const code: Json = {};
      if (codes.length) code.coding = codes.map(codeToCoding);
      if (desc) code.text = desc;
      r.code = code;
    }
    r.subject = ref('Patient', d.patientId);
    return r;
  });
}

/** The study view each ServiceRequest belongs to: its request's Study Instance UID, else the primary study. */
function requestStudies(m: Manifest, d: Derived, srs: Json[]): StudyView[] {
  const reqs = m.study.requests;
  return srs.map((_, i) => d.studies.find((v) => !v.primary && v.ev.studyInstanceUid === reqs[i]?.studyInstanceUid) ?? d.studies[0]!);
}

/**
 * The ImagingStudy of one referenced study. Study-level attributes of the KOS (General Study
 * module, TID 2010 procedure codes, Image Library regions) describe the manifest's own study, so
 * only its (primary) ImagingStudy carries them; another study gets its identifier, series and requests.
 */
function imagingStudy(m: Manifest, d: Derived, srs: Json[], v: StudyView, refOf: RefOf = ref): Json {
  const st = m.study;
  const series = v.ev.series;
  const r: Json = { resourceType: 'ImagingStudy', id: v.id, meta: meta(PROFILE.imagingStudy) };
  if (v.primary && st.anatomicalRegions.length) r.extension = st.anatomicalRegions.map((c) => ({ url: EXT.anatomicalRegion, valueCodeableConcept: codeToConcept(c) }));
  r.identifier = [studyUidIdentifier(v.primary ? st.studyInstanceUid : v.ev.studyInstanceUid)];
  r.status = 'available';
  if (v.modalities.length) r.modality = v.modalities.map(modalityCoding);
  r.subject = refOf('Patient', d.patientId);
  if (v.primary && d.started) r.started = d.started;
  const owners = requestStudies(m, d, srs);
  const mine = srs.filter((_, i) => owners[i] === v);
  if (mine.length) {
    r.basedOn = mine.map((sr) => {
      const b = refOf('ServiceRequest', sr.id);
      const acc = (sr.identifier as Json[] | undefined)?.find((x) => x.type === ACCESSION_TYPE);
      if (acc) b.identifier = acc;
      return b;
    });
  }
  if (v.viewerId) r.endpoint = [refOf('Endpoint', v.viewerId)];
  r.numberOfSeries = v.primary ? (st.numberOfSeries ?? series.length) : series.length;
  r.numberOfInstances = series.reduce((n, s) => n + (s.numberOfInstances ?? s.instances.length), 0);
  if (v.primary && st.procedureCodes.length) {
    // mado-reqproc-1: text or display must exist → text = meaning.
    r.procedureCode = st.procedureCodes.map((c) => {
      const cc = codeToConcept(c);
      if (c.meaning) cc.text = c.meaning;
      return cc;
    });
  }
  if (v.primary && st.description) r.description = st.description;
  r.series = series.map((s) => {
    const x: Json = { uid: s.uid };
    if (s.number !== undefined) x.number = s.number;
    // R4 series.modality is 1..1: OT ("Other") when the KOS gives none, marked data-absent so FHIR → KOS leaves it out again.
    x.modality = s.modality ? modalityCoding(s.modality) : { ...DAR_UNKNOWN, ...modalityCoding('OT') };
    if (s.description) x.description = s.description;
    x.numberOfInstances = s.numberOfInstances ?? s.instances.length;
    x.endpoint = d.seriesEndpoints(s).map((id) => refOf('Endpoint', id));
    if (s.bodySite) x.bodySite = codeToCoding(s.bodySite);
    if (s.laterality) x.laterality = codeToCoding(s.laterality);
    const started = dicomToFhirDateTime(s.date, s.time, d.tz, d.tz);
    if (started) x.started = started;
    x.instance = s.instances.map((i) => {
      const y: Json = {};
      const ext: Json[] = [];
      if (i.numberOfFrames !== undefined) ext.push({ url: EXT.numberOfFrames, valueInteger: i.numberOfFrames });
      if (i.koDocumentTitle) ext.push({ url: EXT.koDocumentTitle, valueCodeableConcept: codeToConcept(i.koDocumentTitle) });
      if (ext.length) y.extension = ext;
      y.uid = i.sopInstanceUid;
      y.sopClass = { system: SYS.rfc3986, code: `urn:oid:${i.sopClassUid}` };
      if (i.number !== undefined) y.number = i.number;
      if (i.koDescription) y.title = i.koDescription;
      return y;
    });
    return x;
  });
  return r;
}

function row(label: string, value: string | undefined): string {
  return value ? `<tr><th>${esc(label)}</th><td>${esc(value)}</td></tr>` : '';
}

function codeText(c: { value: string; meaning?: string }): string {
  return c.meaning || c.value;
}

function studyNarrative(m: Manifest, d: Derived, orgName?: string): string {
  const p = m.patient;
  const pid = p.id ? `${p.id.value}${p.id.issuer?.universalEntityId ? ` (${p.id.issuer.universalEntityId})` : p.id.issuer?.localNamespace ? ` (${p.id.issuer.localNamespace})` : ''}` : undefined;
  const series = d.evidence?.series ?? [];
  return (
    '<div xmlns="http://www.w3.org/1999/xhtml"><h1>Imaging manifest</h1><table>' +
    row('Patient', pnToHumanNames(p.name).map((n) => n.text).filter(Boolean).join(' = ') || undefined) +
    row('Patient ID', pid) +
    row('Study Instance UID', m.study.studyInstanceUid) +
    row('Study started', d.started) +
    row('Study description', m.study.description) +
    row('Accession number', m.study.accession?.value ?? m.study.requests.map((r) => r.accession?.value).filter(Boolean).join(', ')) +
    row('Procedure', m.study.procedureCodes.map(codeText).join(', ')) +
    row('Modalities', d.modalities.join(', ')) +
    row('Anatomical regions', m.study.anatomicalRegions.map(codeText).join(', ')) +
    row('Number of series', String(m.study.numberOfSeries ?? series.length)) +
    row('Institution', orgName) +
    '</table></div>'
  );
}

function seriesNarrative(s: Series, d: Derived): string {
  return (
    '<div xmlns="http://www.w3.org/1999/xhtml"><table>' +
    row('Series Instance UID', s.uid) +
    row('Series number', s.number?.toString()) +
    row('Modality', s.modality) +
    row('Description', s.description) +
    row('Body site', s.bodySite ? codeText(s.bodySite) : undefined) +
    row('Started', dicomToFhirDateTime(s.date, s.time, d.tz, d.tz)) +
    row('Number of instances', String(s.numberOfInstances ?? s.instances.length)) +
    row('WADO-RS', s.retrieveUrl) +
    row('Retrieve Location UID', s.retrieveLocationUid) +
    row('Retrieve AE Title', s.retrieveAeTitle) +
    '</table></div>'
  );
}

function bundleIdentifier(uid: string): Json {
  return { system: SYS.rfc3986, value: `urn:oid:${uid}` };
}

/** The Bundle's Endpoints: one per retrieve location (WADO) or Retrieve AE Title (DIMSE), then one web viewer per study with a Display URI. */
function endpointsOf(d: Derived): Json[] {
  const out = [...d.endpoints.values()].map((e) => (e.kind === 'wado' ? wadoEndpoint(e) : dimseEndpoint(e)));
  for (const v of d.studies) if (v.viewerId && v.ev.displayUri) out.push(viewerEndpoint(v.viewerId, v.ev.displayUri));
  return out;
}

/** The Endpoint resources of manifestToFhirBundle(m) without building the rest of it (the store indexes them on every ingest). */
export function manifestEndpoints(m: Manifest, ctx: MappingContext): Json[] {
  return endpointsOf(derive(m, ctx));
}

/**
 * The ImagingStudy resources of manifestToFhirBundle(m, ctx), each standing alone (references
 * `Type/id` instead of the Bundle's urn:uuid fullUrls), without building the rest of the Bundle:
 * the ImagingStudy read and search render them per request. `pick` chooses which studies to render
 * (called with each study's id and Study Instance UID, in Bundle order); default all.
 */
export function manifestImagingStudies(m: Manifest, ctx: MappingContext, pick: (id: string, studyUid: string) => boolean = () => true): Json[] {
  const d = derive(m, ctx);
  const srs = serviceRequests(m, d);
  return d.studies.filter((v) => pick(v.id, v.primary ? m.study.studyInstanceUid : v.ev.studyInstanceUid)).map((v) => imagingStudy(m, d, srs, v, relativeRef));
}

/** MadoFhirBundle (document) for a manifest (IG FHIR manifest, IG KOS→FHIR mapping). */
export function manifestToFhirBundle(m: Manifest, ctx: MappingContext): Bundle {
  const d = derive(m, ctx);
  const ids = d.ids;
  const doc = m.document;
  const xon = splitXon(m);
  const srs = serviceRequests(m, d);
  const studies = d.studies.map((v) => imagingStudy(m, d, srs, v));
  const patient = patientResource(m, d);

  const org: Json = { resourceType: 'Organization', id: ids.organization, meta: meta(PROFILE.organization) };
  if (xon.id) org.identifier = [isOidLike(xon.id) ? { system: SYS.rfc3986, value: `urn:oid:${xon.id}` } : { value: xon.id }];
  if (xon.name) org.name = xon.name;
  else if (!xon.id) {
    org.name = 'unknown';
    org._name = DAR_UNKNOWN;
  }
  const device: Json = {
    resourceType: 'Device',
    id: ids.device,
    meta: meta(PROFILE.device),
    type: { coding: [{ system: SYS.deviceType, code: 'mado-creator', display: 'MADO Creator' }] },
  };
  if (doc.manufacturer) device.manufacturer = doc.manufacturer;
  device.owner = ref('Organization', ids.organization);

  // Composition.type: the deployment's LOINC type, plus the KOS document title so it survives FHIR → KOS.
  const typeCodings = [defaultCoding(ctx.defaults.type), codeToCoding(doc.title)];
  const composition: Json = {
    resourceType: 'Composition',
    id: ids.composition,
    meta: meta(PROFILE.composition),
    text: { status: 'generated', div: studyNarrative(m, d, xon.name) },
    identifier: bundleIdentifier(doc.sopInstanceUid),
    status: 'final',
    type: { coding: typeCodings },
    category: [{ coding: [defaultCoding(ctx.defaults.category)] }],
    subject: ref('Patient', d.patientId),
    date: d.created,
    author: [ref('Device', ids.device), ref('Organization', ids.organization)],
    // Key Object Description when present, else the title meaning (R4 title is 1..1).
    title: doc.description ?? doc.title.meaning ?? 'Imaging manifest',
    custodian: ref('Organization', ids.organization),
    event: [{ detail: studies.map((st) => ref('ImagingStudy', st.id)) }],
  };
  if (d.started) composition.event[0].period = { start: d.started };
  const series = d.studies.flatMap((v) => v.ev.series);
  if (series.length) {
    composition.section = series.map((s, i) => ({
      title: `Series ${s.number ?? i + 1}${s.description ? `: ${s.description}` : ''}`,
      text: { status: 'generated', div: seriesNarrative(s, d) },
    }));
  }

  const resources: Json[] = [composition, ...studies, patient, device, org, ...srs, ...endpointsOf(d)];
  return {
    resourceType: 'Bundle',
    id: ids.bundle,
    meta: meta(PROFILE.bundle),
    identifier: bundleIdentifier(doc.sopInstanceUid),
    type: 'document',
    timestamp: toInstant(d.created, d.tz),
    entry: resources.map((r) => ({ fullUrl: fullUrlFor(r.resourceType, r.id), resource: r })),
  } as Bundle;
}

function isOidLike(s: string): boolean {
  return /^[0-2](\.\d+)+$/.test(s);
}

function defaultCoding(c: { system: string; code: string; display?: string }): Json {
  return c.display ? { system: c.system, code: c.code, display: c.display } : { system: c.system, code: c.code };
}

/**
 * The docref's contained Organization, creator Device and source Patient: authors are contained
 * (MHD Comprehensive), so the DocumentReference stands alone.
 */
function containedResources(m: Manifest, d: Derived, xon: ReturnType<typeof splitXon>): [Json, Json, Json] {
  const org: Json = { resourceType: 'Organization', id: 'org' };
  if (xon.id) org.identifier = [isOidLike(xon.id) ? { system: SYS.rfc3986, value: `urn:oid:${xon.id}` } : { value: xon.id }];
  org.name = xon.name ?? 'unknown';
  if (!xon.name) org._name = DAR_UNKNOWN;
  const device: Json = { resourceType: 'Device', id: 'creator', type: { coding: [{ system: SYS.deviceType, code: 'mado-creator', display: 'MADO Creator' }] } };
  if (m.document.manufacturer) device.manufacturer = m.document.manufacturer;
  device.owner = { reference: '#org' };
  const src: Json = { resourceType: 'Patient', id: 'src-patient' };
  const srcPat = patientResource(m, d);
  for (const k of ['identifier', 'name', 'gender', 'birthDate']) if (srcPat[k] !== undefined) src[k] = srcPat[k];
  return [org, device, src];
}

/** Both MHD DocumentReferences of a manifest, linked by relatesTo = transforms (contract "Manifest identity"). */
export function manifestToDocumentReferences(m: Manifest, ctx: MappingContext, o: DocRefOptions): { kos: DocumentReference; fhir: DocumentReference } {
  const d = derive(m, ctx);
  const ids = d.ids;
  const doc = m.document;
  const xon = splitXon(m);
  const base = ctx.publicBaseUrl.replace(/\/+$/, '');
  const uid = doc.sopInstanceUid;
  // decisions.md D13: MHD UniqueIdIdentifier form, copied into identifier (mado-docref-1).
  const master = {
    type: { coding: [{ system: SYS.mhdIdType, code: 'uniqueId', display: 'UniqueId' }] },
    system: SYS.rfc3986,
    value: `urn:oid:${uid}`,
  };
  const pat = m.patient;
  const primaryId = pat.id ?? pat.otherIds[0];
  const subject: Json = { reference: `Patient/${d.patientId}`, type: 'Patient' };
  if (primaryId) subject.identifier = patientIdentifier(primaryId);

  const [org, device, src] = containedResources(m, d, xon);

  const st = m.study;
  const modCodings = d.modalities.map(modalityCoding);
  const regionCodings = st.anatomicalRegions.map(codeToCoding);
  const accession = st.accession ?? st.requests.find((r) => r.accession?.value)?.accession;

  const build = (kind: 'kos' | 'fhir'): Json => {
    const id = kind === 'kos' ? ids.kosDocRef : ids.fhirDocRef;
    const other = kind === 'kos' ? ids.fhirDocRef : ids.kosDocRef;
    const r: Json = { resourceType: 'DocumentReference', id };
    const mt: Json = { profile: [kind === 'kos' ? PROFILE.kosDocRef : PROFILE.fhirDocRef] };
    if (o.lastUpdated) mt.lastUpdated = o.lastUpdated;
    r.meta = mt;
    r.contained = [org, device, src];
    const ext: Json[] = [];
    if (modCodings.length) ext.push({ url: EXT.r5Modality, valueCodeableConcept: { coding: modCodings } });
    if (regionCodings.length) ext.push({ url: EXT.r5BodySite, extension: [{ url: 'concept', valueCodeableConcept: { coding: regionCodings } }] });
    if (ext.length) r.extension = ext;
    r.masterIdentifier = master;
    r.identifier = [master, { type: { coding: [{ system: SYS.mhdIdType, code: 'entryUUID', display: 'EntryUUID' }] }, system: SYS.rfc3986, value: `urn:uuid:${uuidOf(id)}` }];
    r.status = o.status;
    r.type = { coding: [defaultCoding(ctx.defaults.type)] };
    r.category = [{ coding: [defaultCoding(ctx.defaults.category)] }];
    r.subject = subject;
    if (o.date) r.date = o.date;
    r.author = [{ reference: '#creator', type: 'Device' }, { reference: '#org', type: 'Organization' }];
    if (doc.description) r.description = doc.description;
    r.relatesTo = [{ code: 'transforms', target: { reference: `DocumentReference/${other}`, type: 'DocumentReference' } }];
    const attachment: Json = kind === 'kos'
      ? { contentType: 'application/dicom', language: ctx.defaults.language, url: `${base}/fhir/Binary/${ids.binary}` }
      : { contentType: 'application/fhir+json', language: ctx.defaults.language, url: `${base}/fhir/Bundle/${ids.bundle}` };
    attachment.title = doc.description ?? doc.title.meaning ?? 'Imaging manifest';
    attachment.creation = d.created;
    const content: Json = { attachment, format: kind === 'kos' ? KOS_FORMAT : FHIR_FORMAT };
    // decisions.md D25: content.profile only on the FHIR docref, as valueCanonical.
    if (kind === 'fhir') content.extension = [{ url: EXT.r5ContentProfile, extension: [{ url: 'value[x]', valueCanonical: PROFILE.bundle }] }];
    r.content = [content];
    const context: Json = {};
    // decisions.md D28: modality and region also as context.event (SUPPL App. A / XDS eventCodeList).
    const events = [...modCodings.map((c) => ({ coding: [c] })), ...regionCodings.map((c) => ({ coding: [c] }))];
    if (events.length) context.event = events;
    if (d.started) context.period = { start: d.started };
    context.facilityType = { coding: [defaultCoding(ctx.defaults.facilityType)] };
    context.practiceSetting = { coding: [defaultCoding(ctx.defaults.practiceSetting)] };
    context.sourcePatientInfo = { reference: '#src-patient', type: 'Patient' };
    const related: Json[] = d.studies.map((v) => ({ type: 'ImagingStudy', identifier: studyUidIdentifier(v.primary ? st.studyInstanceUid : v.ev.studyInstanceUid) }));
    if (!related.length) related.push({ type: 'ImagingStudy', identifier: studyUidIdentifier(st.studyInstanceUid) });
    if (accession?.value) related.push({ type: 'ServiceRequest', identifier: { type: ACCESSION_TYPE, ...identifierFor(accession.value, accession.issuer) } });
    context.related = related;
    r.context = context;
    return r;
  };
  return { kos: build('kos') as DocumentReference, fhir: build('fhir') as DocumentReference };
}

function uuidOf(id: string): string {
  return uuidV5(`DocumentReference/${id}`);
}
