/**
 * KOS (PS3.3 A.35.4) → manifest model (src/model/manifest.ts), lenient on the real-world
 * sloppiness listed in the decisions.md (D6–D12, D19, D22), strict on what makes a manifest unusable.
 */
import type { Code, Instance, Issuer, KosKind, Manifest, PatientIdentifier, PersonName, RequestedProcedure, Series, StudyReference, ValidationIssue } from '../model/manifest.js';
import { makeCharset, type Charset } from './charset.js';
import { classifyTitle, conceptOf, KOS_SOP_CLASS_UID, type Concept } from './codes.js';
import { Issues } from './issues.js';
import { DicomTree, latin1, ParseError, parseDicom, tagStr, type Parsed } from './part10.js';
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

/** Datasets are numbers into the parsed DicomTree (-1: absent). */
type DS = number;

class Ctx {
  readonly issues = new Issues();
  underscoreRels = 0;
  constructor(readonly t: DicomTree, readonly cs: Charset) {}
  str(ds: DS, tag: number): string | undefined { return ds < 0 ? undefined : this.t.str(ds, tag); }
  /** first item of a sequence tag, or -1 */
  first(ds: DS, tag: number): DS { return ds < 0 ? -1 : this.t.item(ds, tag, 0); }
  text(ds: DS, tag: number, pn = false): string | undefined {
    const t = this.t;
    const i = t.valueIdx(ds, tag);
    if (i < 0) return undefined;
    const buf = t.buf;
    let a = t.valueOff(i), b = a + t.valueLen(i);
    if (a === b) return undefined;
    let ascii = true;
    for (let k = a; k < b; k++) { const c = buf[k]!; if (c >= 0x80 || c === 0x1b) { ascii = false; break; } }
    if (ascii) {
      // same as the regexes below on ASCII: trailing [\s\0]+ (TAB, LF, VT, FF, CR, space, NUL), then leading [ \0]+
      while (b > a) { const c = buf[b - 1]!; if (c === 0x20 || c === 0x00 || (c >= 0x09 && c <= 0x0d)) b--; else break; }
      while (a < b && (buf[a] === 0x20 || buf[a] === 0x00)) a++;
      return a === b ? undefined : latin1(buf, a, b);
    }
    const s = this.cs.decode(buf.subarray(a, b), pn);
    const r = s.replace(/[\s\0]+$/, '').replace(/^[ \0]+/, '');
    return r === '' ? undefined : r;
  }
  code(ds: DS, path: () => string): Code | undefined {
    if (ds < 0) return undefined;
    const t = this.t;
    const value = t.str(ds, T.codeValue) ?? this.text(ds, T.longCodeValue) ?? t.str(ds, T.urnCodeValue);
    if (value === undefined) {
      this.issues.warn('GW_KOS_CODE_NO_VALUE', path(), 'coded entry without Code Value; ignored');
      return undefined;
    }
    const c: Code = { value, scheme: t.str(ds, T.scheme) ?? '' };
    if (c.scheme === '') this.issues.warn('GW_KOS_CODE_NO_SCHEME', path(), `code "${value.slice(0, 16)}" has no Coding Scheme Designator (decisions.md D12)`);
    put(c, 'meaning', this.text(ds, T.meaning));
    put(c, 'schemeVersion', t.str(ds, T.schemeVersion));
    return c;
  }
  pn(ds: DS, tag: number): PersonName | undefined {
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

/** Leading integer of a DS/IS/TEXT value: "36", "36.0", '(50, UCUM, "instances")' → 50 (decisions.md D10). */
export function intOf(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const len = s.length;
  if (len > 0 && len <= 15) {
    // fast path, same result as the pattern below: plain digits (< 10^15, a safe integer)
    let v = 0, i = 0;
    for (; i < len; i++) { const c = s.charCodeAt(i) - 48; if (c < 0 || c > 9) break; v = v * 10 + c; }
    if (i === len) return v;
  }
  const m = /^\s*\(?\s*([+-]?\d+)(?:\.0*)?(?![\d.])/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

function issuerFrom(ctx: Ctx, local: string | undefined, q: DS): Issuer | undefined {
  const iss: Issuer = {};
  put(iss, 'localNamespace', local);
  if (q >= 0) {
    put(iss, 'universalEntityId', ctx.text(q, T.universalId));
    put(iss, 'universalEntityIdType', ctx.str(q, T.universalIdType));
  }
  return Object.keys(iss).length ? iss : undefined;
}
function hl7Issuer(ctx: Ctx, d: DS): Issuer | undefined {
  return d >= 0 ? issuerFrom(ctx, ctx.text(d, T.localNamespace), d) : undefined;
}

function patientIdentifier(ctx: Ctx, d: DS): PatientIdentifier | undefined {
  const value = ctx.text(d, T.patientId);
  if (value === undefined) return undefined;
  const id: PatientIdentifier = { value };
  put(id, 'issuer', issuerFrom(ctx, ctx.text(d, T.issuerOfPatientId), ctx.first(d, T.issuerQualifiersSeq)));
  put(id, 'typeOfPatientId', ctx.str(d, T.typeOfPatientId));
  return id;
}

function retrieveUrl(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const t = s.trim().replace(/\/+$/, ''); // trailing "/" normalised (SUPPL TID 2010/1600, MADO_KOS_A.dcm)
  return t === '' ? undefined : t;
}

/** Display URI: (0040,E012) (IG mapping), else private (000D,xx01) under creator IHE_MADO_PRIVATE (SUPPL, decisions.md D8). */
function displayUriOf(ctx: Ctx, d: DS): string | undefined {
  const v = ctx.str(d, T.displayUri);
  if (v) return v.trim();
  const t = ctx.t;
  let seen: Uint8Array | undefined;
  for (let el = t.first(d), end = t.end(d); el < end; el = t.next(el)) {
    const tag = t.tagAt(el);
    if (tag >>> 16 !== 0x000d) continue;
    const elem = tag & 0xffff;
    if (elem < 0x10 || elem > 0xff) continue;
    // a repeated tag reads as its first occurrence, already tried
    seen ??= new Uint8Array(0x100);
    if (seen[elem]) continue;
    seen[elem] = 1;
    if (ctx.text(d, tag) === 'IHE_MADO_PRIVATE') {
      const p = ctx.str(d, ((0x000d << 16) | (elem << 8) | 0x01) >>> 0);
      if (p) return p.trim();
    }
  }
  return undefined;
}

/** Value Type (0040,A040) of a content item, upper-cased; the reader only tells these apart. */
const VT_OTHER = 0, VT_IMAGE = 1, VT_WAVEFORM = 3, VT_CONTAINER = 4, VT_CODE = 5, VT_TEXT = 6, VT_NUM = 7;
const VT_WORDS = ['', 'IMAGE', 'COMPOSITE', 'WAVEFORM', 'CONTAINER', 'CODE', 'TEXT', 'NUM'];
/** IMAGE, COMPOSITE, WAVEFORM: items that reference an instance */
const isRef = (vt: number): boolean => vt >= VT_IMAGE && vt <= VT_WAVEFORM;
/** Value Type of dataset ds, matched on the bytes ASCII-case-insensitively. The same as comparing
 * the Latin-1 string's toUpperCase(): the only Latin-1 letter that upper-cases into ASCII apart from
 * a–z is ß (→ "SS"), and no word here contains "SS". */
function valueTypeOf(t: DicomTree, ds: DS): number {
  if (!t.range(ds, T.valueType)) return VT_OTHER;
  const buf = t.buf, a = t.ra, n = t.rb - a;
  for (let v = 1; v < VT_WORDS.length; v++) {
    const w = VT_WORDS[v]!;
    if (w.length !== n) continue;
    let k = 0;
    for (; k < n; k++) {
      let c = buf[a + k]!;
      if (c >= 0x61 && c <= 0x7a) c -= 0x20;
      if (c !== w.charCodeAt(k)) break;
    }
    if (k === n) return v;
  }
  return VT_OTHER;
}

/**
 * A cursor over the content items (0040,A730) of one dataset: next() moves to the following item
 * and decodes its relationship, value type and concept name, so walking 20,000 IMAGE items costs
 * no object per item. The tag path is computed only when an issue needs it, from the parent
 * cursors, which stay on their item while a child is walked.
 */
class Item {
  /** VT_* */
  vt = VT_OTHER;
  concept: Concept | undefined = undefined;
  ds: DS = -1;
  index = -1;
  n = 0;
  private start = 0;
  constructor(private readonly ctx: Ctx, private parent: Item | undefined) {}
  /** position before the first content item of dataset parentDs, under cursor `parent` */
  open(parentDs: DS, parent: Item | undefined = this.parent): this {
    const t = this.ctx.t;
    const sq = t.seqIdx(parentDs, T.contentSeq);
    this.n = sq < 0 ? 0 : t.itemCount(sq);
    this.start = sq < 0 ? 0 : t.itemStart(sq);
    this.index = -1;
    this.parent = parent;
    return this;
  }
  next(): boolean {
    if (this.index + 1 >= this.n) return false;
    const i = ++this.index;
    const ctx = this.ctx, t = ctx.t;
    const ds = t.l[this.start + i]!;
    this.ds = ds;
    // Relationship Type is not mapped; only "_" for " " (HAS_ACQ_CONTEXT) is counted for a warning
    if (t.range(ds, T.relType)) {
      const buf = t.buf;
      for (let k = t.ra, b = t.rb; k < b; k++) if (buf[k] === 0x5f) { ctx.underscoreRels++; break; }
    }
    this.vt = valueTypeOf(t, ds);
    const nameDs = t.item(ds, T.conceptName, 0);
    this.concept = conceptOf(nameDs >= 0 ? (t.str(nameDs, T.codeValue) ?? t.str(nameDs, T.longCodeValue)) : undefined);
    return true;
  }
  path(): string { return `${this.parent ? this.parent.path() + '>' : ''}(0040,A730)[${this.index}]`; }
}

/** intOf of a NUM item's Numeric Value or a TEXT item's text (decisions.md D10) */
function numOf(ctx: Ctx, it: Item): number | undefined {
  if (it.vt === VT_NUM) {
    const mv = ctx.first(it.ds, T.measuredValueSeq);
    const t = ctx.t;
    if (mv < 0 || !t.range(mv, T.numericValue) || t.ra === t.rb) return undefined;
    const buf = t.buf, a = t.ra, b = t.rb;
    if (b - a <= 15) {
      // plain digits: intOf's fast path without the string
      let v = 0, k = a;
      for (; k < b; k++) { const c = buf[k]! - 48; if (c < 0 || c > 9) break; v = v * 10 + c; }
      if (k === b) return v;
    }
    return intOf(latin1(buf, a, b));
  }
  if (it.vt === VT_TEXT) return intOf(ctx.text(it.ds, T.textValue));
  return undefined;
}
function conceptCode(ctx: Ctx, it: Item): Code | undefined {
  return ctx.code(ctx.first(it.ds, T.conceptCode), () => `${it.path()}>(0040,A168)[0]`);
}

interface InstDesc { number?: number; numberOfFrames?: number; koDocumentTitle?: Code; koDescription?: string }

function instanceDescriptor(ctx: Ctx, it: Item, d: InstDesc): boolean {
  switch (it.concept) {
    case 'instanceNumber': { const n = numOf(ctx, it); if (n !== undefined) d.number = n; return true; }
    case 'numberOfFrames': { const n = numOf(ctx, it); if (n !== undefined) d.numberOfFrames = n; return true; }
    case 'documentTitle': { const c = conceptCode(ctx, it); if (c) d.koDocumentTitle = c; return true; }
    case 'keyObjectDescription': { const t = ctx.text(it.ds, T.textValue); if (t !== undefined) d.koDescription = t; return true; }
    default: return false;
  }
}

/** Probe budget of SopIndex before it falls back to a Map (hash flooding by crafted UIDs). */
const PROBE_SLACK = 16;
const HASH_SEED = (Math.random() * 0x100000000) >>> 0;

/**
 * Evidence SOP Instance UIDs keyed by their bytes in the input, so the flat list and the Image
 * Library look references up without decoding a string each (equal bytes ⇔ equal Latin-1 strings).
 * Entry e keeps the first Instance with that UID and its Series. Open addressing with a seeded hash;
 * if crafted input makes probing long, the index moves to a Map of decoded strings (linear time).
 */
class SopIndex {
  n = 0;
  readonly inst: Instance[] = [];
  readonly series: Series[] = [];
  private off: Uint32Array;
  private len: Uint32Array;
  /** entry + 1, 0 = empty */
  private slots: Int32Array;
  /** where lookup() stopped: the free slot for an absent key */
  private slot = 0;
  /** entry found last: lists usually follow the evidence order, so find() tries the next one first */
  private last = -1;
  private probes = 0;
  private ops = 0;
  private map?: Map<string, number>;
  private readonly dv: DataView;
  constructor(private readonly buf: Buffer, expected: number) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let size = 16;
    while (size < expected * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.off = new Uint32Array(Math.max(16, expected));
    this.len = new Uint32Array(Math.max(16, expected));
  }

  /** 4 bytes at a time through a DataView (a single load each once optimised), then the tail */
  private hash(a: number, b: number): number {
    const dv = this.dv, buf = this.buf;
    let h = HASH_SEED ^ (b - a);
    let i = a;
    for (; i + 4 <= b; i += 4) h = Math.imul(h ^ dv.getInt32(i, true), 0x01000193) ^ (h >>> 13);
    for (; i < b; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d); h ^= h >>> 12;
    return h;
  }
  private same(e: number, a: number, b: number): boolean {
    const n = b - a;
    if (this.len[e] !== n) return false;
    const dv = this.dv, buf = this.buf, o = this.off[e]!;
    let k = 0;
    for (; k + 4 <= n; k += 4) if (dv.getInt32(o + k, true) !== dv.getInt32(a + k, true)) return false;
    for (; k < n; k++) if (buf[o + k] !== buf[a + k]) return false;
    return true;
  }
  private budget(): number { return PROBE_SLACK * this.ops + 1024; }
  /** entry of buf[a, b) by hash, or -1 with `slot` set to the free slot (unless it switched to the Map) */
  private lookup(a: number, b: number): number {
    if (this.map) return this.map.get(latin1(this.buf, a, b)) ?? -1;
    const slots = this.slots, mask = slots.length - 1;
    let i = this.hash(a, b) & mask;
    this.ops++;
    for (;;) {
      const s = slots[i]!;
      if (s === 0) { this.slot = i; return -1; }
      if (this.same(s - 1, a, b)) return s - 1;
      i = (i + 1) & mask;
      if (++this.probes > this.budget()) { this.toMap(); return this.lookup(a, b); }
    }
  }
  /** entry of the UID in buf[a, b), or -1 */
  find(a: number, b: number): number {
    const g = this.last + 1;
    if (g < this.n && this.same(g, a, b)) { this.last = g; return g; }
    const e = this.lookup(a, b);
    if (e >= 0) this.last = e;
    return e;
  }
  /** add the UID in buf[a, b) unless present; false when it was present */
  add(a: number, b: number, inst: Instance, series: Series): boolean {
    if (this.lookup(a, b) >= 0) return false;
    const e = this.n++;
    if (e >= this.off.length) {
      const off = new Uint32Array(this.off.length * 2); off.set(this.off); this.off = off;
      const len = new Uint32Array(this.len.length * 2); len.set(this.len); this.len = len;
    }
    this.off[e] = a; this.len[e] = b - a;
    this.inst.push(inst); this.series.push(series);
    if (this.map) this.map.set(latin1(this.buf, a, b), e);
    else if (this.n * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    else this.slots[this.slot] = e + 1;
    return true;
  }
  /** false when probing ran over budget */
  private place(e: number): boolean {
    const slots = this.slots, mask = slots.length - 1;
    const a = this.off[e]!;
    let i = this.hash(a, a + this.len[e]!) & mask;
    this.ops++;
    while (slots[i] !== 0) {
      i = (i + 1) & mask;
      if (++this.probes > this.budget()) return false;
    }
    slots[i] = e + 1;
    return true;
  }
  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    for (let e = 0; e < this.n; e++) if (!this.place(e)) { this.toMap(); return; }
  }
  private toMap(): void {
    const m = new Map<string, number>();
    for (let e = 0; e < this.n; e++) { const a = this.off[e]!; m.set(latin1(this.buf, a, a + this.len[e]!), e); }
    this.map = m;
  }
}

interface Group {
  uid?: string; modality?: string; number?: number; description?: string; date?: string; time?: string;
  bodySite?: Code; laterality?: Code; numberOfInstances?: number; item: Item;
  /** evidence entries described by the group, first-mention order, with the last descriptors given */
  entries: number[]; descs: InstDesc[];
  /** distinct SOP Instance UIDs not in the evidence */
  strays?: Set<string>;
  /** entry of the first referenced SOP Instance UID: -1 not in the evidence, -2 none */
  first: number;
}

/** Per-evidence-entry marks for Image Library groups (which group last described an entry, and where). */
class GroupMarks {
  gid = 0;
  readonly stamp: Int32Array;
  readonly pos: Int32Array;
  constructor(n: number) { this.stamp = new Int32Array(n); this.pos = new Int32Array(n); }
}

function readGroup(ctx: Ctx, g: Item, idx: SopIndex, marks: GroupMarks): Group {
  const grp: Group = { item: g, entries: [], descs: [], first: -2 };
  const gid = ++marks.gid;
  const t = ctx.t;
  let pending: InstDesc = {};
  const it = new Item(ctx, g).open(g.ds);
  const child = new Item(ctx, it);
  while (it.next()) {
    if (isRef(it.vt)) {
      const ref = ctx.first(it.ds, T.refSopSeq);
      const has = ref >= 0 && t.range(ref, T.refSopInstance) && t.rb > t.ra;
      const a = t.ra, b = t.rb;
      const d: InstDesc = pending;
      pending = {};
      child.open(it.ds);
      while (child.next()) instanceDescriptor(ctx, child, d);
      if (has) {
        const e = idx.find(a, b);
        if (e < 0) (grp.strays ??= new Set()).add(latin1(t.buf, a, b));
        else if (marks.stamp[e] === gid) grp.descs[marks.pos[e]!] = d;
        else { marks.stamp[e] = gid; marks.pos[e] = grp.entries.length; grp.entries.push(e); grp.descs.push(d); }
        if (grp.first === -2) grp.first = e;
      }
      continue;
    }
    // Instance descriptors written as preceding siblings apply to the next IMAGE (decisions.md D11).
    if (instanceDescriptor(ctx, it, pending)) continue;
    switch (it.concept) {
      case 'modality': grp.modality = conceptCode(ctx, it)?.value; break;
      case 'seriesDate': grp.date = ctx.str(it.ds, T.date) ?? ctx.text(it.ds, T.textValue); break;
      case 'seriesTime': grp.time = ctx.str(it.ds, T.time) ?? ctx.text(it.ds, T.textValue); break;
      case 'seriesDescription': grp.description = it.vt === VT_CODE ? conceptCode(ctx, it)?.meaning : ctx.text(it.ds, T.textValue); break;
      case 'seriesNumber': grp.number = numOf(ctx, it); break;
      case 'seriesInstanceUid': grp.uid = ctx.str(it.ds, T.uid) ?? ctx.text(it.ds, T.textValue); break;
      case 'targetRegion':
        if (it.vt === VT_CODE) grp.bodySite = conceptCode(ctx, it);
        else ctx.issues.info('GW_KOS_TEXT_TARGET_REGION', it.path(), 'series Target Region given as TEXT; not mapped to a code');
        break;
      case 'laterality': grp.laterality = conceptCode(ctx, it); break;
      case 'numberOfSeriesInstances': {
        grp.numberOfInstances = numOf(ctx, it);
        if (grp.numberOfInstances === undefined) ctx.issues.warn('GW_KOS_BAD_COUNT', it.path(), 'Number of Series Related Instances is not an integer');
        else if (it.vt === VT_TEXT) ctx.issues.warn('GW_KOS_COUNT_AS_TEXT', it.path(), 'Number of Series Related Instances encoded as TEXT, CP-2595 requires NUM (decisions.md D10)');
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
  try {
    return toModel(p, maxRefs);
  } finally {
    p.tree.release();
  }
}

/** What readEvidence hands on: the evidence and the indexes the content tree is matched against. */
interface EvidenceRead {
  evidence: StudyReference[];
  /** first Series with each Series Instance UID */
  bySeries: Map<string, Series>;
  idx: SopIndex;
  /** for validateManifestModel: which references are the first with their UID (exact size when ≤ maxRefs) */
  firstRef: Uint8Array;
}

function toModel(p: Parsed, maxRefs: number): KosReadResult {
  const t = p.tree;
  const ds = t.root;
  const csRaw = t.str(ds, T.charset);
  const ctx = new Ctx(t, makeCharset(csRaw));
  const iss = ctx.issues;
  if (ctx.cs.unknown.length) iss.warn('GW_KOS_CHARSET_UNKNOWN', '(0008,0005)', `unsupported Specific Character Set term(s): ${ctx.cs.unknown.join(', ').slice(0, 80)}; decoded as Latin-1`);
  const sopClassUid = kosSopClass(ctx, p);
  if (sopClassUid === undefined) return { kind: 'not-kos', issues: iss.list };
  const title = ctx.code(ctx.first(ds, T.conceptName), () => '(0040,A043)[0]');
  const { kind } = classifyTitle(title);
  const ev = readEvidence(ctx, ds, maxRefs);
  if (!ev) return { kind, issues: iss.list };
  const study: Manifest['study'] = { studyInstanceUid: ctx.str(ds, T.studyUid) ?? '', requests: [], procedureCodes: [], modalities: [], anatomicalRegions: [] };
  placeTopDisplayUri(ctx, ds, study.studyInstanceUid, ev.evidence);
  const doc: Manifest['document'] = { sopInstanceUid: ctx.str(ds, T.sopInstance) ?? '', sopClassUid, title: title ?? { value: '', scheme: '' } };
  readContentTree(ctx, ds, title, kind, ev, doc, study);
  const document = readDocumentAttributes(ctx, ds, doc, csRaw);
  const patient = readPatient(ctx, ds);
  readStudyAttributes(ctx, ds, study);
  study.requests = readRequests(ctx, ds);
  const manifest: Manifest = { document, patient, study, evidence: ev.evidence };
  const docInRefs = t.range(ds, T.sopInstance) && t.rb > t.ra && ev.idx.find(t.ra, t.rb) >= 0;
  const all = iss.list.concat(validateManifestModel(manifest, { firstRef: ev.firstRef, docInRefs }));
  return { kind, manifest, issues: all };
}

/** SOP Class UID when it is KOS (checked against the file meta), else undefined with the error recorded. */
function kosSopClass(ctx: Ctx, p: Parsed): string | undefined {
  const sopClassUid = ctx.str(ctx.t.root, T.sopClass);
  if (sopClassUid !== KOS_SOP_CLASS_UID) {
    ctx.issues.error('GW_KOS_NOT_KOS', '(0008,0016)', sopClassUid ? `SOP Class ${sopClassUid.slice(0, 64)} is not Key Object Selection Document` : 'no SOP Class UID: not a DICOM object');
    return undefined;
  }
  if (p.meta) {
    const msc = p.meta.str(p.meta.root, 0x00020002);
    if (msc && msc !== sopClassUid) ctx.issues.warn('GW_KOS_META_MISMATCH', '(0002,0002)', 'Media Storage SOP Class UID differs from SOP Class UID');
  }
  return sopClassUid;
}

/** Number of Referenced SOP Sequence items in the evidence, counted until it passes maxRefs. */
function countReferences(t: DicomTree, evEl: number, maxRefs: number): number {
  const l = t.l;
  const evCount = evEl < 0 ? 0 : t.itemCount(evEl);
  let expected = 0;
  for (let i = 0; i < evCount && expected <= maxRefs; i++) {
    const ev = l[t.itemStart(evEl) + i]!;
    const serEl = t.seqIdx(ev, T.refSeriesSeq);
    for (let j = 0, n = serEl < 0 ? 0 : t.itemCount(serEl); j < n; j++) expected += t.nItems(l[t.itemStart(serEl) + j]!, T.refSopSeq);
  }
  return expected;
}

/**
 * Current Requested Procedure Evidence Sequence (Hierarchical SOP Instance Reference macro, PS3.3
 * C.17.2.1): one StudyReference per item, any number of studies. undefined (error recorded) when
 * it references more than maxRefs instances.
 */
function readEvidence(ctx: Ctx, ds: DS, maxRefs: number): EvidenceRead | undefined {
  const t = ctx.t, l = t.l;
  const evEl = t.seqIdx(ds, T.evidenceSeq);
  const evCount = evEl < 0 ? 0 : t.itemCount(evEl);
  const expected = countReferences(t, evEl, maxRefs);
  const out: EvidenceRead = { evidence: [], bySeries: new Map(), idx: new SopIndex(t.buf, Math.min(expected, maxRefs)), firstRef: new Uint8Array(Math.min(expected, maxRefs)) };
  const count = { refs: 0, r: 0 };
  for (let i = 0; i < evCount; i++) {
    const ev = l[t.itemStart(evEl) + i]!;
    const sr: StudyReference = { studyInstanceUid: t.str(ev, T.studyUid) ?? '', series: [] };
    put(sr, 'displayUri', displayUriOf(ctx, ev));
    const serEl = t.seqIdx(ev, T.refSeriesSeq);
    const serCount = serEl < 0 ? 0 : t.itemCount(serEl);
    for (let j = 0; j < serCount; j++) {
      const s = readSeriesReference(ctx, l[t.itemStart(serEl) + j]!, out, count, maxRefs, `(0040,A375)[${i}]>(0008,1115)[${j}]>(0008,1199)`);
      if (!s) return undefined;
      sr.series.push(s);
      if (!out.bySeries.has(s.uid)) out.bySeries.set(s.uid, s);
    }
    out.evidence.push(sr);
  }
  return out;
}

/** One Referenced Series Sequence item with its retrieve attributes and Referenced SOP Sequence. */
function readSeriesReference(ctx: Ctx, sd: DS, out: EvidenceRead, count: { refs: number; r: number }, maxRefs: number, path: string): Series | undefined {
  const t = ctx.t, l = t.l;
  const s: Series = { uid: t.str(sd, T.seriesUid) ?? '', instances: [] };
  put(s, 'retrieveUrl', retrieveUrl(t.str(sd, T.retrieveUrl)));
  put(s, 'retrieveLocationUid', t.str(sd, T.retrieveLocationUid));
  put(s, 'retrieveAeTitle', t.str(sd, T.retrieveAe));
  const sopEl = t.seqIdx(sd, T.refSopSeq);
  const sopCount = sopEl < 0 ? 0 : t.itemCount(sopEl);
  count.refs += sopCount;
  if (count.refs > maxRefs) {
    ctx.issues.error('GW_KOS_TOO_MANY_REFERENCES', path, `more than ${maxRefs} referenced instances`);
    return undefined;
  }
  for (let k = 0, sopStart = sopEl < 0 ? 0 : t.itemStart(sopEl); k < sopCount; k++) {
    const sop = l[sopStart + k]!;
    const sopClass = t.str(sop, T.refSopClass) ?? '';
    let a = 0, b = 0;
    if (t.range(sop, T.refSopInstance)) { a = t.ra; b = t.rb; }
    const inst: Instance = { sopClassUid: sopClass, sopInstanceUid: a === b ? '' : latin1(t.buf, a, b) };
    const fr = t.str(sop, T.refFrames);
    if (fr) {
      const nums = fr.split('\\').map((x) => intOf(x)).filter((x): x is number => x !== undefined);
      if (nums.length) inst.referencedFrameNumbers = nums;
    }
    s.instances.push(inst);
    out.firstRef[count.r++] = out.idx.add(a, b, inst, s) ? 1 : 0;
  }
  return s;
}

/** Display URI at top level (CP-2595 General Study placement, decisions.md D8) applies to the manifest's study. */
function placeTopDisplayUri(ctx: Ctx, ds: DS, studyUid: string, evidence: StudyReference[]): void {
  const topUri = displayUriOf(ctx, ds);
  if (!topUri) return;
  const target = evidence.find((e) => e.studyInstanceUid === studyUid) ?? evidence[0];
  if (target && !target.displayUri) target.displayUri = topUri;
}

/**
 * Cursor on the root content items. Seen in the IG 101 binary: the whole TID 2010 tree wrapped in
 * one more CONTAINER carrying the document title again; descend into it (lenient, decisions.md D12).
 */
function rootItems(ctx: Ctx, ds: DS, title: Code | undefined): Item {
  const it = new Item(ctx, undefined).open(ds);
  if (it.n !== 1) return it;
  const rels = ctx.underscoreRels;
  it.next();
  const wrapped = it;
  if (wrapped.vt === VT_CONTAINER && !wrapped.concept) {
    const wt = ctx.code(ctx.first(wrapped.ds, T.conceptName), () => `${wrapped.path()}>(0040,A043)[0]`);
    if (wt && title && wt.value === title.value) {
      ctx.issues.warn('GW_KOS_NESTED_ROOT', wrapped.path(), 'TID 2010 content wrapped in a second root CONTAINER; read from inside it');
      return new Item(ctx, wrapped).open(wrapped.ds);
    }
  }
  ctx.underscoreRels = rels;
  return it.open(ds);
}

/** Which evidence entries the TID 2010 flat IMAGE/COMPOSITE list names (any: it names any UID). */
interface FlatList { inFlat: Uint8Array; any: boolean; hits: number }

/** SR content tree (TID 2010 + TID 1600): flat reference list, description, procedure codes, Image Library. */
function readContentTree(ctx: Ctx, ds: DS, title: Code | undefined, kind: KosKind, ev: EvidenceRead, doc: Manifest['document'], study: Manifest['study']): void {
  const t = ctx.t;
  const flat: FlatList = { inFlat: new Uint8Array(ev.idx.n), any: false, hits: 0 };
  let libraryFound = false;
  const lib = { marks: undefined as GroupMarks | undefined, li: undefined as Item | undefined };
  const it = rootItems(ctx, ds, title);
  while (it.next()) {
    if (isRef(it.vt)) {
      const ref = ctx.first(it.ds, T.refSopSeq);
      if (ref >= 0 && t.range(ref, T.refSopInstance) && t.rb > t.ra) {
        flat.any = true;
        const e = ev.idx.find(t.ra, t.rb);
        if (e >= 0 && flat.inFlat[e] === 0) { flat.inFlat[e] = 1; flat.hits++; }
      }
      continue;
    }
    if (it.concept === 'keyObjectDescription' && it.vt === VT_TEXT) { if (doc.description === undefined) put(doc, 'description', ctx.text(it.ds, T.textValue)); continue; }
    if (it.concept === 'procedureCode' && it.vt === VT_CODE) { const c = conceptCode(ctx, it); if (c) study.procedureCodes.push(c); continue; }
    if (it.concept === 'imageLibrary' && it.vt === VT_CONTAINER) {
      libraryFound = true;
      readImageLibrary(ctx, it, ev, study, lib);
    }
  }
  contentTreeWarnings(ctx, kind, libraryFound, ev.idx.n, flat);
}

/** TID 1600 Image Library: study-level descriptors and one Image Library Group per series. */
function readImageLibrary(ctx: Ctx, it: Item, ev: EvidenceRead, study: Manifest['study'], lib: { marks?: GroupMarks; li?: Item }): void {
  const li = (lib.li ??= new Item(ctx, it)).open(it.ds, it);
  while (li.next()) {
    if (li.concept === 'modality') { const c = conceptCode(ctx, li); if (c && !study.modalities.includes(c.value)) study.modalities.push(c.value); }
    else if (li.concept === 'targetRegion' && li.vt === VT_CODE) { const c = conceptCode(ctx, li); if (c) study.anatomicalRegions.push(c); }
    else if (li.concept === 'numberOfStudySeries') {
      study.numberOfSeries = numOf(ctx, li);
      if (study.numberOfSeries === undefined) { delete study.numberOfSeries; ctx.issues.warn('GW_KOS_BAD_COUNT', li.path(), 'Number of Study Related Series is not an integer'); }
    } else if (li.concept === 'imageLibraryGroup' && li.vt === VT_CONTAINER) {
      lib.marks ??= new GroupMarks(ev.idx.n);
      applyGroup(ctx, readGroup(ctx, li, ev.idx, lib.marks), ev.bySeries, ev.idx);
    }
  }
}

function contentTreeWarnings(ctx: Ctx, kind: KosKind, libraryFound: boolean, n: number, flat: FlatList): void {
  const iss = ctx.issues;
  if (ctx.underscoreRels) iss.warn('GW_KOS_REL_UNDERSCORE', '(0040,A730)', `${ctx.underscoreRels} Relationship Type value(s) written with "_" (e.g. HAS_ACQ_CONTEXT); read as spaces (decisions.md D12)`);
  if (kind === 'manifest' && !libraryFound) iss.warn('GW_KOS_NO_IMAGE_LIBRARY', '(0040,A730)', 'no Image Library (TID 1600) container; series descriptors absent (SUPPL §6.X.2.9 requires it)');
  if (n && flat.any) {
    const missing = n - flat.hits;
    if (missing) iss.warn('GW_KOS_FLAT_LIST_INCOMPLETE', '(0040,A730)', `${missing} evidence instance(s) missing from the TID 2010 flat IMAGE/COMPOSITE list`);
  } else if (n && !flat.any) {
    iss.warn('GW_KOS_FLAT_LIST_INCOMPLETE', '(0040,A730)', 'no IMAGE/COMPOSITE content items at the root (TID 2010 rows 8–10)');
  }
}

const DOCUMENT_KEYS = ['sopInstanceUid', 'sopClassUid', 'seriesInstanceUid', 'seriesNumber', 'instanceNumber', 'title', 'description', 'contentDate',
  'contentTime', 'timezoneOffset', 'manufacturer', 'institutionName', 'institutionId', 'specificCharacterSet'] as const;

/** SOP Common, SR Document General and General Equipment attributes; keys in model order. */
function readDocumentAttributes(ctx: Ctx, ds: DS, doc: Manifest['document'], csRaw: string | undefined): Manifest['document'] {
  const str = (tag: number): string | undefined => ctx.str(ds, tag);
  put(doc, 'seriesInstanceUid', str(T.seriesUid));
  put(doc, 'seriesNumber', intOf(str(T.seriesNumber)));
  put(doc, 'instanceNumber', intOf(str(T.instanceNumber)));
  put(doc, 'contentDate', str(T.contentDate));
  put(doc, 'contentTime', str(T.contentTime));
  put(doc, 'timezoneOffset', str(T.tz));
  put(doc, 'manufacturer', ctx.text(ds, T.manufacturer));
  const inst = ctx.text(ds, T.institution);
  put(doc, 'institutionName', inst);
  if (inst && inst.includes('^')) put(doc, 'institutionId', nonEmpty(inst.split('^')[9]));
  put(doc, 'specificCharacterSet', csRaw);
  const sorted: Manifest['document'] = {} as Manifest['document'];
  for (const k of DOCUMENT_KEYS) if (doc[k] !== undefined) (sorted as unknown as Record<string, unknown>)[k] = doc[k];
  return sorted;
}

function readPatient(ctx: Ctx, ds: DS): Manifest['patient'] {
  const patient: Manifest['patient'] = { otherIds: [] };
  put(patient, 'id', patientIdentifier(ctx, ds));
  for (const o of ctx.t.itemList(ds, T.otherIdsSeq)) { const id = patientIdentifier(ctx, o); if (id) patient.otherIds.push(id); }
  put(patient, 'name', ctx.pn(ds, T.patientName));
  put(patient, 'birthDate', ctx.str(ds, T.birthDate));
  put(patient, 'sex', ctx.str(ds, T.sex));
  return patient;
}

function readStudyAttributes(ctx: Ctx, ds: DS, study: Manifest['study']): void {
  put(study, 'date', ctx.str(ds, T.studyDate));
  put(study, 'time', ctx.str(ds, T.studyTime));
  put(study, 'description', ctx.text(ds, T.studyDescription));
  put(study, 'studyId', ctx.text(ds, T.studyId));
  put(study, 'referringPhysicianName', ctx.pn(ds, T.referring));
  const acc = ctx.text(ds, T.accession);
  if (acc) { study.accession = { value: acc }; put(study.accession, 'issuer', hl7Issuer(ctx, ctx.first(ds, T.accessionIssuerSeq))); }
}

/** Referenced Request Sequence (0040,A370) items (PS3.3 Table 10-8). */
function readRequests(ctx: Ctx, ds: DS): RequestedProcedure[] {
  const t = ctx.t;
  const rq = t.itemList(ds, T.refRequestSeq);
  const out: RequestedProcedure[] = [];
  for (let i = 0; i < rq.length; i++) {
    const r = rq[i]!;
    const req: RequestedProcedure = { requestedProcedureCodes: [] };
    put(req, 'studyInstanceUid', ctx.str(r, T.studyUid));
    const a = ctx.text(r, T.accession);
    if (a) { req.accession = { value: a }; put(req.accession, 'issuer', hl7Issuer(ctx, ctx.first(r, T.accessionIssuerSeq))); }
    put(req, 'placerOrderNumber', ctx.text(r, T.placer));
    put(req, 'placerIssuer', hl7Issuer(ctx, ctx.first(r, T.placerIdSeq)));
    put(req, 'fillerOrderNumber', ctx.text(r, T.filler));
    put(req, 'fillerIssuer', hl7Issuer(ctx, ctx.first(r, T.fillerIdSeq)));
    if (t.seqIdx(r, T.reqProcId) >= 0) ctx.issues.warn('GW_KOS_ODD_VR', `(0040,A370)[${i}]>(0040,1001)`, 'Requested Procedure ID encoded as a sequence; ignored');
    else put(req, 'requestedProcedureId', ctx.text(r, T.reqProcId));
    put(req, 'requestedProcedureDescription', ctx.text(r, T.reqProcDescription));
    const codes = t.itemList(r, T.reqProcCodeSeq);
    for (let k = 0; k < codes.length; k++) { const c = ctx.code(codes[k], () => `(0040,A370)[${i}]>(0032,1064)[${k}]`); if (c) req.requestedProcedureCodes.push(c); }
    out.push(req);
  }
  return out;
}

function applyGroup(ctx: Ctx, g: Group, bySeries: Map<string, Series>, idx: SopIndex): void {
  let s = g.uid !== undefined ? bySeries.get(g.uid) : undefined;
  if (!s && g.first >= 0) s = idx.series[g.first];
  if (!s) {
    ctx.issues.warn('GW_KOS_LIBRARY_SERIES_NOT_IN_EVIDENCE', g.item.path(), 'Image Library Group describes a series that is not in the evidence sequence; ignored');
    return;
  }
  put(s, 'modality', g.modality); put(s, 'number', g.number); put(s, 'description', g.description); put(s, 'date', g.date);
  put(s, 'time', g.time); put(s, 'bodySite', g.bodySite); put(s, 'laterality', g.laterality); put(s, 'numberOfInstances', g.numberOfInstances);
  const stray = g.strays?.size ?? 0;
  for (let k = 0; k < g.entries.length; k++) {
    const inst = idx.inst[g.entries[k]!]!, d = g.descs[k]!;
    put(inst, 'number', d.number); put(inst, 'numberOfFrames', d.numberOfFrames);
    put(inst, 'koDocumentTitle', d.koDocumentTitle); put(inst, 'koDescription', d.koDescription);
  }
  if (stray) ctx.issues.warn('GW_KOS_LIBRARY_INSTANCE_NOT_IN_EVIDENCE', g.item.path(), `${stray} Image Library entr(y/ies) not in the evidence sequence`);
}

export function readDicomIdentity(bytes: Uint8Array, opts: ReadKosOptions = {}): { identity?: DicomIdentity; issues: ValidationIssue[] } {
  try {
    const p = parseDicom(bytes, { maxInflatedBytes: opts.maxInflatedBytes ?? DEFAULT_MAX_INFLATED, stopAfterTag: T.seriesUid, encapsulatedAsExplicitLE: true });
    const id: DicomIdentity = {};
    const t = p.tree, m = p.meta;
    put(id, 'sopClassUid', t.str(t.root, T.sopClass) ?? (m ? m.str(m.root, 0x00020002) : undefined));
    put(id, 'sopInstanceUid', t.str(t.root, T.sopInstance) ?? (m ? m.str(m.root, 0x00020003) : undefined));
    put(id, 'studyInstanceUid', t.str(t.root, T.studyUid));
    put(id, 'seriesInstanceUid', t.str(t.root, T.seriesUid));
    t.release();
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
