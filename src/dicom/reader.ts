/**
 * KOS (PS3.3 A.35.4) → manifest model (src/model/manifest.ts), lenient on the real-world
 * sloppiness listed in the digest §6 (Q6–Q12, Q19, Q22), strict on what makes a manifest unusable.
 */
import type { Code, Instance, Issuer, KosKind, Manifest, PatientIdentifier, PersonName, RequestedProcedure, Series, StudyReference, ValidationIssue } from '../model/manifest.js';
import { makeCharset, type Charset } from './charset.js';
import { classifyTitle, conceptOf, KOS_SOP_CLASS, type Concept } from './codes.js';
import { Issues } from './issues.js';
import { DataSet, ParseError, parseDicom, raw, seq, str, tagStr } from './part10.js';
import { validateManifestModel } from './validate.js';

export interface ReadKosOptions { maxInflatedBytes?: number; maxReferences?: number }
export interface KosReadResult { kind: KosKind; manifest?: Manifest; issues: ValidationIssue[] }
export interface DicomIdentity { sopClassUid?: string; sopInstanceUid?: string; studyInstanceUid?: string; seriesInstanceUid?: string; transferSyntaxUid?: string }

export const DEFAULT_MAX_INFLATED = 64 * 1024 * 1024;
export const DEFAULT_MAX_REFERENCES = 100_000;

const T = {
  charset: 0x00080005, sopClass: 0x00080016, sopInstance: 0x00080018, studyDate: 0x00080020, contentDate: 0x00080023,
  studyTime: 0x00080030, contentTime: 0x00080033, accession: 0x00080050, accessionIssuerSeq: 0x00080051, retrieveAe: 0x00080054,
  manufacturer: 0x00080070, institution: 0x00080080, referring: 0x00080090, codeValue: 0x00080100, scheme: 0x00080102,
  schemeVersion: 0x00080103, meaning: 0x00080104, longCodeValue: 0x00080119, urnCodeValue: 0x00080120, tz: 0x00080201,
  studyDescription: 0x00081030, refSeriesSeq: 0x00081115, refSopClass: 0x00081150, refSopInstance: 0x00081155,
  refFrames: 0x00081160, retrieveUrl: 0x00081190, refSopSeq: 0x00081199,
  patientName: 0x00100010, patientId: 0x00100020, issuerOfPatientId: 0x00100021, typeOfPatientId: 0x00100022,
  issuerQualifiersSeq: 0x00100024, birthDate: 0x00100030, sex: 0x00100040, otherIdsSeq: 0x00101002,
  studyUid: 0x0020000d, seriesUid: 0x0020000e, studyId: 0x00200010, seriesNumber: 0x00200011, instanceNumber: 0x00200013,
  reqProcDescription: 0x00321060, reqProcCodeSeq: 0x00321064,
  placerIdSeq: 0x00400026, fillerIdSeq: 0x00400027, localNamespace: 0x00400031, universalId: 0x00400032, universalIdType: 0x00400033,
  reqProcId: 0x00401001, placer: 0x00402016, filler: 0x00402017,
  relType: 0x0040a010, valueType: 0x0040a040, conceptName: 0x0040a043, date: 0x0040a121, time: 0x0040a122, uid: 0x0040a124,
  textValue: 0x0040a160, conceptCode: 0x0040a168, measuredValueSeq: 0x0040a300, numericValue: 0x0040a30a,
  refRequestSeq: 0x0040a370, evidenceSeq: 0x0040a375, contentSeq: 0x0040a730,
  retrieveLocationUid: 0x0040e011, displayUri: 0x0040e012,
} as const;

