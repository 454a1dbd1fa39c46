/**
 * Manifest model → MADO KOS, PS3.10 file, Explicit VR Little Endian, ISO_IR 192 or, for CJK person names, the ISO 2022 / GB18030 set they were given in (PS3.5 Annexes H, I, K).
 * TID 2010 root + TID 1600 Image Library with the final DCM descriptor codes (131561–131565,
 * decisions.md D7), instance descriptors as children (D11), NUM counts with UCUM units (D10), Display URI
 * at (0040,E012) in the evidence item (decisions.md D8).
 *
 * Encoded here rather than through dcmjs: values longer than the VR maximum must be rejected, never
 * truncated or logged (decisions.md D47); our own encoder checks every value and never mutates
 * the model. Sequences use defined lengths (back-patched).
 */
import type { Code, Instance, Issuer, Manifest, PatientIdentifier, PersonName, RequestedProcedure, Series, ValidationIssue } from '../model/manifest.js';
import { C, classifyTitle, KOS_SOP_CLASS_UID, TITLE_MANIFEST_WITH_DESCRIPTION } from './codes.js';
import { encodeText, preferredCharset, type TextCharset } from './charset.js';
import { isValidUid, kosSeriesUid } from './uid.js';
import { validateManifestModel } from './validate.js';

export interface WriteKosOptions { title?: Code }

export class KosWriteError extends Error {
  constructor(readonly issues: ValidationIssue[]) {
    super(`cannot write KOS: ${issues.filter((i) => i.severity === 'error').map((i) => `${i.code} at ${i.path || '(root)'}`).slice(0, 5).join('; ')}`);
    this.name = 'KosWriteError';
  }
}

export const IMPLEMENTATION_CLASS_UID = '2.25.200918873906215470771361620331357061459';
export const IMPLEMENTATION_VERSION_NAME = 'MADO_GW_0_1';

// ---- element model -------------------------------------------------------------------------
type V = string | number | Elem[][] | Buffer;
type Elem = [tag: number, vr: string, value: V];

/** PS3.5 Table 6.2-1 maximum lengths (characters; UI/AE/CS/DA/TM/DS/IS are ASCII so bytes = chars). */
const MAXLEN: Record<string, number> = { AE: 16, AS: 4, CS: 16, DA: 8, DS: 16, IS: 12, LO: 64, LT: 10240, PN: 64, SH: 16, ST: 1024, TM: 14, UI: 64 };
const TEXT_VR = new Set(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);
const LONG_VR = new Set(['OB', 'SQ', 'UC', 'UN', 'UR', 'UT']);
const PRINTABLE = /^[\x20-\x7e]*$/;
/** More than `max` characters (code points)? The UTF-16 length is an upper bound, so count only when needed. */
function tooLong(s: string, max: number): boolean {
  if (s.length <= max) return false;
  let n = 0;
  for (const _ of s) if (++n > max) return true;
  return false;
}

class Out {
  buf = Buffer.allocUnsafe(1 << 16);
  pos = 0;
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }
  // byte stores rather than writeUInt16LE/writeUInt32LE (whose argument checks cost more than the write)
  u16(v: number): void { this.ensure(2); const b = this.buf, p = this.pos; b[p] = v & 0xff; b[p + 1] = (v >>> 8) & 0xff; this.pos = p + 2; }
  u32(v: number): void {
    this.ensure(4);
    const b = this.buf, p = this.pos;
    b[p] = v & 0xff; b[p + 1] = (v >>> 8) & 0xff; b[p + 2] = (v >>> 16) & 0xff; b[p + 3] = (v >>> 24) & 0xff;
    this.pos = p + 4;
  }
  tag(t: number): void {
    this.ensure(4);
    const b = this.buf, p = this.pos;
    b[p] = (t >>> 16) & 0xff; b[p + 1] = (t >>> 24) & 0xff; b[p + 2] = t & 0xff; b[p + 3] = (t >>> 8) & 0xff;
    this.pos = p + 4;
  }
  /** VR and "DICM": ASCII, one byte per character */
  ascii(s: string): void { this.ensure(s.length); const b = this.buf; for (let k = 0; k < s.length; k++) b[this.pos++] = s.charCodeAt(k) & 0xff; }
  patch32(at: number, v: number): void { const b = this.buf; b[at] = v & 0xff; b[at + 1] = (v >>> 8) & 0xff; b[at + 2] = (v >>> 16) & 0xff; b[at + 3] = (v >>> 24) & 0xff; }
  bytes(b: Buffer): void { this.ensure(b.length); b.copy(this.buf, this.pos); this.pos += b.length; }
}

