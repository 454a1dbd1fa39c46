/**
 * A bounded DICOM parser (PS3.10 file or bare PS3.5 dataset) producing a flat element index.
 *
 * Why not dcmjs for reading: hostile input must never crash, hang or allocate without bound
 * (decisions.md D46), dcmjs has no nesting/inflate limits, and ISO 2022 text must be decoded from raw
 * bytes anyway (charset.ts). Every length is checked against the end of its container before use;
 * nesting depth, inflated size and item counts are capped. Work is linear in the input size.
 *
 * Speed: the whole file is indexed into three Uint32Arrays (elements, datasets, item lists, see
 * DicomTree), reused from one parse to the next, and no JS object is created per element or per
 * sequence item: a 20,000-reference KOS (400 k elements, 140 k items) costs a few typed-array writes
 * per element and leaves nothing for the GC to trace. Values stay in the input buffer; the reader
 * decodes only what it maps.
 */
import { inflateRawSync } from 'node:zlib';

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
} as const;

const vrCode = (vr: string): number => (vr.charCodeAt(0) << 8) | vr.charCodeAt(1);
const VR_SQ = vrCode('SQ');
const VR_UN = vrCode('UN');

/** 1 for the VRs with a 2-byte reserved field and 32-bit length (PS3.5 Table 7.1-1), by VR code. */
const LONG_VR = new Uint8Array(0x10000);
for (const v of ['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']) LONG_VR[vrCode(v)] = 1;

const ITEM = 0xfffee000, ITEM_DELIM = 0xfffee00d, SEQ_DELIM = 0xfffee0dd;
const UNDEF = 0xffffffff;

/** Sequence tags we need from implicit VR data (no VR on the wire). Undefined-length elements
 * are sequences too; everything else is kept as raw bytes. */
const SQ_TAGS = new Set([
  0x00080051, 0x00081111, 0x00081115, 0x00081199, 0x00100024, 0x00101002, 0x00400026, 0x00400027, 0x00321064,
  0x0040a370, 0x0040a375, 0x0040a043, 0x0040a168, 0x0040a300, 0x004008ea, 0x0040a504, 0x0040a730, 0x00400260,
  0x0040a385, 0x00081200, 0x00400220,
]);

/** Marks a sequence in the VR slot of `e`; the low 31 bits hold the element number after the
 * sequence's nested content (its next sibling). */
const SQ_FLAG = 0x80000000;
/** dataset flags in `d` */
const SORTED = 1, LARGE = 2;
/** Datasets with more direct elements than this get a tag → element Map on first lookup. */
const LARGE_DATASET = 64;

/**
 * A parsed dataset tree. Datasets (the root and every sequence item) are numbered; `root` is the
 * top-level one. Layout, all Uint32, written in input order while parsing:
 * - `e`: 4 per element, [tag, value offset, value length, VR code]; a sequence has
 *   [tag, first index in `l`, item count, SQ_FLAG | next sibling] instead, and its items' elements
 *   follow it. Duplicates are kept: lookups return the first occurrence (first occurrence wins).
 * - `d`: 3 per dataset, [first element, end element, SORTED (tags strictly ascending) | LARGE].
 * - `l`: dataset numbers of sequence items, each sequence's items contiguous.
 */
export class DicomTree {
  /** trimmed value range set by range() */
  ra = 0; rb = 0;
  private maps?: Map<number, Map<number, number>>;
  constructor(readonly buf: Buffer, public e: Uint32Array, public d: Uint32Array, public l: Uint32Array, readonly root: number,
    private readonly scratch?: Scratch) {}

  /** Hand the index arrays back for the next parse. The tree must not be used afterwards. */
  release(): void {
    if (!this.scratch) return;
    const sc = this.scratch;
    sc.e = this.e; sc.d = this.d; sc.l = this.l;
    this.e = this.d = this.l = EMPTY;
    putScratch(sc);
  }