class Ctx {
  readonly issues = new Issues();
  underscoreRels = 0;
  constructor(readonly cs: Charset) {}
  text(ds: DataSet, tag: number, pn = false): string | undefined {
    const b = raw(ds, tag);
    if (!b || b.length === 0) return undefined;
    let ascii = true;
    for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80 || b[i] === 0x1b) { ascii = false; break; }
    const s = ascii ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') : this.cs.decode(b, pn);
    const t = s.replace(/[\s\0]+$/, '').replace(/^[ \0]+/, '');
    return t === '' ? undefined : t;
  }
  code(ds: DataSet | undefined, path: () => string): Code | undefined {
    if (!ds) return undefined;
    const value = str(ds, T.codeValue) ?? this.text(ds, T.longCodeValue) ?? str(ds, T.urnCodeValue);
    if (value === undefined) {
      this.issues.warn('GW_KOS_CODE_NO_VALUE', path(), 'coded entry without Code Value; ignored');
      return undefined;
    }
    const c: Code = { value, scheme: str(ds, T.scheme) ?? '' };
    if (c.scheme === '') this.issues.warn('GW_KOS_CODE_NO_SCHEME', path(), `code "${value.slice(0, 16)}" has no Coding Scheme Designator (digest Q12)`);
    put(c, 'meaning', this.text(ds, T.meaning));
    put(c, 'schemeVersion', str(ds, T.schemeVersion));
    return c;
  }
  pn(ds: DataSet, tag: number): PersonName | undefined {
    const s = this.text(ds, tag, true);
    if (!s) return undefined;
    const [a, i, p] = s.split('=');
    const n: PersonName = {};
    put(n, 'alphabetic', nonEmpty(a)); put(n, 'ideographic', nonEmpty(i)); put(n, 'phonetic', nonEmpty(p));
    return Object.keys(n).length ? n : undefined;
  }
}

function nonEmpty(s: string | undefined): string | undefined { return s === undefined || s.replace(/[\s^]/g, '') === '' ? undefined : s.replace(/\s+$/, ''); }
function put<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void { if (v !== undefined) o[k] = v; }

