/**
 * FHIR → manifest model (IG FHIR→KOS mapping). Accepts
 *  - a MadoFhirBundle (document Bundle with Composition + ImagingStudy, IG FHIR manifest),
 *  - the legacy draft form: List (ImagingManifestList) + ImagingStudy in a collection/transaction
 *    Bundle (decisions.md D1; fixtures/legacy-list/README.md),
 *  - a collection/transaction Bundle with a bare ImagingStudy + Patient + Endpoints,
 *  - a lone List / ImagingStudy (only to report precisely what is missing).
 * Never throws; every finding carries a FHIRPath expression in `path`.
 */
import { hash } from 'node:crypto';
import type { Code, Instance, Manifest, Patient, PatientIdentifier, RequestedProcedure, Series, StudyReference, ValidationIssue } from '../../model/manifest.js';
import { KOS_SOP_CLASS_UID } from '../../model/manifest.js';
import { derivedUid, kosSeriesUid } from '../../model/ids.js';
import { codingToCode, conceptToCode, EXT, KOS_TITLES, SYS, type FhirCoding } from './codes.js';
import { humanNamesToPn, isOid, issuerFromIdentifier, type Json, SEX, stripOid } from './common.js';
import { fhirToDicomDate, fhirToDicomDateTime, offsetOf } from './datetime.js';

/** Default KOS title when the FHIR form carries none (config default, decisions.md D6). */
export const DEFAULT_KOS_TITLE: Code = { value: 'MADOTEMP001', scheme: '99IHE', meaning: 'Manifest with Description' };

export interface FhirToManifestOptions {
  /** Document title written when the Composition carries no KOS title coding */
  defaultTitle?: Code;
}

interface Entry {
  resource: Json;
  path: string;
  fullUrl?: string;
}