  /** element number of a tag in dataset ds, or -1 */
  idx(ds: number, tag: number): number {
    const d = this.d, e = this.e;
    let i = d[ds * 3]!;
    const end = d[ds * 3 + 1]!, flags = d[ds * 3 + 2]!;
    if (flags & LARGE) return this.bigIdx(ds, tag);
    if (flags & SORTED) {
      while (i < end) {
        const t = e[i * 4]!;
        if (t === tag) return i;
        if (t > tag) return -1;
        const v = e[i * 4 + 3]!;
        i = v >= SQ_FLAG ? v - SQ_FLAG : i + 1;
      }
      return -1;
    }
    while (i < end) {
      if (e[i * 4] === tag) return i;
      const v = e[i * 4 + 3]!;
      i = v >= SQ_FLAG ? v - SQ_FLAG : i + 1;
    }
    return -1;
  }
  /** large datasets (hostile input; real KOS datasets have < 64 elements): a Map, built once */
  private bigIdx(ds: number, tag: number): number {
    this.maps ??= new Map();
    let m = this.maps.get(ds);
    if (!m) {
      m = new Map();
      for (let i = this.d[ds * 3]!, end = this.d[ds * 3 + 1]!; i < end; i = this.next(i)) {
        const t = this.e[i * 4]!;
        if (!m.has(t)) m.set(t, i);
      }
      this.maps.set(ds, m);
    }
    return m.get(tag) ?? -1;
  }
  has(ds: number, tag: number): boolean { return this.idx(ds, tag) >= 0; }
  isSeq(el: number): boolean { return this.e[el * 4 + 3]! >= SQ_FLAG; }
  tagAt(el: number): number { return this.e[el * 4]!; }
  /** elements of a dataset: for (let el = first(ds); el < end(ds); el = next(el)) */
  first(ds: number): number { return this.d[ds * 3]!; }
  end(ds: number): number { return this.d[ds * 3 + 1]!; }
  next(el: number): number { const v = this.e[el * 4 + 3]!; return v >= SQ_FLAG ? v - SQ_FLAG : el + 1; }
  /** item count of a sequence tag (0 when absent or not a sequence) */
  nItems(ds: number, tag: number): number {
    const i = this.idx(ds, tag);
    return i < 0 || this.e[i * 4 + 3]! < SQ_FLAG ? 0 : this.e[i * 4 + 2]!;
  }
  /** dataset number of item k of a sequence tag, or -1 */
  item(ds: number, tag: number, k: number): number {
    const i = this.idx(ds, tag);
    if (i < 0 || this.e[i * 4 + 3]! < SQ_FLAG || k >= this.e[i * 4 + 2]!) return -1;
    return this.l[this.e[i * 4 + 1]! + k]!;
  }
  /** element number of a sequence tag, or -1 (absent or not a sequence) */
  seqIdx(ds: number, tag: number): number {
    const i = this.idx(ds, tag);
    return i >= 0 && this.e[i * 4 + 3]! >= SQ_FLAG ? i : -1;
  }
  /** dataset numbers of the items of a sequence tag (a new array; [] when absent) */
  itemList(ds: number, tag: number): number[] {
    const i = this.seqIdx(ds, tag);
    if (i < 0) return [];
    const start = this.e[i * 4 + 1]!, n = this.e[i * 4 + 2]!;
    return Array.from(this.l.subarray(start, start + n));
  }
  /** [start in `l`, count] of the items of element el (a sequence) */
  itemStart(el: number): number { return this.e[el * 4 + 1]!; }
  itemCount(el: number): number { return this.e[el * 4 + 2]!; }
  /** element number of a non-sequence tag, or -1 */
  valueIdx(ds: number, tag: number): number {
    const i = this.idx(ds, tag);
    return i < 0 || this.e[i * 4 + 3]! >= SQ_FLAG ? -1 : i;
  }
  valueOff(el: number): number { return this.e[el * 4 + 1]!; }
  valueLen(el: number): number { return this.e[el * 4 + 2]!; }
  /** Value range of a non-sequence tag with NUL/space padding stripped on both ends, in `ra`/`rb`
   * (the bytes str() decodes); false when the tag is absent or a sequence. */
  range(ds: number, tag: number): boolean {
    const i = this.valueIdx(ds, tag);
    if (i < 0) return false;
    const buf = this.buf, e = this.e;
    let a = e[i * 4 + 1]!, b = a + e[i * 4 + 2]!;
    while (b > a && (buf[b - 1] === 0x20 || buf[b - 1] === 0x00)) b--;
    while (a < b && (buf[a] === 0x20 || buf[a] === 0x00)) a++;
    this.ra = a; this.rb = b;
    return true;
  }
  /** ASCII-only VRs (UI, CS, DA, TM, DS, IS, AE, UR): value with NUL/space padding stripped on both ends */
  str(ds: number, tag: number): string | undefined {
    if (!this.range(ds, tag)) return undefined;
    const a = this.ra, b = this.rb;
    return a === b ? undefined : latin1(this.buf, a, b);
  }
  /** raw value bytes of a non-sequence tag */
  raw(ds: number, tag: number): Uint8Array | undefined {
    const i = this.valueIdx(ds, tag);
    if (i < 0) return undefined;
    const off = this.e[i * 4 + 1]!;
    return this.buf.subarray(off, off + this.e[i * 4 + 2]!);
  }
}