class Enc {
  readonly issues: ValidationIssue[] = [];
  /** [sequence tag, item index] of the items being written; turned into a path only on error. */
  private readonly stack: Array<[number, number]> = [];
  private curTag = 0;
  constructor(readonly out: Out, private readonly cs: TextCharset = 'ISO_IR 192') {}

  private bad(_path: string, code: string, msg: string): void {
    const path = this.stack.map(([t, i]) => `${tagPath(t)}[${i}]>`).join('') + tagPath(this.curTag);
    if (this.issues.length < 200) this.issues.push({ severity: 'error', code, path, message: msg });
  }

  /** Write a string value (already checked) straight into the output, padded to even length
   * (UTF-8 for text VRs, else Latin-1); returns its byte length. */
  private value(vr: string, s: string): number {
    const o = this.out;
    const text = TEXT_VR.has(vr);
    let n: number;
    const b = text && this.cs !== 'ISO_IR 192' && !PRINTABLE.test(s) ? encodeText(s, this.cs, vr === 'PN') : undefined;
    if (b) { o.ensure(b.length + 1); b.copy(o.buf, o.pos); n = b.length; }
    else {
      o.ensure((text ? s.length * 3 : s.length) + 1); // UTF-8: at most 3 bytes per UTF-16 unit
      n = o.buf.write(s, o.pos, text ? 'utf8' : 'latin1');
    }
    if (n % 2) o.buf[o.pos + n++] = vr === 'UI' ? 0x00 : 0x20;
    return n;
  }

  private check(vr: string, s: string, path: string): void {
    if (!TEXT_VR.has(vr) && !PRINTABLE.test(s)) { this.bad(path, 'GW_KOS_WRITE_BAD_CHARS', `non-ASCII characters in a ${vr} value`); return; }
    if (vr === 'UR' || vr === 'UT' || vr === 'UC') return;
    const max = MAXLEN[vr];
    if (max === undefined) return;
    if (vr === 'PN') {
      for (const g of s.split('=')) if (tooLong(g, max)) this.bad(path, 'GW_KOS_WRITE_TOO_LONG', `PN component group longer than ${max} characters`);
      return;
    }
    const values = vr === 'LT' || vr === 'ST' || !s.includes('\\') ? [s] : s.split('\\');
    for (const v of values) {
      if (tooLong(v, max)) this.bad(path, 'GW_KOS_WRITE_TOO_LONG', `${vr} value longer than ${max} characters (would be truncated)`);
      if (vr === 'UI' && v !== '' && !isValidUid(v)) this.bad(path, 'GW_KOS_WRITE_BAD_UID', 'malformed UID');
      if (vr === 'DA' && v !== '' && !/^\d{8}$/.test(v)) this.bad(path, 'GW_KOS_WRITE_BAD_DA', 'date is not YYYYMMDD');
      if (vr === 'TM' && v !== '' && !/^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/.test(v)) this.bad(path, 'GW_KOS_WRITE_BAD_TM', 'time is not HHMMSS.FFFFFF');
      if (vr === 'CS' && !/^[A-Z0-9 _]*$/.test(v)) this.bad(path, 'GW_KOS_WRITE_BAD_CS', 'code string has characters outside A–Z 0–9 space _');
      if ((vr === 'IS') && v !== '' && !/^[+-]?\d+$/.test(v.trim())) this.bad(path, 'GW_KOS_WRITE_BAD_IS', 'integer string is not an integer');
    }
  }

  dataset(els: Elem[], path: string): void {
    // most item datasets are built in tag order already; sort (stable) only the others
    for (let i = 1; i < els.length; i++) if (els[i - 1]![0] > els[i]![0]) { els.sort((a, b) => a[0] - b[0]); break; }
    for (const [tag, vr, v] of els) this.element(tag, vr, v, path);
  }

