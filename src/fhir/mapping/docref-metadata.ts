/**
 * The metadata a Document Source submits in its DocumentReference (ITI-65) kept next to the
 * manifest and overlaid on both rendered DocumentReferences, so ITI-67 returns what the source
 * said (MHD DocumentReference, ITI TF-3 Table 4.3.1-3: confidentialityCode, classCode, typeCode,
 * author, legalAuthenticator, comments, eventCodeList, healthcareFacilityTypeCode,
 * practiceSettingCode, serviceStop/StartTime, sourcePatientInfo, referenceIdList).
 *
 * Values the manifest itself determines (MADO DocumentReference profiles: masterIdentifier,
 * subject, content.format, contentType, the modality/bodySite extensions, context.period.start,
 * the study-instance-uid related entry, attachment.creation) stay the gateway's; a submitted value
 * that differs is reported as a warning, never silently replaced. Pure: no I/O.
 */
import type { ValidationIssue } from '../../model/manifest.js';
import { EXT } from './codes.js';
import type { Json } from './common.js';

/** What is kept (manifest.docref_metadata). Every field optional; absent = the gateway's value. */
export interface DocRefMetadata {
  securityLabel?: Json[];
  category?: Json[];
  type?: Json;
  /** Authors and authenticator as references; their contained resources in `contained` */
  author?: Json[];
  authenticator?: Json;
  contained?: Json[];
  description?: string;
  language?: string;
  event?: Json[];
  facilityType?: Json;
  practiceSetting?: Json;
  periodEnd?: string;
  /** The source's patient as sent (contained sourcePatientInfo, or the transaction's Patient) */
  sourcePatient?: Json;
  related?: Json[];
  /** Identifiers other than the gateway's uniqueId / entryUUID (the source's own ids) */
  identifier?: Json[];
}

const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);
const arr = (x: unknown): Json[] => (Array.isArray(x) ? x.filter(isObj) : []);
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function codeKeys(cc: Json[] | Json | undefined): string[] {
  const list = Array.isArray(cc) ? cc : cc ? [cc] : [];
  return list.flatMap((c: Json) => arr(c?.coding).map((k) => `${k.system ?? ''}|${k.code ?? ''}`)).sort();
}

/** Copy a contained resource an author/authenticator reference points at, under a prefixed id. */
function takeRef(src: Json, ref: Json, prefix: string, contained: Json[]): Json {
  const r = String(ref.reference ?? '');
  if (!r.startsWith('#')) return { ...ref };
  const c = arr(src.contained).find((x) => x.id === r.slice(1));
  if (!c) return { ...ref, reference: undefined };
  const id = `${prefix}-${r.slice(1)}`.slice(0, 64);
  if (!contained.some((x) => x.id === id)) contained.push({ ...c, id });
  return { ...ref, reference: `#${id}` };
}

function keepPeople(src: Json, md: DocRefMetadata): void {
  const contained: Json[] = [];
  const authors = arr(src.author).map((a, i) => takeRef(src, a, `src-author${i}`, contained));
  if (authors.length) md.author = authors;
  if (isObj(src.authenticator)) md.authenticator = takeRef(src, src.authenticator, 'src-authenticator', contained);
  if (contained.length) md.contained = contained;
}

function keepContext(src: Json, md: DocRefMetadata, patientEntry: Json | undefined): void {
  const ctx = isObj(src.context) ? src.context : {};
  if (arr(ctx.event).length) md.event = arr(ctx.event);
  if (isObj(ctx.facilityType)) md.facilityType = ctx.facilityType;
  if (isObj(ctx.practiceSetting)) md.practiceSetting = ctx.practiceSetting;
  if (typeof ctx.period?.end === 'string') md.periodEnd = ctx.period.end;
  if (arr(ctx.related).length) md.related = arr(ctx.related);
  const spRef = String(ctx.sourcePatientInfo?.reference ?? '');
  const sp = spRef.startsWith('#') ? arr(src.contained).find((x) => x.id === spRef.slice(1)) : undefined;
  const patient = sp ?? patientEntry;
  if (patient?.resourceType === 'Patient') {
    const { id: _id, meta: _meta, text: _text, ...rest } = patient;
    md.sourcePatient = rest;
  }
}

/**
 * The metadata of a submitted DocumentReference worth keeping, and a warning for each value MADO
 * fixes that the submission states differently. `derived` is the gateway's rendering of the same
 * manifest (either form), `patientEntry` the transaction's Patient the docref's subject names.
 */
export function submittedDocRefMetadata(src: Json, derived: Json, path: string, patientEntry?: Json): { metadata?: DocRefMetadata; warnings: ValidationIssue[] } {
  const md: DocRefMetadata = {};
  if (arr(src.securityLabel).length) md.securityLabel = arr(src.securityLabel);
  if (arr(src.category).length) md.category = arr(src.category);
  if (isObj(src.type)) md.type = src.type;
  if (typeof src.description === 'string' && src.description) md.description = src.description;
  const lang = src.content?.[0]?.attachment?.language;
  if (typeof lang === 'string' && lang) md.language = lang;
  keepPeople(src, md);
  keepContext(src, md, patientEntry);
  const master = derived.masterIdentifier as Json;
  const ids = arr(src.identifier).filter((i) => !same({ system: i.system, value: i.value }, { system: master.system, value: master.value }) && typeof i.value === 'string');
  if (isObj(src.masterIdentifier) && src.masterIdentifier.value !== master.value) ids.unshift(src.masterIdentifier);
  if (ids.length) md.identifier = ids;
  return { metadata: Object.keys(md).length ? md : undefined, warnings: fixedValueWarnings(src, derived, path) };
}