/** Leading integer of a DS/IS/TEXT value: "36", "36.0", '(50, UCUM, "instances")' → 50 (digest Q10). */
export function intOf(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^\s*\(?\s*([+-]?\d+)(?:\.0*)?(?![\d.])/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

function issuerFrom(ctx: Ctx, local: string | undefined, q: DataSet | undefined): Issuer | undefined {
  const iss: Issuer = {};
  put(iss, 'localNamespace', local);
  if (q) {
    put(iss, 'universalEntityId', ctx.text(q, T.universalId));
    put(iss, 'universalEntityIdType', str(q, T.universalIdType));
  }
  return Object.keys(iss).length ? iss : undefined;
}
function hl7Issuer(ctx: Ctx, d: DataSet | undefined): Issuer | undefined {
  return d ? issuerFrom(ctx, ctx.text(d, T.localNamespace), d) : undefined;
}

function patientIdentifier(ctx: Ctx, d: DataSet): PatientIdentifier | undefined {
  const value = ctx.text(d, T.patientId);
  if (value === undefined) return undefined;
  const id: PatientIdentifier = { value };
  put(id, 'issuer', issuerFrom(ctx, ctx.text(d, T.issuerOfPatientId), seq(d, T.issuerQualifiersSeq)[0]));
  put(id, 'typeOfPatientId', str(d, T.typeOfPatientId));
  return id;
}

function retrieveUrl(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const t = s.trim().replace(/\/+$/, ''); // trailing "/" normalised (digest §1.5.3, MADO_KOS_A.dcm)
  return t === '' ? undefined : t;
}

/** Display URI: (0040,E012) (IG mapping), else private (000D,xx01) under creator IHE_MADO_PRIVATE (SUPPL, digest Q8). */
function displayUriOf(ctx: Ctx, d: DataSet): string | undefined {
  const v = str(d, T.displayUri);
  if (v) return v.trim();
  for (const tag of d.tags()) {
    if (tag >>> 16 !== 0x000d) continue;
    const elem = tag & 0xffff;
    if (elem < 0x10 || elem > 0xff) continue;
    if (ctx.text(d, tag) === 'IHE_MADO_PRIVATE') {
      const p = str(d, ((0x000d << 16) | (elem << 8) | 0x01) >>> 0);
      if (p) return p.trim();
    }
  }
  return undefined;
}

const REF_VT = new Set(['IMAGE', 'COMPOSITE', 'WAVEFORM']);

/** One content item; its tag path is computed only when an issue needs it. */
class Item {
  constructor(readonly rel: string, readonly vt: string, readonly concept: Concept | undefined, readonly ds: DataSet,
    private readonly parent: Item | undefined, private readonly index: number) {}
  path(): string { return `${this.parent ? this.parent.path() + '>' : ''}(0040,A730)[${this.index}]`; }
}

function items(ctx: Ctx, parentDs: DataSet, parent: Item | undefined): Item[] {
  const list = seq(parentDs, T.contentSeq);
  const out: Item[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const ds = list[i]!;
    let rel = str(ds, T.relType) ?? '';
    if (rel.includes('_')) { ctx.underscoreRels++; rel = rel.replace(/_/g, ' '); }
    const vt = (str(ds, T.valueType) ?? '').toUpperCase();
    const nameDs = seq(ds, T.conceptName)[0];
    const nameValue = nameDs ? (str(nameDs, T.codeValue) ?? str(nameDs, T.longCodeValue)) : undefined;
    out[i] = new Item(rel, vt, conceptOf(nameValue), ds, parent, i);
  }
  return out;
}

function textOrNum(ctx: Ctx, it: Item): string | undefined {
  if (it.vt === 'NUM') {
    const mv = seq(it.ds, T.measuredValueSeq)[0];
    return mv ? str(mv, T.numericValue) : undefined;
  }
  if (it.vt === 'TEXT') return ctx.text(it.ds, T.textValue);
  return undefined;
}
function conceptCode(ctx: Ctx, it: Item): Code | undefined {
  return ctx.code(seq(it.ds, T.conceptCode)[0], () => `${it.path()}>(0040,A168)[0]`);
}

interface InstDesc { number?: number; numberOfFrames?: number; koDocumentTitle?: Code; koDescription?: string }

function instanceDescriptor(ctx: Ctx, it: Item, d: InstDesc): boolean {
  switch (it.concept) {
    case 'instanceNumber': { const n = intOf(textOrNum(ctx, it)); if (n !== undefined) d.number = n; return true; }
    case 'numberOfFrames': { const n = intOf(textOrNum(ctx, it)); if (n !== undefined) d.numberOfFrames = n; return true; }
    case 'documentTitle': { const c = conceptCode(ctx, it); if (c) d.koDocumentTitle = c; return true; }
    case 'keyObjectDescription': { const t = ctx.text(it.ds, T.textValue); if (t !== undefined) d.koDescription = t; return true; }
    default: return false;
  }
}

interface Group {
  uid?: string; modality?: string; number?: number; description?: string; date?: string; time?: string;
  bodySite?: Code; laterality?: Code; numberOfInstances?: number; item: Item;
  instances: Map<string, InstDesc>; firstSop?: string;
}

function readGroup(ctx: Ctx, g: Item): Group {
  const grp: Group = { item: g, instances: new Map() };
  let pending: InstDesc = {};
  for (const it of items(ctx, g.ds, g)) {
    if (REF_VT.has(it.vt)) {
      const ref = seq(it.ds, T.refSopSeq)[0];
      const sop = ref ? str(ref, T.refSopInstance) : undefined;
      const d: InstDesc = pending;
      pending = {};
      for (const c of items(ctx, it.ds, it)) instanceDescriptor(ctx, c, d);
      if (sop) { grp.instances.set(sop, d); grp.firstSop ??= sop; }
      continue;
    }
    // Instance descriptors written as preceding siblings apply to the next IMAGE (digest Q11).
    if (instanceDescriptor(ctx, it, pending)) continue;
    switch (it.concept) {
      case 'modality': grp.modality = conceptCode(ctx, it)?.value; break;
      case 'seriesDate': grp.date = str(it.ds, T.date) ?? ctx.text(it.ds, T.textValue); break;
      case 'seriesTime': grp.time = str(it.ds, T.time) ?? ctx.text(it.ds, T.textValue); break;
      case 'seriesDescription': grp.description = it.vt === 'CODE' ? conceptCode(ctx, it)?.meaning : ctx.text(it.ds, T.textValue); break;
      case 'seriesNumber': grp.number = intOf(textOrNum(ctx, it)); break;
      case 'seriesInstanceUid': grp.uid = str(it.ds, T.uid) ?? ctx.text(it.ds, T.textValue); break;
      case 'targetRegion':
        if (it.vt === 'CODE') grp.bodySite = conceptCode(ctx, it);
        else ctx.issues.info('GW_KOS_TEXT_TARGET_REGION', it.path(), 'series Target Region given as TEXT; not mapped to a code');
        break;
      case 'laterality': grp.laterality = conceptCode(ctx, it); break;
      case 'numberOfSeriesInstances': {
        const v = textOrNum(ctx, it);
        grp.numberOfInstances = intOf(v);
        if (grp.numberOfInstances === undefined) ctx.issues.warn('GW_KOS_BAD_COUNT', it.path(), 'Number of Series Related Instances is not an integer');
        else if (it.vt === 'TEXT') ctx.issues.warn('GW_KOS_COUNT_AS_TEXT', it.path(), 'Number of Series Related Instances encoded as TEXT, CP-2595 requires NUM (digest Q10)');
        break;
      }
      default: break;
    }
  }
  return grp;
}

export function readKos(bytes: Uint8Array, opts: ReadKosOptions = {}): KosReadResult {
  try {
    return readKosUnsafe(bytes, opts);
  } catch (e) {
    if (e instanceof ParseError) return { kind: 'not-kos', issues: [{ severity: 'error', code: e.code, path: e.path, message: e.message }] };
    // Defensive: any other failure on hostile input is still a validation error, never a crash.
    return { kind: 'not-kos', issues: [{ severity: 'error', code: 'GW_KOS_UNREADABLE', path: '', message: `unreadable DICOM input (${(e as Error)?.name ?? 'error'})` }] };
  }
}

function readKosUnsafe(bytes: Uint8Array, opts: ReadKosOptions): KosReadResult {
  if (!(bytes instanceof Uint8Array)) return { kind: 'not-kos', issues: [{ severity: 'error', code: 'GW_KOS_EMPTY', path: '', message: 'input is not a byte array' }] };
  const maxRefs = opts.maxReferences ?? DEFAULT_MAX_REFERENCES;
  const p = parseDicom(bytes, { maxInflatedBytes: opts.maxInflatedBytes ?? DEFAULT_MAX_INFLATED, maxItems: Math.max(1000, maxRefs * 16 + 10_000) });
  // item cap: one reference costs up to ~11 sequence items (evidence, flat list, library entry + descriptors)
  const ds = p.ds;
  const csRaw = str(ds, T.charset);
  const ctx = new Ctx(makeCharset(csRaw));
  const iss = ctx.issues;
  if (ctx.cs.unknown.length) iss.warn('GW_KOS_CHARSET_UNKNOWN', '(0008,0005)', `unsupported Specific Character Set term(s): ${ctx.cs.unknown.join(', ').slice(0, 80)}; decoded as Latin-1`);
  const sopClassUid = str(ds, T.sopClass);
  if (sopClassUid !== KOS_SOP_CLASS) {
    iss.error('GW_KOS_NOT_KOS', '(0008,0016)', sopClassUid ? `SOP Class ${sopClassUid.slice(0, 64)} is not Key Object Selection Document` : 'no SOP Class UID: not a DICOM object');
    return { kind: 'not-kos', issues: iss.list };
  }
  if (p.meta) {
    const msc = str(p.meta, 0x00020002);
    if (msc && msc !== sopClassUid) iss.warn('GW_KOS_META_MISMATCH', '(0002,0002)', 'Media Storage SOP Class UID differs from SOP Class UID');
  }
  const title = ctx.code(seq(ds, T.conceptName)[0], () => '(0040,A043)[0]');
  const { kind } = classifyTitle(title);

  // Evidence (Current Requested Procedure Evidence Sequence, Hierarchical SOP Instance Reference macro).
  const evidence: StudyReference[] = [];
  const bySeries = new Map<string, Series>();
  const bySop = new Map<string, Instance>();
  const sopToSeries = new Map<string, Series>();
  let refCount = 0;
  const evItems = seq(ds, T.evidenceSeq);
  for (let i = 0; i < evItems.length; i++) {
    const ev = evItems[i]!;
    const sr: StudyReference = { studyInstanceUid: str(ev, T.studyUid) ?? '', series: [] };
    put(sr, 'displayUri', displayUriOf(ctx, ev));
    const ser = seq(ev, T.refSeriesSeq);
    for (let j = 0; j < ser.length; j++) {
      const sd = ser[j]!;
      const s: Series = { uid: str(sd, T.seriesUid) ?? '', instances: [] };
      put(s, 'retrieveUrl', retrieveUrl(str(sd, T.retrieveUrl)));
      put(s, 'retrieveLocationUid', str(sd, T.retrieveLocationUid));
      put(s, 'retrieveAeTitle', str(sd, T.retrieveAe));
      const sops = seq(sd, T.refSopSeq);
      refCount += sops.length;
      if (refCount > maxRefs) {
        iss.error('GW_KOS_TOO_MANY_REFERENCES', `(0040,A375)[${i}]>(0008,1115)[${j}]>(0008,1199)`, `more than ${maxRefs} referenced instances`);
        return { kind, issues: iss.list };
      }
      for (const sop of sops) {
        const inst: Instance = { sopClassUid: str(sop, T.refSopClass) ?? '', sopInstanceUid: str(sop, T.refSopInstance) ?? '' };
        const fr = str(sop, T.refFrames);
        if (fr) {
          const nums = fr.split('\\').map((x) => intOf(x)).filter((x): x is number => x !== undefined);
          if (nums.length) inst.referencedFrameNumbers = nums;
        }
        s.instances.push(inst);
        if (!bySop.has(inst.sopInstanceUid)) { bySop.set(inst.sopInstanceUid, inst); sopToSeries.set(inst.sopInstanceUid, s); }
      }
      sr.series.push(s);
      if (!bySeries.has(s.uid)) bySeries.set(s.uid, s);
    }
    evidence.push(sr);
  }

  const study: Manifest['study'] = { studyInstanceUid: str(ds, T.studyUid) ?? '', requests: [], procedureCodes: [], modalities: [], anatomicalRegions: [] };
  // Display URI at top level (CP-2595 General Study placement, digest Q8) applies to the manifest's study.
  const topUri = displayUriOf(ctx, ds);
  if (topUri) {
    const target = evidence.find((e) => e.studyInstanceUid === study.studyInstanceUid) ?? evidence[0];
    if (target && !target.displayUri) target.displayUri = topUri;
  }

  // SR content tree (TID 2010 + TID 1600).
  const doc: Manifest['document'] = { sopInstanceUid: str(ds, T.sopInstance) ?? '', sopClassUid, title: title ?? { value: '', scheme: '' } };
  const flat = new Set<string>();
  let libraryFound = false;
  let rootItems = items(ctx, ds, undefined);
  // Seen in the IG 101 binary: the whole TID 2010 tree wrapped in one more CONTAINER carrying the
  // document title again. Descend into it (lenient, digest Q12).
  if (rootItems.length === 1 && rootItems[0]!.vt === 'CONTAINER' && !rootItems[0]!.concept) {
    const wrapped = rootItems[0]!;
    const wt = ctx.code(seq(wrapped.ds, T.conceptName)[0], () => `${wrapped.path()}>(0040,A043)[0]`);
    if (wt && title && wt.value === title.value) {
      iss.warn('GW_KOS_NESTED_ROOT', wrapped.path(), 'TID 2010 content wrapped in a second root CONTAINER; read from inside it');
      rootItems = items(ctx, wrapped.ds, wrapped);
    }
  }
  for (const it of rootItems) {
    if (REF_VT.has(it.vt)) {
      const ref = seq(it.ds, T.refSopSeq)[0];
      const sop = ref ? str(ref, T.refSopInstance) : undefined;
      if (sop) flat.add(sop);
      continue;
    }
    if (it.concept === 'keyObjectDescription' && it.vt === 'TEXT') { if (doc.description === undefined) put(doc, 'description', ctx.text(it.ds, T.textValue)); continue; }
    if (it.concept === 'procedureCode' && it.vt === 'CODE') { const c = conceptCode(ctx, it); if (c) study.procedureCodes.push(c); continue; }
    if (it.concept === 'imageLibrary' && it.vt === 'CONTAINER') {
      libraryFound = true;
      for (const li of items(ctx, it.ds, it)) {
        if (li.concept === 'modality') { const c = conceptCode(ctx, li); if (c && !study.modalities.includes(c.value)) study.modalities.push(c.value); }
        else if (li.concept === 'targetRegion' && li.vt === 'CODE') { const c = conceptCode(ctx, li); if (c) study.anatomicalRegions.push(c); }
        else if (li.concept === 'numberOfStudySeries') {
          study.numberOfSeries = intOf(textOrNum(ctx, li));
          if (study.numberOfSeries === undefined) { delete study.numberOfSeries; iss.warn('GW_KOS_BAD_COUNT', li.path(), 'Number of Study Related Series is not an integer'); }
        } else if (li.concept === 'imageLibraryGroup' && li.vt === 'CONTAINER') {
          applyGroup(ctx, readGroup(ctx, li), bySeries, bySop, sopToSeries);
        }
      }
    }
  }
  if (ctx.underscoreRels) iss.warn('GW_KOS_REL_UNDERSCORE', '(0040,A730)', `${ctx.underscoreRels} Relationship Type value(s) written with "_" (e.g. HAS_ACQ_CONTEXT); read as spaces (digest Q12)`);
  if (kind === 'manifest' && !libraryFound) iss.warn('GW_KOS_NO_IMAGE_LIBRARY', '(0040,A730)', 'no Image Library (TID 1600) container; series descriptors absent (SUPPL §6.X.2.9 requires it)');
  if (bySop.size && flat.size) {
    let missing = 0;
    for (const sop of bySop.keys()) if (!flat.has(sop)) missing++;
    if (missing) iss.warn('GW_KOS_FLAT_LIST_INCOMPLETE', '(0040,A730)', `${missing} evidence instance(s) missing from the TID 2010 flat IMAGE/COMPOSITE list`);
  } else if (bySop.size && !flat.size) {
    iss.warn('GW_KOS_FLAT_LIST_INCOMPLETE', '(0040,A730)', 'no IMAGE/COMPOSITE content items at the root (TID 2010 rows 8–10)');
  }

  // Document, patient, study attributes.
  put(doc, 'seriesInstanceUid', str(ds, T.seriesUid));
  put(doc, 'seriesNumber', intOf(str(ds, T.seriesNumber)));
  put(doc, 'instanceNumber', intOf(str(ds, T.instanceNumber)));
  put(doc, 'contentDate', str(ds, T.contentDate));
  put(doc, 'contentTime', str(ds, T.contentTime));
  put(doc, 'timezoneOffset', str(ds, T.tz));
  put(doc, 'manufacturer', ctx.text(ds, T.manufacturer));
  const inst = ctx.text(ds, T.institution);
  put(doc, 'institutionName', inst);
  if (inst && inst.includes('^')) put(doc, 'institutionId', nonEmpty(inst.split('^')[9]));
  put(doc, 'specificCharacterSet', csRaw);
  const sorted: Manifest['document'] = {} as Manifest['document'];
  for (const k of ['sopInstanceUid', 'sopClassUid', 'seriesInstanceUid', 'seriesNumber', 'instanceNumber', 'title', 'description', 'contentDate',
    'contentTime', 'timezoneOffset', 'manufacturer', 'institutionName', 'institutionId', 'specificCharacterSet'] as const) {
    if (doc[k] !== undefined) (sorted as unknown as Record<string, unknown>)[k] = doc[k];
  }

  const patient: Manifest['patient'] = { otherIds: [] };
  put(patient, 'id', patientIdentifier(ctx, ds));
  for (const o of seq(ds, T.otherIdsSeq)) { const id = patientIdentifier(ctx, o); if (id) patient.otherIds.push(id); }
  put(patient, 'name', ctx.pn(ds, T.patientName));
  put(patient, 'birthDate', str(ds, T.birthDate));
  put(patient, 'sex', str(ds, T.sex));

  put(study, 'date', str(ds, T.studyDate));
  put(study, 'time', str(ds, T.studyTime));
  put(study, 'description', ctx.text(ds, T.studyDescription));
  put(study, 'studyId', ctx.text(ds, T.studyId));
  put(study, 'referringPhysicianName', ctx.pn(ds, T.referring));
  const acc = ctx.text(ds, T.accession);
  if (acc) { study.accession = { value: acc }; put(study.accession, 'issuer', hl7Issuer(ctx, seq(ds, T.accessionIssuerSeq)[0])); }
  const rq = seq(ds, T.refRequestSeq);
  for (let i = 0; i < rq.length; i++) {
    const r = rq[i]!;
    const req: RequestedProcedure = { requestedProcedureCodes: [] };
    put(req, 'studyInstanceUid', str(r, T.studyUid));
    const a = ctx.text(r, T.accession);
    if (a) { req.accession = { value: a }; put(req.accession, 'issuer', hl7Issuer(ctx, seq(r, T.accessionIssuerSeq)[0])); }
    put(req, 'placerOrderNumber', ctx.text(r, T.placer));
    put(req, 'placerIssuer', hl7Issuer(ctx, seq(r, T.placerIdSeq)[0]));
    put(req, 'fillerOrderNumber', ctx.text(r, T.filler));
    put(req, 'fillerIssuer', hl7Issuer(ctx, seq(r, T.fillerIdSeq)[0]));
    if (r.items(T.reqProcId)) iss.warn('GW_KOS_ODD_VR', `(0040,A370)[${i}]>(0040,1001)`, 'Requested Procedure ID encoded as a sequence; ignored');
    else put(req, 'requestedProcedureId', ctx.text(r, T.reqProcId));
    put(req, 'requestedProcedureDescription', ctx.text(r, T.reqProcDescription));
    const codes = seq(r, T.reqProcCodeSeq);
    for (let k = 0; k < codes.length; k++) { const c = ctx.code(codes[k], () => `(0040,A370)[${i}]>(0032,1064)[${k}]`); if (c) req.requestedProcedureCodes.push(c); }
    study.requests.push(req);
  }

  const manifest: Manifest = { document: sorted, patient, study, evidence };
  const all = iss.list.concat(validateManifestModel(manifest));
  return { kind, manifest, issues: all };
}

function applyGroup(ctx: Ctx, g: Group, bySeries: Map<string, Series>, bySop: Map<string, Instance>, sopToSeries: Map<string, Series>): void {
  let s = g.uid !== undefined ? bySeries.get(g.uid) : undefined;
  if (!s && g.firstSop) s = sopToSeries.get(g.firstSop);
  if (!s) {
    ctx.issues.warn('GW_KOS_LIBRARY_SERIES_NOT_IN_EVIDENCE', g.item.path(), 'Image Library Group describes a series that is not in the evidence sequence; ignored');
    return;
  }
  put(s, 'modality', g.modality); put(s, 'number', g.number); put(s, 'description', g.description); put(s, 'date', g.date);
  put(s, 'time', g.time); put(s, 'bodySite', g.bodySite); put(s, 'laterality', g.laterality); put(s, 'numberOfInstances', g.numberOfInstances);
  let stray = 0;
  for (const [sop, d] of g.instances) {
    const inst = bySop.get(sop);
    if (!inst) { stray++; continue; }
    put(inst, 'number', d.number); put(inst, 'numberOfFrames', d.numberOfFrames);
    put(inst, 'koDocumentTitle', d.koDocumentTitle); put(inst, 'koDescription', d.koDescription);
  }
  if (stray) ctx.issues.warn('GW_KOS_LIBRARY_INSTANCE_NOT_IN_EVIDENCE', g.item.path(), `${stray} Image Library entr(y/ies) not in the evidence sequence`);
}

export function readDicomIdentity(bytes: Uint8Array, opts: ReadKosOptions = {}): { identity?: DicomIdentity; issues: ValidationIssue[] } {
  try {
    const p = parseDicom(bytes, { maxInflatedBytes: opts.maxInflatedBytes ?? DEFAULT_MAX_INFLATED, stopAfterTag: T.seriesUid, encapsulatedAsExplicitLE: true });
    const id: DicomIdentity = {};
    put(id, 'sopClassUid', str(p.ds, T.sopClass) ?? (p.meta ? str(p.meta, 0x00020002) : undefined));
    put(id, 'sopInstanceUid', str(p.ds, T.sopInstance) ?? (p.meta ? str(p.meta, 0x00020003) : undefined));
    put(id, 'studyInstanceUid', str(p.ds, T.studyUid));
    put(id, 'seriesInstanceUid', str(p.ds, T.seriesUid));
    put(id, 'transferSyntaxUid', p.transferSyntaxUid);
    const issues: ValidationIssue[] = [];
    if (!id.sopClassUid) issues.push({ severity: 'error', code: 'GW_KOS_NOT_KOS', path: '(0008,0016)', message: 'no SOP Class UID: not a DICOM object' });
    return { identity: id, issues };
  } catch (e) {
    if (e instanceof ParseError) return { issues: [{ severity: 'error', code: e.code, path: e.path, message: e.message }] };
    return { issues: [{ severity: 'error', code: 'GW_KOS_UNREADABLE', path: '', message: 'unreadable DICOM input' }] };
  }
}

export { tagStr };