  element(tag: number, vr: string, v: V, path: string): void {
    const o = this.out;
    o.tag(tag);
    o.ascii(vr);
    if (vr === 'SQ') {
      o.u16(0);
      const lenAt = o.pos; o.u32(0);
      const items = v as Elem[][];
      for (let i = 0; i < items.length; i++) {
        o.tag(0xfffee000);
        const itemLenAt = o.pos; o.u32(0);
        this.stack.push([tag, i]);
        this.dataset(items[i]!, path);
        this.stack.pop();
        o.patch32(itemLenAt, o.pos - itemLenAt - 4);
      }
      o.patch32(lenAt, o.pos - lenAt - 4);
      return;
    }
    if (Buffer.isBuffer(v)) {
      let b: Buffer = v;
      if (LONG_VR.has(vr)) { o.u16(0); o.u32(b.length); }
      else {
        if (b.length > 0xffff) { this.curTag = tag; this.bad(path, 'GW_KOS_WRITE_TOO_LONG', 'value exceeds 65534 bytes'); b = Buffer.alloc(0); }
        o.u16(b.length);
      }
      o.bytes(b);
      return;
    }
    const s = typeof v === 'number' ? String(v) : (v as string);
    this.curTag = tag;
    this.check(vr, s, path);
    // length field first (patched below), then the value written in place
    const long = LONG_VR.has(vr);
    if (long) o.u16(0);
    const lenAt = o.pos;
    if (long) o.u32(0); else o.u16(0);
    let n = this.value(vr, s);
    if (!long && n > 0xffff) { this.curTag = tag; this.bad(path, 'GW_KOS_WRITE_TOO_LONG', 'value exceeds 65534 bytes'); n = 0; }
    const b = o.buf;
    if (long) { b[lenAt] = n & 0xff; b[lenAt + 1] = (n >>> 8) & 0xff; b[lenAt + 2] = (n >>> 16) & 0xff; b[lenAt + 3] = (n >>> 24) & 0xff; }
    else { b[lenAt] = n & 0xff; b[lenAt + 1] = (n >>> 8) & 0xff; }
    o.pos += n;
  }
}