/**
 * Latin-1 decoding of buf[a, b) with a small intern table for short values: code values, VRs' CS
 * values, SOP Class UIDs and the like repeat on every reference, and returning the same string
 * object spares an allocation per repeat. The table is bounded (INTERN_SIZE slots, ≤ 32 bytes each).
 */
type Latin1 = { latin1Slice(start: number, end: number): string };
/** Buffer#latin1Slice: what buf.toString('latin1', a, b) calls after its argument checks (in range here). */
const slice = (buf: Buffer, a: number, b: number): string => (buf as unknown as Latin1).latin1Slice(a, b);
const INTERN_SIZE = 1024;
const INTERN_MAX = 32;
const internStr: string[] = new Array<string>(INTERN_SIZE).fill('');
/** the bytes of each interned string (INTERN_MAX per slot) and their length (0: slot empty) */
const internKey = new Uint8Array(INTERN_SIZE * INTERN_MAX);
const internLen = new Uint8Array(INTERN_SIZE);
export function latin1(buf: Buffer, a: number, b: number): string {
  const n = b - a;
  if (n > INTERN_MAX || n === 0) return slice(buf, a, b);
  let h = n;
  for (let i = a; i < b; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  h = (h ^ (h >>> 15)) & (INTERN_SIZE - 1);
  const o = h * INTERN_MAX;
  if (internLen[h] === n) {
    let k = 0;
    while (k < n && internKey[o + k] === buf[a + k]) k++;
    if (k === n) return internStr[h]!;
  }
  const v = slice(buf, a, b);
  internStr[h] = v;
  internLen[h] = n;
  for (let k = 0; k < n; k++) internKey[o + k] = buf[a + k]!;
  return v;
}

/** The parser's arrays. One set is kept between parses (parsing is synchronous and the reader
 * releases its tree when done), so a typical parse allocates and zero-fills nothing. */
interface Scratch { e: Uint32Array; d: Uint32Array; l: Uint32Array; is: Uint32Array }
const EMPTY = new Uint32Array(0);
/** Largest array kept for reuse (4 MiB: the element array of a ~13,000-reference KOS). */
const POOL_MAX = 1 << 20;
let pooled: Scratch | undefined;
/** Arrays for about `elements` elements and `items` sequence items. They still grow when needed, but
 * a grow inside the parse loop is a branch the JIT has not seen: V8 deoptimises the parser there and,
 * if that happens inside a long sequence (on-stack replacement), may leave it unoptimised for later
 * parses too (measured: 2.5× slower). So the estimate has head-room. */
function takeScratch(elements: number, items: number): Scratch {
  const sc = pooled ?? { e: EMPTY, d: EMPTY, l: EMPTY, is: EMPTY };
  pooled = undefined;
  if (sc.e.length < elements * 4) sc.e = new Uint32Array(elements * 4);
  if (sc.d.length < items * 3 + 3) sc.d = new Uint32Array(items * 3 + 3);
  if (sc.l.length < items) sc.l = new Uint32Array(items);
  if (sc.is.length < items) sc.is = new Uint32Array(items);
  return sc;
}
function putScratch(sc: Scratch): void {
  if (sc.e.length > POOL_MAX) sc.e = EMPTY;
  if (sc.d.length > POOL_MAX) sc.d = EMPTY;
  if (sc.l.length > POOL_MAX) sc.l = EMPTY;
  if (sc.is.length > POOL_MAX) sc.is = EMPTY;
  pooled = sc;
}

export interface ParseLimits { maxDepth: number; maxItems: number; stopAfterTag?: number }

export class ParseError extends Error {
  constructor(readonly code: string, message: string, readonly path: string) { super(message); }
}

export interface Parsed {
  /** file meta information (its own tree: the dataset may sit in an inflated buffer) */
  meta?: DicomTree;
  tree: DicomTree;
  transferSyntaxUid: string;
  /** true when the input had the 128-byte preamble + "DICM" */
  part10: boolean;
}

export function tagStr(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

function isVrChars(a: number, b: number): boolean { return a >= 0x41 && a <= 0x5a && b >= 0x41 && b <= 0x5a; }

function grow(a: Uint32Array, need: number): Uint32Array {
  let n = Math.max(a.length * 2, 64);
  while (n < need) n *= 2;
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

/**
 * Recursive-descent parser into the DicomTree arrays. Elements go to `e` as they are read; a
 * sequence's slot is completed (items, next sibling) when the sequence ends. Item numbers of open
 * sequences sit on the stack `is` until their sequence ends and they move to `l` in one block.
 */
class Parser {
  explicit = true;
  le = true;
  items = 0;
  /** set by parseDataset: SORTED | LARGE for the dataset just parsed */
  flags = 0;
  /** [sequence tag, item index] per open item, for error paths (open items ≤ maxDepth) */
  private readonly stTag: Uint32Array;
  private readonly stIdx: Uint32Array;
  private depthTop = 0;
  e: Uint32Array; eTop = 0;
  d: Uint32Array; dTop = 0;
  l: Uint32Array; lTop = 0;
  is: Uint32Array; isTop = 0;

  private readonly maxDepth: number;
  private readonly maxItems: number;
  /** (stopAfterTag) top-level tag after which parsing stops; above any tag when not set */
  private readonly stopAfter: number;

  /** `sc`: pooled arrays for the dataset; none for the few elements of the file meta group */
  constructor(readonly buf: Buffer, readonly lim: ParseLimits, readonly sc?: Scratch) {
    this.maxDepth = lim.maxDepth;
    this.maxItems = lim.maxItems;
    this.stopAfter = lim.stopAfterTag ?? 0x100000000;
    this.stTag = new Uint32Array(Math.min(lim.maxDepth, 1 << 16) + 1);
    this.stIdx = new Uint32Array(this.stTag.length);
    if (sc) {
      this.e = sc.e; this.d = sc.d; this.l = sc.l; this.is = sc.is;
    } else {
      this.e = new Uint32Array(16 * 4); this.d = new Uint32Array(3); this.l = this.is = EMPTY;
    }
  }

  private pathOf(tag?: number): string {
    const parts: string[] = [];
    for (let i = 0; i < this.depthTop; i++) parts.push(`${tagStr(this.stTag[i]!)}[${this.stIdx[i]}]`);
    if (tag !== undefined) parts.push(tagStr(tag));
    return parts.join('>');
  }
  fail(code: string, msg: string, tag?: number): never {
    throw new ParseError(code, msg, this.pathOf(tag));
  }

  private u16(p: number): number { const b = this.buf; return this.le ? b[p]! | (b[p + 1]! << 8) : (b[p]! << 8) | b[p + 1]!; }
  private u32(p: number): number {
    const b = this.buf;
    return this.le ? (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0
      : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  /** a new dataset starting at the next element; returns its number */
  openDataset(): number {
    if (this.dTop * 3 + 3 > this.d.length) this.d = grow(this.d, this.dTop * 3 + 3);
    const id = this.dTop++;
    this.d[id * 3] = this.eTop;
    return id;
  }
  closeDataset(id: number, flags: number): void {
    this.d[id * 3 + 1] = this.eTop;
    this.d[id * 3 + 2] = flags;
  }

  push(tag: number, off: number, len: number, vr: number): number {
    if (this.eTop * 4 + 4 > this.e.length) this.e = grow(this.e, this.eTop * 4 + 4);
    const e = this.e, k = this.eTop * 4;
    e[k] = tag; e[k + 1] = off; e[k + 2] = len; e[k + 3] = vr;
    return this.eTop++;
  }

  /** Parse the elements in [pos, end) into the open dataset. When the item had undefined length,
   * stop at the Item Delimitation Item and return the position after it. Sets `flags`. */
  parseDataset(pos: number, end: number, undefinedItem: boolean, depth: number): number {
    const buf = this.buf;
    // Limits are plain number fields read on every call: a property read or comparison that only
    // runs for the top-level dataset would lack type feedback when the JIT compiles this function
    // during a long first parse, and deoptimise it at the next parse.
    const sa = this.stopAfter;
    const stopAfter = depth === 0 ? sa : 0x100000000;
    let lastTag = -1;
    let sorted = true;
    let count = 0;
    while (pos < end) {
      if (end - pos < 8) this.fail('GW_KOS_TRUNCATED', `truncated element header at byte ${pos}`);
      const tag = ((this.u16(pos) << 16) | this.u16(pos + 2)) >>> 0;
      if (tag >= 0xfffee000) {
        if (tag === ITEM_DELIM) {
          if (!undefinedItem) this.fail('GW_KOS_STRAY_DELIMITER', 'item delimiter outside an undefined-length item', tag);
          this.flags = (sorted ? SORTED : 0) | (count > LARGE_DATASET ? LARGE : 0);
          return pos + 8;
        }
        if (tag === SEQ_DELIM || tag === ITEM) this.fail('GW_KOS_STRAY_DELIMITER', `unexpected ${tag === ITEM ? 'item' : 'sequence delimiter'} tag in a dataset`, tag);
      }
      if (tag > stopAfter) { pos = end; break; }
      let vr: number;
      let len: number;
      if (this.explicit) {
        const a = buf[pos + 4]!, b = buf[pos + 5]!;
        if (!isVrChars(a, b)) this.fail('GW_KOS_BAD_VR', `invalid VR bytes at byte ${pos + 4}`, tag);
        vr = (a << 8) | b;
        if (LONG_VR[vr] === 1) {
          if (end - pos < 12) this.fail('GW_KOS_TRUNCATED', `truncated element header at byte ${pos}`, tag);
          len = this.u32(pos + 8); pos += 12;
        } else { len = this.u16(pos + 6); pos += 8; }
      } else {
        len = this.u32(pos + 4); pos += 8;
        vr = SQ_TAGS.has(tag) || len === UNDEF ? VR_SQ : VR_UN;
      }
      // Out-of-order or duplicate tags are tolerated; lookups return the first occurrence.
      if (tag <= lastTag) sorted = false;
      lastTag = tag;
      count++;
      if (vr === VR_UN && len === UNDEF && this.explicit) {
        // PS3.5 §6.2.2: UN with undefined length is a sequence encoded in Implicit VR Little Endian.
        if (depth + 1 > this.maxDepth) this.fail('GW_KOS_NESTING_TOO_DEEP', `sequences nested deeper than ${this.lim.maxDepth}`, tag);
        const slot = this.push(tag, 0, 0, SQ_FLAG);
        const le = this.le;
        this.explicit = false; this.le = true;
        pos = this.parseSequence(tag, slot, pos, end, true, depth + 1);
        this.explicit = true; this.le = le;
        continue;
      }
      if (vr === VR_SQ || len === UNDEF) {
        if (len !== UNDEF && len > end - pos) this.fail('GW_KOS_LENGTH_PAST_END', `sequence length ${len} runs past the end of its container`, tag);
        if (depth + 1 > this.maxDepth) this.fail('GW_KOS_NESTING_TOO_DEEP', `sequences nested deeper than ${this.lim.maxDepth}`, tag);
        const slot = this.push(tag, 0, 0, SQ_FLAG);
        pos = this.parseSequence(tag, slot, pos, len === UNDEF ? end : pos + len, len === UNDEF, depth + 1);
        continue;
      }
      if (len > end - pos) this.fail('GW_KOS_LENGTH_PAST_END', `value length ${len} runs past the end of its container (${end - pos} bytes left)`, tag);
      this.push(tag, pos, len, vr);
      pos += len;
    }
    if (undefinedItem) this.fail('GW_KOS_TRUNCATED', 'missing item delimiter (input truncated)');
    this.flags = (sorted ? SORTED : 0) | (count > LARGE_DATASET ? LARGE : 0);
    return pos;
  }

  /** Parse the items of a sequence whose element is `slot`. */
  parseSequence(sqTag: number, slot: number, pos: number, end: number, undef: boolean, depth: number): number {
    const isBase = this.isTop;
    let n = 0;
    let closed = !undef;
    while (pos < end) {
      if (end - pos < 8) this.fail('GW_KOS_TRUNCATED', `truncated item header at byte ${pos}`, sqTag);
      const tag = ((this.u16(pos) << 16) | this.u16(pos + 2)) >>> 0;
      const len = this.u32(pos + 4);
      pos += 8;
      if (tag === SEQ_DELIM) {
        if (!undef) this.fail('GW_KOS_STRAY_DELIMITER', 'sequence delimiter inside a defined-length sequence', sqTag);
        closed = true;
        break;
      }
      if (tag !== ITEM) this.fail('GW_KOS_BAD_ITEM', `expected an item tag in sequence, found ${tagStr(tag)}`, sqTag);
      if (++this.items > this.maxItems) this.fail('GW_KOS_TOO_MANY_ITEMS', `more than ${this.lim.maxItems} sequence items`, sqTag);
      const dt = this.depthTop++;
      this.stTag[dt] = sqTag; this.stIdx[dt] = n;
      const id = this.openDataset();
      if (len === UNDEF) {
        pos = this.parseDataset(pos, end, true, depth);
      } else {
        if (len > end - pos) this.fail('GW_KOS_LENGTH_PAST_END', `item length ${len} runs past the end of its sequence`);
        pos = this.parseDataset(pos, pos + len, false, depth);
      }
      this.depthTop--;
      this.closeDataset(id, this.flags);
      if (this.isTop >= this.is.length) this.is = grow(this.is, this.isTop + 1);
      this.is[this.isTop++] = id;
      n++;
    }
    if (!closed) this.fail('GW_KOS_TRUNCATED', 'missing sequence delimiter (input truncated)', sqTag);
    // move this sequence's item numbers to `l`
    if (this.lTop + n > this.l.length) this.l = grow(this.l, this.lTop + n);
    const l = this.l, is = this.is, start = this.lTop;
    for (let k = 0; k < n; k++) l[start + k] = is[isBase + k]!;
    this.lTop += n;
    this.isTop = isBase;
    const e = this.e;
    e[slot * 4 + 1] = start;
    e[slot * 4 + 2] = n;
    e[slot * 4 + 3] = SQ_FLAG + this.eTop;
    return pos;
  }

  tree(root: number): DicomTree {
    const sc = this.sc;
    if (sc) sc.is = this.is;
    return new DicomTree(this.buf, this.e, this.d, this.l, root, sc);
  }
  /** after a failed parse: keep the arrays for the next one */
  recycle(): void {
    const sc = this.sc;
    if (!sc) return;
    sc.e = this.e; sc.d = this.d; sc.l = this.l; sc.is = this.is;
    putScratch(sc);
  }
}

function readMeta(buf: Buffer, start: number, lim: ParseLimits): { meta: DicomTree; end: number } {
  const p = new Parser(buf, lim);
  const root = p.openDataset();
  let pos = start;
  let lastTag = -1, sorted = true, count = 0;
  // Group 0002 is always explicit VR little endian (PS3.10 §7.1); read while the group is 0002.
  while (pos + 8 <= buf.length && buf.readUInt16LE(pos) === 0x0002) {
    const tag = ((buf.readUInt16LE(pos) << 16) | buf.readUInt16LE(pos + 2)) >>> 0;
    const a = buf[pos + 4]!, b = buf[pos + 5]!;
    if (!isVrChars(a, b)) p.fail('GW_KOS_BAD_VR', 'invalid VR in file meta information', tag);
    const vr = (a << 8) | b;
    let len: number, hdr: number;
    if (LONG_VR[vr] === 1) {
      if (pos + 12 > buf.length) p.fail('GW_KOS_TRUNCATED', 'truncated file meta information', tag);
      len = buf.readUInt32LE(pos + 8); hdr = 12;
    } else { len = buf.readUInt16LE(pos + 6); hdr = 8; }
    if (len === UNDEF || len > buf.length - pos - hdr) p.fail('GW_KOS_LENGTH_PAST_END', 'file meta element runs past the end of input', tag);
    if (tag <= lastTag) sorted = false;
    lastTag = tag;
    count++;
    // a meta element with VR SQ is kept as a plain value (never read as a sequence)
    p.push(tag, pos + hdr, len, vr);
    pos += hdr + len;
  }
  p.closeDataset(root, (sorted ? SORTED : 0) | (count > LARGE_DATASET ? LARGE : 0));
  return { meta: p.tree(root), end: pos };
}

export interface ParseOptions {
  maxInflatedBytes: number; maxDepth?: number; maxItems?: number; stopAfterTag?: number;
  /** Read datasets of other (encapsulated/compressed) transfer syntaxes as explicit VR LE, which they
   * are apart from Pixel Data (PS3.5 §A.4). Used by readDicomIdentity for STOW-RS of images. */
  encapsulatedAsExplicitLE?: boolean;
}

/** Parse a Part 10 file or a bare dataset. Throws ParseError only. */
export function parseDicom(input: Uint8Array, opts: ParseOptions): Parsed {
  const lim: ParseLimits = { maxDepth: opts.maxDepth ?? 64, maxItems: opts.maxItems ?? 2_000_000, stopAfterTag: opts.stopAfterTag };
  let buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const fail = (code: string, msg: string, tag?: number): never => { throw new ParseError(code, msg, tag === undefined ? '' : tagStr(tag)); };
  if (buf.length === 0) fail('GW_KOS_EMPTY', 'empty input');
  let part10 = false;
  let pos = 0;
  let meta: DicomTree | undefined;
  if (buf.length >= 132 && buf.toString('latin1', 128, 132) === 'DICM') { part10 = true; pos = 132; }
  else if (buf.length >= 4 && buf.toString('latin1', 0, 4) === 'DICM') { pos = 4; } // preamble stripped
  if (pos > 0 || (buf.length >= 8 && buf.readUInt16LE(0) === 0x0002 && isVrChars(buf[4]!, buf[5]!))) {
    const m = readMeta(buf, pos, lim);
    meta = m.meta; pos = m.end;
  }
  let ts = meta ? (meta.str(meta.root, 0x00020010) ?? '') : '';
  if (meta && !ts) fail('GW_KOS_NO_TRANSFER_SYNTAX', 'file meta information has no Transfer Syntax UID', 0x00020010);
  if (!meta) ts = sniffTransferSyntax(buf, pos);
  let explicit = true, le = true;
  switch (ts) {
    case TS.implicitLE: explicit = false; break;
    case TS.explicitLE: break;
    case TS.explicitBE: le = false; break;
    case TS.deflatedLE: {
      try {
        buf = inflateRawSync(buf.subarray(pos), { maxOutputLength: opts.maxInflatedBytes });
      } catch (e) {
        const tooBig = e instanceof RangeError || (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
        fail(tooBig ? 'GW_KOS_INFLATE_LIMIT' : 'GW_KOS_INFLATE_FAILED',
          tooBig ? `deflated dataset inflates beyond ${opts.maxInflatedBytes} bytes` : 'deflated dataset is not a valid raw deflate stream');
      }
      pos = 0;
      break;
    }
    default:
      if (opts.encapsulatedAsExplicitLE && /^1\.2\.840\.10008\.1\.2\.[1-9]/.test(ts)) break;
      fail('GW_KOS_UNSUPPORTED_TRANSFER_SYNTAX', `unsupported transfer syntax ${ts.slice(0, 64)} (encapsulated/compressed syntaxes are not used for KOS)`, 0x00020010);
  }
  if (pos >= buf.length) fail('GW_KOS_EMPTY', 'no dataset after the file meta information');
  // capacity: KOS average ~26 bytes per element and ~75 per sequence item (synthetic and fixtures);
  // an image read only up to stopAfterTag needs a few dozen elements whatever its pixel data size
  const small = opts.stopAfterTag !== undefined;
  const sc = takeScratch(small ? 256 : Math.max(64, Math.min(buf.length >> 4, 1 << 21)), small ? 64 : Math.max(64, Math.min(buf.length >> 5, 1 << 20)));
  const p = new Parser(buf, lim, sc);
  p.explicit = explicit; p.le = le;
  const root = p.openDataset();
  try {
    p.parseDataset(pos, buf.length, false, 0);
    p.closeDataset(root, p.flags);
  } catch (e) {
    p.recycle();
    throw e;
  }
  return { meta, tree: p.tree(root), transferSyntaxUid: ts, part10 };
}

/** Bare dataset: explicit VR if bytes 4–5 look like a VR; big endian if the group reads small in BE. */
function sniffTransferSyntax(buf: Buffer, pos: number): string {
  if (buf.length - pos < 8) return TS.implicitLE;
  const explicit = isVrChars(buf[pos + 4]!, buf[pos + 5]!);
  const gLE = buf.readUInt16LE(pos), gBE = buf.readUInt16BE(pos);
  if (explicit) return gBE < gLE && gBE !== 0 ? TS.explicitBE : TS.explicitLE;
  return TS.implicitLE;
}