class Ctx {
  issues: ValidationIssue[] = [];
  byKey = new Map<string, Entry>();
  entries: Entry[] = [];
  add(e: Entry): void {
    this.entries.push(e);
    if (e.fullUrl) this.byKey.set(e.fullUrl, e);
    const r = e.resource;
    if (typeof r.id === 'string') {
      this.byKey.set(`${r.resourceType}/${r.id}`, e);
    }
  }
  err(path: string, code: string, message: string): void {
    this.issues.push({ severity: 'error', code, path, message });
  }
  warn(path: string, code: string, message: string): void {
    this.issues.push({ severity: 'warning', code, path, message });
  }
  info(path: string, code: string, message: string): void {
    this.issues.push({ severity: 'information', code, path, message });
  }
  /** Resolve a Reference: by fullUrl, by Type/id, by a fullUrl ending in /Type/id. */
  resolve(ref: Json | undefined): Entry | undefined {
    const r = ref?.reference;
    if (typeof r !== 'string' || !r) return undefined;
    const hit = this.byKey.get(r);
    if (hit) return hit;
    const m = /([A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/[^/]+)?$/.exec(r);
    return m ? this.byKey.get(m[1]!) : undefined;
  }
  ofType(t: string): Entry[] {
    return this.entries.filter((e) => e.resource.resourceType === t);
  }
}

function isObj(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function arr(x: unknown): Json[] {
  return Array.isArray(x) ? x.filter(isObj) : [];
}

function str(x: unknown): string | undefined {
  return typeof x === 'string' && x.trim() ? x.trim() : undefined;
}

function refText(ref: Json | undefined): string {
  return typeof ref?.reference === 'string' ? ref.reference : JSON.stringify(ref ?? null);
}

function hasDar(el: Json | undefined): boolean {
  return arr(el?.extension).some((e) => e.url === EXT.dataAbsentReason);
}

export function fhirToManifest(input: unknown, opts: FhirToManifestOptions = {}): { manifest?: Manifest; issues: ValidationIssue[] } {
  const c = new Ctx();
  try {
    return convert(input, c, opts);
  } catch (e) {
    // Defensive: malformed shapes must become issues, never crashes (decisions.md D46).
    c.err('', 'GW_FHIR_INVALID', `cannot interpret the FHIR input: ${(e as Error).message}`);
    return { issues: c.issues };
  }
}

/** Register the resources of the input (a Bundle's entries, or a bare List / ImagingStudy); false when it is no manifest form. */
function collectEntries(input: Json, c: Ctx): boolean {
  if (input.resourceType === 'Bundle') {
    if (!['document', 'collection', 'transaction'].includes(input.type)) {
      c.err('Bundle.type', 'GW_FHIR_UNSUPPORTED_BUNDLE', `Bundle.type "${String(input.type)}" is not a manifest form (expected document, collection or transaction)`);
      return false;
    }
    arr(input.entry).forEach((e, i) => {
      if (isObj(e.resource) && typeof e.resource.resourceType === 'string') c.add({ resource: e.resource, path: `Bundle.entry[${i}].resource`, fullUrl: str(e.fullUrl) });
    });
    return true;
  }
  if (input.resourceType === 'ImagingStudy' || input.resourceType === 'List') {
    c.add({ resource: input, path: input.resourceType });
    return true;
  }
  c.err(input.resourceType, 'GW_FHIR_INVALID', `a ${input.resourceType} is not a MADO manifest (expected a Bundle, List or ImagingStudy)`);
  return false;
}

/** Time zone: offset of ImagingStudy.started (IG FHIR→KOS mapping: Timezone Offset R+), else the first one found. */
function timezoneOf(is: Json, composition: Entry | undefined, list: Entry | undefined, bundle: Json | undefined): string | undefined {
  return (
    offsetOf(str(is.started)) ??
    offsetOf(str(composition?.resource.date)) ??
    offsetOf(str(bundle?.timestamp)) ??
    offsetOf(str(list?.resource.date)) ??
    arr(is.series).map((s) => offsetOf(str(s.started))).find(Boolean)
  );
}

/** The subject Patient: identifiers, name, birth date, sex (the KOS needs them, SUPPL 6.X.2.5). */
function patientOf(c: Ctx, is: Json, P: string, composition: Entry | undefined, list: Entry | undefined): Patient {
  const patient: Patient = { otherIds: [] };
  const subjRef = isObj(is.subject) ? is.subject : isObj(composition?.resource.subject) ? composition!.resource.subject : isObj(list?.resource.subject) ? list!.resource.subject : undefined;
  if (!subjRef) {
    c.err(`${P}.subject`, 'GW_FHIR_MISSING_ELEMENT', 'ImagingStudy.subject is missing: the KOS needs the Patient (Patient ID is R+, SUPPL 6.X.2.5)');
    return patient;
  }
  const pe = c.resolve(subjRef);
  if (!pe || pe.resource.resourceType !== 'Patient') {
    if (isObj(subjRef.identifier) && str(subjRef.identifier.value)) {
      const pid = toPatientIdentifier(subjRef.identifier);
      patient.id = pid;
      patient.otherIds.push(pid);
      c.warn(`${P}.subject`, 'GW_FHIR_PATIENT_BY_IDENTIFIER', 'Patient resource not in the Bundle; only its identifier is used');
    } else c.err(`${P}.subject`, 'GW_FHIR_UNRESOLVED_REFERENCE', `Patient "${refText(subjRef)}" is not in the Bundle: the KOS needs the Patient's identifier, name, birth date and sex`);
    return patient;
  }
  const pr = pe.resource;
  const idents = arr(pr.identifier).filter((x) => str(x.value));
  if (!idents.length) c.err(`${pe.path}.identifier`, 'GW_FHIR_MISSING_ELEMENT', 'Patient.identifier is missing: Patient ID is R+ (SUPPL 6.X.2.5)');
  const ids = idents.map(toPatientIdentifier);
  if (ids.length) {
    patient.id = ids[0];
    patient.otherIds = ids;
  }
  const { pn, dropped } = humanNamesToPn(arr(pr.name));
  if (pn) patient.name = pn;
  if (dropped) c.warn(`${pe.path}.name`, 'GW_CONVERT_DROPPED', `${dropped} more Patient.name value(s) have no place in a DICOM PN (one alphabetic, one ideographic, one phonetic group) and are not carried over`);
  const bd = fhirToDicomDate(str(pr.birthDate));
  if (bd) patient.birthDate = bd;
  const g = str(pr.gender);
  if (g && SEX[g]) patient.sex = SEX[g];
  return patient;
}

/** Creator device + organization (Composition.author, List.source, Device.owner, or any in the Bundle). */
function creatorOf(c: Ctx, composition: Entry | undefined, list: Entry | undefined): { device?: Entry; org?: Entry } {
  let device: Entry | undefined;
  let org: Entry | undefined;
  for (const a of [...arr(composition?.resource.author), ...(isObj(list?.resource.source) ? [list!.resource.source] : [])]) {
    const e = c.resolve(a);
    if (!e) {
      c.warn(composition ? `${composition.path}.author` : `${list!.path}.source`, 'GW_FHIR_UNRESOLVED_REFERENCE', `author "${refText(a)}" is not in the Bundle: Manufacturer and Institution Name (R+, SUPPL 6.X.2.7) stay empty`);
      continue;
    }
    if (e.resource.resourceType === 'Device') device ??= e;
    if (e.resource.resourceType === 'Organization') org ??= e;
  }
  device ??= c.ofType('Device')[0];
  if (!org && device && isObj(device.resource.owner)) org = c.resolve(device.resource.owner);
  org ??= c.ofType('Organization')[0];
  return { device, org };
}

/** The KOS SOP Instance UID: the manifest identifier when it is an OID, else derived from it (or from the content). */
function manifestSop(c: Ctx, input: Json, bundle: Json | undefined, composition: Entry | undefined, list: Entry | undefined, P: string): string {
  const comp = composition?.resource;
  const bIdent = isObj(bundle?.identifier) ? bundle!.identifier : isObj(comp?.identifier) ? comp!.identifier : arr(list?.resource.identifier)[0];
  let sop = stripOid(str(bIdent?.value));
  if (sop && !isOid(sop)) {
    c.warn(bundle ? 'Bundle.identifier' : `${list?.path ?? P}.identifier`, 'GW_FHIR_IDENTIFIER_NOT_OID', `manifest identifier "${sop}" is not an OID (MadoFhirBundle.identifier, decisions.md D20); a SOP Instance UID was derived from it`);
    sop = derivedUid(`fhir-identifier:${str(bIdent?.system) ?? ''}|${sop}`);
  }
  return sop || derivedUid(`fhir-content:${hash('sha256', JSON.stringify(input))}`);
}

/** The KOS document attributes: identity, title, content date, creator (Manufacturer, Institution). */
function documentOf(c: Ctx, sop: string, f: { bundle?: Json; composition?: Entry; list?: Entry }, opts: FhirToManifestOptions, dt: DateTimeOf, tz: string | undefined): Manifest['document'] {
  const comp = f.composition?.resource;
  const titleCoding = arr(comp?.type?.coding).map((k) => codingToCode(k as FhirCoding)).find((k) => KOS_TITLES.has(`${k.value}|${k.scheme}`));
  const title = titleCoding ?? opts.defaultTitle ?? DEFAULT_KOS_TITLE;
  const compTitle = str(comp?.title) ?? str(f.list?.resource.title);
  const created = dt(comp?.date ?? f.bundle?.timestamp ?? f.list?.resource.date, f.composition ? `${f.composition.path}.date` : 'Bundle.timestamp');
  const { device, org } = creatorOf(c, f.composition, f.list);
  const document: Manifest['document'] = { sopInstanceUid: sop, sopClassUid: KOS_SOP_CLASS_UID, seriesInstanceUid: kosSeriesUid(sop), title };
  if (compTitle && compTitle !== title.meaning) document.description = compTitle;
  if (created) {
    document.contentDate = created.date;
    if (created.time) document.contentTime = created.time;
  }
  if (tz) document.timezoneOffset = tz;
  const manu = str(device?.resource.manufacturer);
  if (manu) document.manufacturer = manu;
  if (org) {
    const name = hasDar(org.resource._name) ? undefined : str(org.resource.name);
    const oid = arr(org.resource.identifier).map((x) => str(x.value)).find((v) => v?.startsWith('urn:oid:'));
    const anyId = oid ?? arr(org.resource.identifier).map((x) => str(x.value)).find(Boolean);
    if (oid) document.institutionId = stripOid(oid);
    else if (anyId) document.institutionId = anyId;
    // SUPPL 6.X.2.7 recommends the HL7 v2 XON form (name + organization identifier in XON.10).
    if (name) document.institutionName = document.institutionId ? `${name}^^^^^^^^^${document.institutionId}` : name;
  }
  return document;
}

/** The study: its requests (those of other studies' ImagingStudies excluded), codes, series, and the other studies' evidence. */
function studyOf(c: Ctx, studyEntries: Entry[], studyUid: string | undefined, dt: DateTimeOf) {
  const isEntry = studyEntries[0]!;
  const is = isEntry.resource;
  const others = studyEntries.slice(1).map((e) => ({ entry: e, uid: studyUidOf(c, e) }));
  const claimed = new Set<Entry>();
  for (const o of others) for (const b of arr(o.entry.resource.basedOn)) { const e = c.resolve(b); if (e) claimed.add(e); }
  const requests = requestsOf(c, isEntry, studyUid, [...c.ofType('ServiceRequest')].filter((e) => !claimed.has(e)));
  const accessions = [...new Map(requests.filter((r) => r.accession?.value).map((r) => [JSON.stringify(r.accession), r.accession!])).values()];
  const modalities = arr(is.modality).map((m) => str(m.code)).filter((x): x is string => !!x);
  const regions = arr(is.extension).filter((e) => e.url === EXT.anatomicalRegion).map((e) => conceptToCode(e.valueCodeableConcept)).filter((x): x is Code => !!x);
  const procedureCodes = arr(is.procedureCode).map((cc) => conceptToCode(cc as Json)).filter((x): x is Code => !!x);
  const { series, displayUri } = studySeries(c, isEntry, dt);
  const otherEvidence: StudyReference[] = others.map((o) => {
    const r = studySeries(c, o.entry, dt);
    requests.push(...requestsOf(c, o.entry, o.uid, []));
    const ev: StudyReference = { studyInstanceUid: o.uid ?? '', series: r.series };
    if (r.displayUri) ev.displayUri = r.displayUri;
    return ev;
  });
  return { studyUid, requests, accessions, modalities, regions, procedureCodes, series, displayUri, otherEvidence };
}

function convert(input: unknown, c: Ctx, opts: FhirToManifestOptions): { manifest?: Manifest; issues: ValidationIssue[] } {
  if (!isObj(input) || typeof input.resourceType !== 'string') {
    c.err('', 'GW_FHIR_INVALID', 'input is not a FHIR resource (no resourceType)');
    return { issues: c.issues };
  }
  if (!collectEntries(input, c)) return { issues: c.issues };
  const bundle = input.resourceType === 'Bundle' ? input : undefined;
  const composition = c.ofType('Composition')[0];
  const list = c.ofType('List')[0];
  if (list) c.info(list.path, 'GW_FHIR_LEGACY_FORM', 'legacy List-based manifest (first MADO draft) accepted; the current form is a MadoFhirBundle document (decisions.md D1)');

  // ImagingStudy: one per referenced study (PS3.3 C.17.2.1); the first is the manifest's own
  const studyEntries = imagingStudyEntries(c, composition, list);
  const isEntry = studyEntries[0];
  if (!isEntry) {
    if (!c.issues.some((i) => i.severity === 'error')) c.err(bundle ? 'Bundle.entry' : input.resourceType, 'GW_FHIR_NO_IMAGING_STUDY', 'no ImagingStudy: a manifest needs at least one (MadoImagingStudy)');
    return { issues: c.issues };
  }
  const is = isEntry.resource;
  const P = isEntry.path;
  const tz = timezoneOf(is, composition, list, bundle);
  const dt: DateTimeOf = (v, path) => {
    const s = str(v);
    if (!s) return undefined;
    const r = fhirToDicomDateTime(s, tz ?? '+0000');
    if (!r) c.err(path, 'GW_FHIR_BAD_DATE', `"${s}" is not a FHIR dateTime`);
    return r;
  };

  const patient = patientOf(c, is, P, composition, list);
  const studyUid = studyUidOf(c, isEntry);
  const started = dt(is.started, `${P}.started`);
  if (!started) c.warn(`${P}.started`, 'GW_FHIR_MISSING_ELEMENT', 'ImagingStudy.started is missing: Study Date/Time are R+ (SUPPL 6.X.2.6)');
  const s = studyOf(c, studyEntries, studyUid, dt);
  const document = documentOf(c, manifestSop(c, input, bundle, composition, list, P), { bundle, composition, list }, opts, dt, tz);

  const manifest: Manifest = {
    document,
    patient,
    study: { studyInstanceUid: s.studyUid ?? '', requests: s.requests, procedureCodes: s.procedureCodes, modalities: s.modalities, anatomicalRegions: s.regions },
    evidence: [{ studyInstanceUid: s.studyUid ?? '', series: s.series }, ...s.otherEvidence],
  };
  const st = manifest.study;
  if (started) {
    st.date = started.date;
    if (started.time) st.time = started.time;
  }
  const d = str(is.description);
  if (d) st.description = d;
  if (s.accessions.length === 1) st.accession = s.accessions[0]; // SUPPL 6.X.2.6.1 "Simple" case; group → only in requests
  if (Number.isInteger(is.numberOfSeries)) st.numberOfSeries = is.numberOfSeries;
  if (s.displayUri) manifest.evidence[0]!.displayUri = s.displayUri;

  return c.issues.some((i) => i.severity === 'error') ? { issues: c.issues } : { manifest, issues: c.issues };
}

/** A DICOM DIMSE Endpoint (Retrieve AE Title in Endpoint.name). */
function isDimse(ep: Json): boolean {
  return ep.resourceType === 'Endpoint' && str(ep.connectionType?.code) === 'dicom-dimse';
}

function isWado(ep: Json): boolean {
  if (ep.resourceType !== 'Endpoint') return false;
  const ct = str(ep.connectionType?.code);
  if (ct === 'dicom-wado-rs') return true;
  if (ct === 'dicom-dimse') return false;
  if (arr(ep.extension).some((x) => x.url === EXT.retrieveLocationUid)) return true;
  return !(Array.isArray(ep.payloadMimeType) && ep.payloadMimeType.includes('text/html')) && ct !== 'ihe-iid';
}

function toPatientIdentifier(id: Json): PatientIdentifier {
  const out: PatientIdentifier = { value: str(id.value) ?? '' };
  const iss = issuerFromIdentifier(id);
  if (iss) out.issuer = iss;
  return out;
}

function typeCode(id: Json): string | undefined {
  for (const k of arr(id.type?.coding)) {
    if (k.code === '121022' || k.code === 'ACSN') return 'ACSN';
    if (k.code === 'PLAC' || k.code === 'FILL') return k.code;
  }
  if (id.type?.text === 'Requested Procedure ID') return 'RPID';
  return undefined;
}

function toRequest(sr: Json): RequestedProcedure {
  const r: RequestedProcedure = { requestedProcedureCodes: [] };
  for (const id of arr(sr.identifier)) {
    const v = str(id.value);
    if (!v) continue;
    const t = typeCode(id);
    const iss = issuerFromIdentifier(id);
    if (t === 'ACSN' && !r.accession) r.accession = iss ? { value: v, issuer: iss } : { value: v };
    else if (t === 'PLAC' && !r.placerOrderNumber) {
      r.placerOrderNumber = v;
      if (iss) r.placerIssuer = iss;
    } else if (t === 'FILL' && !r.fillerOrderNumber) {
      r.fillerOrderNumber = v;
      if (iss) r.fillerIssuer = iss;
    } else if (t === 'RPID') r.requestedProcedureId = v;
  }
  if (isObj(sr.code)) {
    r.requestedProcedureCodes = arr(sr.code.coding).filter((k) => str(k.code)).map((k) => codingToCode(k as FhirCoding));
    const t = str(sr.code.text);
    if (t) r.requestedProcedureDescription = t;
  }
  return r;
}

/** Study Instance UID of an ImagingStudy (identifier with system urn:dicom:uid or type 110180), errors recorded. */
function studyUidOf(c: Ctx, entry: Entry): string | undefined {
  const is = entry.resource, P = entry.path;
  const studyIdent = arr(is.identifier).find((x) => x.system === SYS.dicomUid || arr(x.type?.coding).some((k) => k.code === '110180')) ?? arr(is.identifier).find((x) => String(x.value ?? '').startsWith('urn:oid:'));
  const studyUid = stripOid(str(studyIdent?.value));
  if (!studyUid) c.err(`${P}.identifier`, 'GW_FHIR_MISSING_ELEMENT', 'ImagingStudy.identifier with the Study Instance UID (system urn:dicom:uid) is missing');
  else if (!isOid(studyUid)) c.err(`${P}.identifier[${arr(is.identifier).indexOf(studyIdent!)}].value`, 'GW_FHIR_BAD_UID', `Study Instance UID "${studyUid}" is not a DICOM UID`);
  return studyUid;
}

/**
 * The ImagingStudy resources of the manifest, the manifest's own study first: those the Composition
 * (event.detail) or the legacy List (entry.item) points at, else every ImagingStudy in the Bundle.
 */
function imagingStudyEntries(c: Ctx, composition: Entry | undefined, list: Entry | undefined): Entry[] {
  const out: Entry[] = [];
  const add = (e: Entry | undefined) => { if (e?.resource.resourceType === 'ImagingStudy' && !out.includes(e)) out.push(e); };
  if (composition) for (const ev of arr(composition.resource.event)) for (const det of arr(ev.detail)) add(c.resolve(det));
  if (!out.length && list) {
    arr(list.resource.entry).forEach((le, i) => {
      if (!isObj(le.item)) return;
      const e = c.resolve(le.item);
      add(e);
      if (!e && /ImagingStudy/.test(refText(le.item)) && c.ofType('ImagingStudy').length === 0)
        c.err(`${list.path}.entry[${i}].item`, 'GW_FHIR_UNRESOLVED_REFERENCE', `ImagingStudy "${refText(le.item)}" is not in the Bundle`);
    });
  }
  const all = c.ofType('ImagingStudy');
  if (!out.length) all.forEach(add);
  for (const e of all) if (!out.includes(e)) c.warn(e.path, 'GW_CONVERT_DROPPED', 'ImagingStudy not referenced by the Composition/List: not part of the manifest, not carried over');
  return out;
}

/** Requested procedures of one ImagingStudy (basedOn; without basedOn, the unclaimed ServiceRequests), tagged with its study. */
function requestsOf(c: Ctx, entry: Entry, studyUid: string | undefined, fallback: Entry[]): RequestedProcedure[] {
  const is = entry.resource, P = entry.path;
  const requests: RequestedProcedure[] = [];
  const srEntries: Entry[] = [];
  arr(is.basedOn).forEach((b, i) => {
    const e = c.resolve(b);
    if (e?.resource.resourceType === 'ServiceRequest') srEntries.push(e);
    else if (isObj(b.identifier) && str(b.identifier.value)) requests.push({ accession: { value: str(b.identifier.value)!, issuer: issuerFromIdentifier(b.identifier) }, requestedProcedureCodes: [] });
    else if (b.reference) c.warn(`${P}.basedOn[${i}]`, 'GW_FHIR_UNRESOLVED_REFERENCE', `ServiceRequest "${refText(b)}" is not in the Bundle`);
  });
  if (!arr(is.basedOn).length) srEntries.push(...fallback);
  for (const e of srEntries) requests.push(toRequest(e.resource));
  for (const r of requests) {
    if (studyUid) r.studyInstanceUid = studyUid;
    if (r.accession && !r.accession.issuer) delete r.accession.issuer;
  }
  return requests;
}

type DateTimeOf = (v: unknown, path: string) => { date: string; time?: string } | undefined;

/** Series of one ImagingStudy with their retrieve information, and the study's web viewer (Display URI). */
function studySeries(c: Ctx, entry: Entry, dt: DateTimeOf): { series: Series[]; displayUri?: string } {
  const is = entry.resource, P = entry.path;
  let displayUri: string | undefined;
  const studyRetrieve: Json[] = [];
  arr(is.endpoint).forEach((r, i) => {
    const e = c.resolve(r);
    if (!e) return c.warn(`${P}.endpoint[${i}]`, 'GW_FHIR_UNRESOLVED_REFERENCE', `Endpoint "${refText(r)}" is not in the Bundle`);
    if (isWado(e.resource) || isDimse(e.resource)) studyRetrieve.push(r);
    else displayUri ??= str(e.resource.address);
  });
  const series = arr(is.series).map((s, si) => oneSeries(c, s, `${P}.series[${si}]`, studyRetrieve, P, dt));
  if (!series.length) c.err(`${P}.series`, 'GW_FHIR_MISSING_ELEMENT', 'ImagingStudy.series is missing: a manifest references at least one series');
  return displayUri ? { series, displayUri } : { series };
}

function oneSeries(c: Ctx, s: Json, SP: string, studyRetrieve: Json[], P: string, dt: DateTimeOf): Series {
  const uid = str(s.uid);
  if (!uid) c.err(`${SP}.uid`, 'GW_FHIR_MISSING_ELEMENT', 'series.uid is missing');
  else if (!isOid(uid)) c.err(`${SP}.uid`, 'GW_FHIR_BAD_UID', `Series Instance UID "${uid}" is not a DICOM UID`);
  const out: Series = { uid: uid ?? '', instances: [] };
  const mod = str(s.modality?.code);
  if (mod && !hasDar(s.modality)) out.modality = mod;
  if (Number.isInteger(s.number)) out.number = s.number;
  const desc = str(s.description);
  if (desc) out.description = desc;
  const sst = dt(s.started, `${SP}.started`);
  if (sst) {
    out.date = sst.date;
    if (sst.time) out.time = sst.time;
  }
  if (isObj(s.bodySite)) out.bodySite = codingToCode(s.bodySite as FhirCoding);
  if (isObj(s.laterality)) out.laterality = codingToCode(s.laterality as FhirCoding);
  // Endpoint: the series' own, else the study's (R4: study endpoints apply to all series).
  const eps = arr(s.endpoint).length ? arr(s.endpoint).map((r, j) => ({ r, path: `${SP}.endpoint[${j}]` })) : studyRetrieve.map((r) => ({ r, path: `${P}.endpoint` }));
  seriesRetrieve(c, out, eps);
  if (!eps.length) c.err(`${SP}.endpoint`, 'GW_FHIR_MISSING_ELEMENT', 'series.endpoint (MadoWadoEndpoint) is missing: the KOS needs a Retrieve URL or Retrieve Location UID');
  const insts = arr(s.instance);
  if (!insts.length) c.err(`${SP}.instance`, 'GW_FHIR_MISSING_ELEMENT', `series.instance is missing${Number.isInteger(s.numberOfInstances) ? ` (numberOfInstances = ${s.numberOfInstances})` : ''}: a KOS must list the SOP Instance UID and SOP Class UID of every referenced instance`);
  insts.forEach((inst, ii) => out.instances.push(oneInstance(c, inst, `${SP}.instance[${ii}]`)));
  if (Number.isInteger(s.numberOfInstances)) {
    out.numberOfInstances = s.numberOfInstances;
    if (insts.length && s.numberOfInstances !== insts.length) c.warn(`${SP}.numberOfInstances`, 'GW_FHIR_COUNT_MISMATCH', `numberOfInstances ${s.numberOfInstances} ≠ ${insts.length} listed instances`);
  }
  return out;
}

/**
 * Retrieve URL / Retrieve Location UID from the first MadoWadoEndpoint, Retrieve AE Title from the
 * first DICOM DIMSE Endpoint (its name). Only an AE Title: a warning, as the KOS validator gives.
 */
function seriesRetrieve(c: Ctx, out: Series, eps: Array<{ r: Json; path: string }>): void {
  let wado = false;
  for (const { r, path } of eps) {
    const e = c.resolve(r);
    if (!e) {
      c.err(path, 'GW_FHIR_UNRESOLVED_REFERENCE', `Endpoint "${refText(r)}" is not in the Bundle: the KOS needs its Retrieve URL / Retrieve Location UID (SUPPL 6.X.2.14)`);
      continue;
    }
    const ep = e.resource;
    if (isDimse(ep)) {
      const ae = str(ep.name);
      if (ae && out.retrieveAeTitle === undefined) out.retrieveAeTitle = ae;
      continue;
    }
    if (!isWado(ep) || wado) continue;
    wado = true;
    const addr = str(ep.address);
    // decisions.md D18: detect the placeholder by the data-absent-reason extension, not by the URL value.
    if (addr && !hasDar(ep._address) && addr !== 'http://notspecified') out.retrieveUrl = addr.replace(/\/+$/, '');
    const loc = arr(ep.extension).find((x) => x.url === EXT.retrieveLocationUid);
    const locVal = str(loc?.valueString) ?? str(loc?.valueOid) ?? str(loc?.valueUri);
    if (locVal) out.retrieveLocationUid = stripOid(locVal);
    else c.warn(`${e.path}.extension`, 'GW_FHIR_MISSING_ELEMENT', 'MadoWadoEndpoint has no Retrieve Location UID extension (R+, SUPPL 6.X.2.14)');
  }
}

function oneInstance(c: Ctx, inst: Json, IP: string): Instance {
  const iuid = str(inst.uid);
  if (!iuid) c.err(`${IP}.uid`, 'GW_FHIR_MISSING_ELEMENT', 'instance.uid is missing');
  else if (!isOid(iuid)) c.err(`${IP}.uid`, 'GW_FHIR_BAD_UID', `SOP Instance UID "${iuid}" is not a DICOM UID`);
  const cls = stripOid(str(inst.sopClass?.code));
  if (!cls) c.err(`${IP}.sopClass`, 'GW_FHIR_MISSING_ELEMENT', 'instance.sopClass is missing: the KOS needs the Referenced SOP Class UID');
  else if (!isOid(cls)) c.err(`${IP}.sopClass.code`, 'GW_FHIR_BAD_UID', `SOP Class UID "${cls}" is not a DICOM UID`);
  const o: Instance = { sopClassUid: cls ?? '', sopInstanceUid: iuid ?? '' };
  if (Number.isInteger(inst.number)) o.number = inst.number;
  for (const x of arr(inst.extension)) {
    if (x.url === EXT.numberOfFrames && Number.isInteger(x.valueInteger)) o.numberOfFrames = x.valueInteger;
    if (x.url === EXT.koDocumentTitle) {
      const t = conceptToCode(x.valueCodeableConcept);
      if (t) o.koDocumentTitle = t;
    }
  }
  const title = str(inst.title);
  if (title) o.koDescription = title;
  return o;
}