function tagPath(tag: number): string {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

// ---- content helpers ------------------------------------------------------------------------
function codeItem(c: Code): Elem[] {
  const e: Elem[] = [];
  if (c.value.length > 16) e.push([0x00080119, 'UC', c.value]); // Long Code Value (PS3.3 8.8)
  else e.push([0x00080100, 'SH', c.value]);
  e.push([0x00080102, 'SH', c.scheme]);
  if (c.schemeVersion !== undefined) e.push([0x00080103, 'SH', c.schemeVersion]);
  e.push([0x00080104, 'LO', c.meaning ?? c.value]);
  return e;
}
const codeSeq = (tag: number, c: Code): Elem => [tag, 'SQ', [codeItem(c)]];

function ci(rel: string | undefined, vt: string, name: Code, rest: Elem[]): Elem[] {
  const e: Elem[] = [];
  if (rel) e.push([0x0040a010, 'CS', rel]);
  e.push([0x0040a040, 'CS', vt], codeSeq(0x0040a043, name), ...rest);
  return e;
}
const ACQ = 'HAS ACQ CONTEXT';
const textItem = (rel: string, name: Code, t: string): Elem[] => ci(rel, 'TEXT', name, [[0x0040a160, 'UT', t]]);
const codeCi = (rel: string, name: Code, v: Code): Elem[] => ci(rel, 'CODE', name, [codeSeq(0x0040a168, v)]);
const numItem = (rel: string, name: Code, n: number, unit: Code): Elem[] =>
  ci(rel, 'NUM', name, [[0x0040a300, 'SQ', [[codeSeq(0x004008ea, unit), [0x0040a30a, 'DS', String(n)]]]]]);

/** Value type of a referenced instance (PS3.3 C.17.3.2.1): WAVEFORM for waveform classes, COMPOSITE for
 * non-image classes (SR, KOS, presentation states, encapsulated documents, raw/registration, RT non-image). */
export function valueTypeFor(sopClassUid: string): 'IMAGE' | 'COMPOSITE' | 'WAVEFORM' {
  const s = sopClassUid;
  if (s.startsWith('1.2.840.10008.5.1.4.1.1.9.')) return 'WAVEFORM';
  const P = '1.2.840.10008.5.1.4.1.1.';
  if (s.startsWith(P)) {
    const rest = s.slice(P.length);
    const major = rest.split('.')[0];
    if (major === '88' || major === '11' || major === '104' || major === '68' || major === '90' || major === '91') return 'COMPOSITE';
    if (major === '66' && rest !== '66.4') return 'COMPOSITE';
    if (major === '481' && rest !== '481.1') return 'COMPOSITE';
    return 'IMAGE';
  }
  return 'COMPOSITE';
}

function refSop(inst: Instance): Elem[] {
  const e: Elem[] = [[0x00081150, 'UI', inst.sopClassUid], [0x00081155, 'UI', inst.sopInstanceUid]];
  if (inst.referencedFrameNumbers?.length) e.push([0x00081160, 'IS', inst.referencedFrameNumbers.join('\\')]);
  return e;
}

function issuerHl7(i: Issuer | undefined): Elem[] | undefined {
  if (!i) return undefined;
  const e: Elem[] = [];
  if (i.localNamespace !== undefined) e.push([0x00400031, 'UT', i.localNamespace]);
  if (i.universalEntityId !== undefined) e.push([0x00400032, 'UT', i.universalEntityId]);
  if (i.universalEntityIdType !== undefined) e.push([0x00400033, 'CS', i.universalEntityIdType]);
  return e;
}

function patientIdElems(id: PatientIdentifier): Elem[] {
  const e: Elem[] = [[0x00100020, 'LO', id.value]];
  if (id.issuer?.localNamespace !== undefined) e.push([0x00100021, 'LO', id.issuer.localNamespace]);
  if (id.typeOfPatientId !== undefined) e.push([0x00100022, 'CS', id.typeOfPatientId]);
  if (id.issuer && (id.issuer.universalEntityId !== undefined || id.issuer.universalEntityIdType !== undefined)) {
    const q: Elem[] = [];
    if (id.issuer.universalEntityId !== undefined) q.push([0x00400032, 'UT', id.issuer.universalEntityId]);
    if (id.issuer.universalEntityIdType !== undefined) q.push([0x00400033, 'CS', id.issuer.universalEntityIdType]);
    e.push([0x00100024, 'SQ', [q]]);
  }
  return e;
}

function pn(n: PersonName | undefined): string {
  if (!n) return '';
  return [n.alphabetic ?? '', n.ideographic ?? '', n.phonetic ?? ''].join('=').replace(/=+$/, '');
}

function requestItem(r: RequestedProcedure): Elem[] {
  const e: Elem[] = [
    [0x00080050, 'SH', r.accession?.value ?? ''],
    [0x00081110, 'SQ', []], // Referenced Study Sequence, Type 2 in the Referenced Request macro

    [0x00321060, 'LO', r.requestedProcedureDescription ?? ''],
    [0x00321064, 'SQ', r.requestedProcedureCodes.map(codeItem)],
    [0x00401001, 'SH', r.requestedProcedureId ?? ''],
    [0x00402016, 'LO', r.placerOrderNumber ?? ''],
    [0x00402017, 'LO', r.fillerOrderNumber ?? ''],
  ];
  if (r.studyInstanceUid !== undefined) e.push([0x0020000d, 'UI', r.studyInstanceUid]);
  const ai = issuerHl7(r.accession?.issuer); if (ai) e.push([0x00080051, 'SQ', [ai]]);
  const pi = issuerHl7(r.placerIssuer); if (pi) e.push([0x00400026, 'SQ', [pi]]);
  const fi = issuerHl7(r.fillerIssuer); if (fi) e.push([0x00400027, 'SQ', [fi]]);
  return e;
}

function seriesGroup(s: Series): Elem[] {
  const c: Elem[][] = [];
  if (s.modality !== undefined) c.push(codeCi(ACQ, C.modality, { value: s.modality, scheme: 'DCM', meaning: s.modality }));
  if (s.date !== undefined) c.push(ci(ACQ, 'DATE', C.seriesDate, [[0x0040a121, 'DA', s.date]]));
  if (s.time !== undefined) c.push(ci(ACQ, 'TIME', C.seriesTime, [[0x0040a122, 'TM', s.time]]));
  if (s.description !== undefined) c.push(textItem(ACQ, C.seriesDescription, s.description));
  if (s.number !== undefined) c.push(textItem(ACQ, C.seriesNumber, String(s.number)));
  c.push(ci(ACQ, 'UIDREF', C.seriesInstanceUid, [[0x0040a124, 'UI', s.uid]]));
  if (s.bodySite) c.push(codeCi(ACQ, C.targetRegion, s.bodySite));
  if (s.laterality) c.push(codeCi(ACQ, C.laterality, s.laterality));
  c.push(numItem(ACQ, C.numberOfSeriesInstances, s.numberOfInstances ?? s.instances.length, C.unitInstances));
  for (const inst of s.instances) {
    const d: Elem[][] = [];
    if (inst.number !== undefined) d.push(textItem(ACQ, C.instanceNumber, String(inst.number)));
    if (inst.numberOfFrames !== undefined) d.push(numItem(ACQ, C.numberOfFrames, inst.numberOfFrames, C.unitFrames));
    if (inst.koDocumentTitle) d.push(codeCi(ACQ, C.documentTitle, inst.koDocumentTitle));
    if (inst.koDescription !== undefined) d.push(textItem(ACQ, C.keyObjectDescription, inst.koDescription));
    const e: Elem[] = [[0x0040a010, 'CS', 'CONTAINS'], [0x0040a040, 'CS', valueTypeFor(inst.sopClassUid)], [0x00081199, 'SQ', [refSop(inst)]]];
    if (d.length) e.push([0x0040a730, 'SQ', d]);
    c.push(e);
  }
  return ci('CONTAINS', 'CONTAINER', C.imageLibraryGroup, [[0x0040a050, 'CS', 'SEPARATE'], [0x0040a730, 'SQ', c]]);
}

/**
 * The canonical form the writer produces: read(write(m)) deep-equals normalizeForWrite(m).
 * Fills only what KOS makes mandatory and the model leaves optional (documented defaults).
 */
export function normalizeForWrite(m: Manifest, opts: WriteKosOptions = {}): Manifest {
  const n: Manifest = structuredClone(m);
  const d = n.document;
  d.sopClassUid = KOS_SOP_CLASS_UID;
  d.specificCharacterSet = kosCharset(n);
  d.title = opts.title ?? (classifyTitle(d.title).kind === 'manifest' && d.title.scheme ? d.title : TITLE_MANIFEST_WITH_DESCRIPTION);
  if (d.title.meaning === undefined) d.title.meaning = d.title.value;
  d.seriesInstanceUid ??= kosSeriesUid(d.sopInstanceUid);
  d.seriesNumber ??= 1;
  d.instanceNumber ??= 1;
  if (d.contentDate === undefined || d.contentTime === undefined) {
    const now = new Date().toISOString();
    d.contentDate ??= now.slice(0, 10).replace(/-/g, '');
    d.contentTime ??= now.slice(11, 19).replace(/:/g, '');
    d.timezoneOffset ??= '+0000';
  }
  const fixCode = (c: Code): void => { if (c.meaning === undefined) c.meaning = c.value; };
  n.study.procedureCodes.forEach(fixCode);
  n.study.anatomicalRegions.forEach(fixCode);
  n.study.requests.forEach((r) => r.requestedProcedureCodes.forEach(fixCode));
  if (n.patient.id && n.patient.otherIds.length === 0) n.patient.otherIds = [structuredClone(n.patient.id)];
  // Type of Patient ID is Type 1 inside Other Patient IDs Sequence items (PS3.3 C.7.1.1).
  for (const o of n.patient.otherIds) o.typeOfPatientId ??= 'TEXT';
  if (n.study.modalities.length === 0) {
    for (const e of n.evidence) for (const s of e.series) if (s.modality && !n.study.modalities.includes(s.modality)) n.study.modalities.push(s.modality);
  }
  n.study.numberOfSeries ??= n.evidence.reduce((a, e) => a + e.series.length, 0);
  for (const e of n.evidence) for (const s of e.series) {
    s.numberOfInstances ??= s.instances.length;
    if (s.bodySite) fixCode(s.bodySite);
    if (s.laterality) fixCode(s.laterality);
    for (const i of s.instances) if (i.koDocumentTitle) fixCode(i.koDocumentTitle);
  }
  return n;
}

/** Every string of v (a model) has a code in cs (ASCII always has). */
function encodable(v: unknown, cs: TextCharset): boolean {
  if (typeof v === 'string') return PRINTABLE.test(v) || encodeText(v, cs, true) !== undefined;
  if (Array.isArray(v)) return v.every((x) => encodable(x, cs));
  if (v && typeof v === 'object') return Object.values(v).every((x) => encodable(x, cs));
  return true;
}

/** Specific Character Set of the written KOS (charset.ts preferredCharset), ISO_IR 192 unless every text fits the preferred one. */
function kosCharset(n: Manifest): TextCharset {
  const names = [n.patient.name, n.study.referringPhysicianName].flatMap((p) => (p ? [p.alphabetic ?? '', p.ideographic ?? '', p.phonetic ?? ''] : []));
  const cs = preferredCharset(n.document.specificCharacterSet, names);
  if (cs === 'ISO_IR 192') return cs;
  const { evidence, ...rest } = n;
  // references are UIDs and codes; only their descriptions can be non-ASCII
  const texts = evidence.flatMap((e) => e.series.flatMap((s) => [s.description, ...s.instances.map((i) => i.koDescription)]));
  return encodable(rest, cs) && encodable(texts, cs) ? cs : 'ISO_IR 192';
}

export function writeKos(m: Manifest, opts: WriteKosOptions = {}): Uint8Array {
  const pre = validateManifestModel(m).filter((i) => i.severity === 'error' && i.code !== 'GW_KOS_TITLE_NOT_MANIFEST');
  if (pre.length) throw new KosWriteError(pre);
  if (opts.title && classifyTitle(opts.title).kind !== 'manifest') {
    throw new KosWriteError([{ severity: 'error', code: 'GW_KOS_TITLE_NOT_MANIFEST', path: '(0040,A043)', message: 'requested document title is not a manifest title' }]);
  }
  const n = normalizeForWrite(m, opts);
  return encodePart10(n.document, kosDataset(n));
}

/** Root content (TID 2010): concept modifiers, description, flat reference list, then TID 1600. */
function contentTree(n: Manifest): Elem[][] {
  const st = n.study;
  const content: Elem[][] = [];
  for (const c of st.procedureCodes) content.push(codeCi('HAS CONCEPT MOD', C.procedureCode, c));
  if (n.document.description !== undefined) content.push(textItem('CONTAINS', C.keyObjectDescription, n.document.description));
  for (const e of n.evidence) for (const s of e.series) for (const inst of s.instances) {
    content.push([[0x0040a010, 'CS', 'CONTAINS'], [0x0040a040, 'CS', valueTypeFor(inst.sopClassUid)], [0x00081199, 'SQ', [refSop(inst)]]]);
  }
  const lib: Elem[][] = [];
  for (const mod of st.modalities) lib.push(codeCi(ACQ, C.modality, { value: mod, scheme: 'DCM', meaning: mod }));
  for (const r of st.anatomicalRegions) lib.push(codeCi(ACQ, C.targetRegion, r));
  lib.push(numItem(ACQ, C.numberOfStudySeries, st.numberOfSeries!, C.unitSeries));
  for (const e of n.evidence) for (const s of e.series) lib.push(seriesGroup(s));
  content.push(ci('CONTAINS', 'CONTAINER', C.imageLibrary, [[0x0040a050, 'CS', 'SEPARATE'], [0x0040a730, 'SQ', lib]]));
  return content;
}

/** Current Requested Procedure Evidence Sequence (0040,A375) with the retrieve location of each series. */
function evidenceSequence(n: Manifest): Elem[][] {
  return n.evidence.map((e) => {
    const item: Elem[] = [[0x0020000d, 'UI', e.studyInstanceUid], [0x00081115, 'SQ', e.series.map((s) => {
      const si: Elem[] = [[0x0020000e, 'UI', s.uid], [0x00081199, 'SQ', s.instances.map(refSop)]];
      if (s.retrieveAeTitle !== undefined) si.push([0x00080054, 'AE', s.retrieveAeTitle]);
      if (s.retrieveUrl !== undefined) si.push([0x00081190, 'UR', s.retrieveUrl]);
      if (s.retrieveLocationUid !== undefined) si.push([0x0040e011, 'UI', s.retrieveLocationUid]);
      return si;
    })]];
    if (e.displayUri !== undefined) item.push([0x0040e012, 'UR', e.displayUri]);
    return item;
  });
}

/** The KOS data set (a flat table of attributes; optional ones appended when present). */
function kosDataset(n: Manifest): Elem[] {
  const d = n.document, p = n.patient, st = n.study;
  const ds: Elem[] = [
    [0x00080005, 'CS', d.specificCharacterSet!],
    [0x00080016, 'UI', KOS_SOP_CLASS_UID],
    [0x00080018, 'UI', d.sopInstanceUid],
    [0x00080020, 'DA', st.date ?? ''],
    [0x00080023, 'DA', d.contentDate!],
    [0x00080030, 'TM', st.time ?? ''],
    [0x00080033, 'TM', d.contentTime!],
    [0x00080050, 'SH', st.accession?.value ?? ''],
    [0x00080060, 'CS', 'KO'],
    [0x00080070, 'LO', d.manufacturer ?? ''],
    [0x00080090, 'PN', pn(st.referringPhysicianName)],
    [0x00081111, 'SQ', []],
    [0x00100010, 'PN', pn(p.name)],
    [0x00100030, 'DA', p.birthDate ?? ''],
    [0x00100040, 'CS', p.sex ?? ''],
    [0x0020000d, 'UI', st.studyInstanceUid],
    [0x0020000e, 'UI', d.seriesInstanceUid!],
    [0x00200010, 'SH', st.studyId ?? ''],
    [0x00200011, 'IS', String(d.seriesNumber)],
    [0x00200013, 'IS', String(d.instanceNumber)],
    [0x0040a040, 'CS', 'CONTAINER'],
    codeSeq(0x0040a043, d.title),
    [0x0040a050, 'CS', 'SEPARATE'],
    [0x0040a375, 'SQ', evidenceSequence(n)],
    [0x0040a504, 'SQ', [[[0x00080105, 'CS', 'DCMR'], [0x0040db00, 'CS', '2010']]]],
    [0x0040a730, 'SQ', contentTree(n)],
  ];
  // Referenced Request Sequence is Type 1C (PS3.3 C.17.6.2.1): written only when there are
  // requests, since an empty Type 1C sequence is invalid (MADO R+ is reported by validation).
  if (st.requests.length) ds.push([0x0040a370, 'SQ', st.requests.map(requestItem)]);
  const ai = issuerHl7(st.accession?.issuer); if (ai) ds.push([0x00080051, 'SQ', [ai]]);
  if (d.institutionName !== undefined) ds.push([0x00080080, 'LO', d.institutionName]);
  if (d.timezoneOffset !== undefined) ds.push([0x00080201, 'SH', d.timezoneOffset]);
  if (st.description !== undefined) ds.push([0x00081030, 'LO', st.description]);
  if (p.id) ds.push(...patientIdElems(p.id)); else ds.push([0x00100020, 'LO', '']);
  if (p.otherIds.length) ds.push([0x00101002, 'SQ', p.otherIds.map(patientIdElems)]);
  return ds;
}

/** PS3.10 file: preamble, DICM, file meta (group length back-patched), then the data set. */
function encodePart10(d: Manifest['document'], ds: Elem[]): Uint8Array {
  const out = new Out();
  out.ensure(132);
  out.buf.fill(0, 0, 128);
  out.pos = 128;
  out.ascii('DICM');
  const enc = new Enc(out, d.specificCharacterSet as TextCharset);
  const metaStart = out.pos;
  enc.element(0x00020000, 'UL', Buffer.alloc(4), '');
  const metaBody = out.pos;
  enc.element(0x00020001, 'OB', Buffer.from([0, 1]), '');
  enc.element(0x00020002, 'UI', KOS_SOP_CLASS_UID, '');
  enc.element(0x00020003, 'UI', d.sopInstanceUid, '');
  enc.element(0x00020010, 'UI', '1.2.840.10008.1.2.1', '');
  enc.element(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID, '');
  enc.element(0x00020013, 'SH', IMPLEMENTATION_VERSION_NAME, '');
  out.buf.writeUInt32LE(out.pos - metaBody, metaStart + 8);
  enc.dataset(ds, '');
  if (enc.issues.length) throw new KosWriteError(enc.issues);
  return new Uint8Array(out.buf.buffer, out.buf.byteOffset, out.pos);
}