function warn(path: string, what: string): ValidationIssue {
  return { severity: 'warning', code: 'GW_ITI65_MADO_VALUE_KEPT', path, message: `${what} is determined by the manifest (MADO DocumentReference profile); the submitted value differs and the manifest's value is served` };
}

/** The MADO-fixed values a submission may state differently. */
function fixedValueWarnings(src: Json, derived: Json, path: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const sc = src.content?.[0] ?? {};
  const dc = derived.content?.[0] ?? {};
  const fmt = sc.format?.code;
  if (typeof fmt === 'string' && fmt !== dc.format?.code) out.push(warn(`${path}.content[0].format`, 'content.format'));
  const ext = (r: Json, url: string) => arr(r.extension).find((e) => e.url === url);
  const sm = ext(src, EXT.r5Modality);
  if (sm && !same(codeKeys(sm.valueCodeableConcept), codeKeys(ext(derived, EXT.r5Modality)?.valueCodeableConcept))) out.push(warn(`${path}.extension`, 'the modality extension'));
  const start = src.context?.period?.start;
  const dstart = derived.context?.period?.start;
  if (typeof start === 'string' && dstart && Date.parse(start) !== Date.parse(dstart)) out.push(warn(`${path}.context.period.start`, 'context.period.start (start of the study)'));
  const studyRel = (r: Json) => arr(r.context?.related).find((x) => arr(x.identifier?.type?.coding).some((k) => k.code === '110180'))?.identifier?.value;
  const ss = studyRel(src);
  if (typeof ss === 'string' && ss.replace(/^urn:oid:/, '') !== String(studyRel(derived) ?? '').replace(/^urn:oid:/, '')) out.push(warn(`${path}.context.related`, 'the Study Instance UID in context.related'));
  return out;
}

function keyOfRelated(r: Json): string {
  return `${r.identifier?.system ?? ''}|${String(r.identifier?.value ?? r.reference ?? '')}`;
}

/** Overlay kept metadata on one rendered DocumentReference (both forms get the same). */
export function applyDocRefMetadata(r: Json, md: DocRefMetadata | null | undefined, gatewayPatient: string): void {
  if (!md) return;
  if (md.securityLabel) r.securityLabel = md.securityLabel;
  if (md.category) r.category = md.category;
  if (md.type) r.type = md.type;
  if (md.description) r.description = md.description;
  if (md.identifier) r.identifier = [...(r.identifier ?? []), ...md.identifier];
  if (md.contained) r.contained = [...(r.contained ?? []), ...md.contained];
  if (md.author) r.author = [...(r.author ?? []), ...md.author];
  if (md.authenticator) r.authenticator = md.authenticator;
  if (md.language && r.content?.[0]?.attachment) r.content[0].attachment.language = md.language;
  const ctx: Json = (r.context ??= {});
  if (md.event) {
    const have = new Set(arr(ctx.event).flatMap((e) => codeKeys(e)));
    ctx.event = [...arr(ctx.event), ...md.event.filter((e) => !codeKeys(e).every((k) => have.has(k)))];
  }
  if (md.facilityType) ctx.facilityType = md.facilityType;
  if (md.practiceSetting) ctx.practiceSetting = md.practiceSetting;
  if (md.periodEnd && ctx.period?.start) ctx.period = { ...ctx.period, end: md.periodEnd };
  if (md.related) {
    const have = new Set(arr(ctx.related).map(keyOfRelated));
    ctx.related = [...arr(ctx.related), ...md.related.filter((x) => !have.has(keyOfRelated(x)))];
  }
  if (md.sourcePatient) {
    // Kept as sent and linked to the gateway's patient, never merged into it.
    const sp = { resourceType: 'Patient', ...md.sourcePatient, id: 'src-patient', link: [{ other: { reference: `Patient/${gatewayPatient}` }, type: 'seealso' }] };
    r.contained = [...arr(r.contained).filter((c) => c.id !== 'src-patient'), sp];
  }
}

/** Token rows (code, system, value) for the kept metadata; they replace the deployment defaults. */
export function docRefMetadataTokens(md: DocRefMetadata | null | undefined): Array<{ code: string; system: string; value: string }> {
  if (!md) return [];
  const out: Array<{ code: string; system: string; value: string }> = [];
  const codings = (code: string, list: Json[] | undefined) => {
    for (const cc of list ?? []) for (const k of arr(cc.coding)) if (typeof k.code === 'string') out.push({ code, system: typeof k.system === 'string' ? k.system : '', value: k.code });
  };
  codings('security-label', md.securityLabel);
  codings('category', md.category);
  codings('type', md.type ? [md.type] : undefined);
  codings('event', md.event);
  codings('facility', md.facilityType ? [md.facilityType] : undefined);
  codings('setting', md.practiceSetting ? [md.practiceSetting] : undefined);
  for (const r of md.related ?? []) {
    const v = r.identifier?.value;
    if (typeof v === 'string') out.push({ code: 'related', system: typeof r.identifier.system === 'string' ? r.identifier.system : '', value: v });
  }
  for (const i of md.identifier ?? []) out.push({ code: 'identifier', system: typeof i.system === 'string' ? i.system : '', value: i.value });
  return out;
}
