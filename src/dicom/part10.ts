/**
 * A bounded DICOM parser (PS3.10 file or bare PS3.5 dataset) producing a lazy element tree.
 *
 * Why not dcmjs for reading: hostile input must never crash, hang or allocate without bound
 * (HELPERS.md), dcmjs has no nesting/inflate limits, and ISO 2022 text must be decoded from raw
 * bytes anyway (charset.ts). Every length is checked against the end of its container before use;
 * nesting depth, inflated size and item counts are capped. Work is linear in the input size.
 */
import { inflateRawSync } from 'node:zlib';

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
} as const;

/** One dataset, stored flat to keep allocation per item low (KOS files hold ~10 sequence items per
 * reference): `f` holds [tag, value offset, value length, VR code] quadruples, first occurrence wins;
 * sequence items sit in `sq` at the same quadruple index. Above 32 elements a tag → index Map keeps
 * hostile out-of-order input linear. */
export class DataSet {
  readonly f: number[] = [];
  private sq?: Array<DataSet[] | undefined>;
  private map?: Map<number, number>;
  constructor(readonly buf: Buffer) {}
  /** quadruple index of a tag, or -1 */
  idx(tag: number): number {
    if (this.map) return this.map.get(tag) ?? -1;
    const f = this.f;
    for (let i = 0; i < f.length; i += 4) if (f[i] === tag) return i;
    return -1;
  }
  has(tag: number): boolean { return this.idx(tag) >= 0; }
  add(tag: number, vr: number, off: number, len: number, items?: DataSet[]): void {
    if (this.idx(tag) >= 0) return;
    const i = this.f.length;
    this.f.push(tag, off, len, vr);
    if (items) (this.sq ??= [])[i >> 2] = items;
    if (this.map) this.map.set(tag, i);
    else if (i >= 32 * 4) {
      this.map = new Map();
      for (let k = 0; k < this.f.length; k += 4) this.map.set(this.f[k]!, k);
    }
  }
  /** sequence items of a tag (undefined when absent or not a sequence) */
  items(tag: number): DataSet[] | undefined {
    const i = this.idx(tag);
    return i < 0 || !this.sq ? undefined : this.sq[i >> 2];
  }
  isSeq(i: number): boolean { return !!this.sq && this.sq[i >> 2] !== undefined; }
  tags(): number[] { const t: number[] = []; for (let i = 0; i < this.f.length; i += 4) t.push(this.f[i]!); return t; }
}

const VR_CACHE: string[] = [];
function vrOf(a: number, b: number): string {
  const k = (a << 8) | b;
  return VR_CACHE[k] ?? (VR_CACHE[k] = String.fromCharCode(a, b));
}
const vrCode = (vr: string): number => (vr.charCodeAt(0) << 8) | vr.charCodeAt(1);
const VR_SQ = vrCode('SQ');

export interface ParseLimits { maxDepth: number; maxItems: number; stopAfterTag?: number }

export class ParseError extends Error {
  constructor(readonly code: string, message: string, readonly path: string) { super(message); }
}

export interface Parsed {
  meta?: DataSet;
  ds: DataSet;
  transferSyntaxUid: string;
  /** true when the input had the 128-byte preamble + "DICM" */
  part10: boolean;
}

const LONG_VR = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const ITEM = 0xfffee000, ITEM_DELIM = 0xfffee00d, SEQ_DELIM = 0xfffee0dd;
const UNDEF = 0xffffffff;

/** Sequence tags we need from implicit VR data (no VR on the wire). Undefined-length elements
 * are sequences too; everything else is kept as raw bytes. */
const SQ_TAGS = new Set([
  0x00080051, 0x00081111, 0x00081115, 0x00081199, 0x00100024, 0x00101002, 0x00400026, 0x00400027, 0x00321064,
  0x0040a370, 0x0040a375, 0x0040a043, 0x0040a168, 0x0040a300, 0x004008ea, 0x0040a504, 0x0040a730, 0x00400260,
  0x0040a385, 0x00081200, 0x00400220,
]);

export function tagStr(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

interface Ctx { buf: Buffer; explicit: boolean; le: boolean; lim: ParseLimits; items: number; stack: Array<[number, number]> }

function pathOf(ctx: Ctx, tag?: number): string {
  const parts = ctx.stack.map(([t, i]) => `${tagStr(t)}[${i}]`);
  if (tag !== undefined) parts.push(tagStr(tag));
  return parts.join('>');
}
function fail(ctx: Ctx, code: string, msg: string, tag?: number): never {
  throw new ParseError(code, msg, pathOf(ctx, tag));
}

function u16(ctx: Ctx, p: number): number { return ctx.le ? ctx.buf.readUInt16LE(p) : ctx.buf.readUInt16BE(p); }
function u32(ctx: Ctx, p: number): number { return ctx.le ? ctx.buf.readUInt32LE(p) : ctx.buf.readUInt32BE(p); }

function isVrChars(a: number, b: number): boolean { return a >= 0x41 && a <= 0x5a && b >= 0x41 && b <= 0x5a; }

/** Parse elements in [pos, end). When `inItem` and the length was undefined, stop at the Item
 * Delimitation Item and return the position after it. */
function parseDataset(ctx: Ctx, ds: DataSet, pos: number, end: number, undefinedItem: boolean, depth: number): number {
  const buf = ctx.buf;
  let lastTag = -1;
  while (pos < end) {
    if (end - pos < 8) fail(ctx, 'GW_KOS_TRUNCATED', `truncated element header at byte ${pos}`);
    const tag = ((u16(ctx, pos) << 16) | u16(ctx, pos + 2)) >>> 0;
    if (tag === ITEM_DELIM) {
      if (!undefinedItem) fail(ctx, 'GW_KOS_STRAY_DELIMITER', 'item delimiter outside an undefined-length item', tag);
      return pos + 8;
    }
    if (tag === SEQ_DELIM || tag === ITEM) fail(ctx, 'GW_KOS_STRAY_DELIMITER', `unexpected ${tag === ITEM ? 'item' : 'sequence delimiter'} tag in a dataset`, tag);
    if (depth === 0 && ctx.lim.stopAfterTag !== undefined && tag > ctx.lim.stopAfterTag) return end;
    let vr: string;
    let len: number;
    let hdr: number;
    if (ctx.explicit) {
      const a = buf[pos + 4]!, b = buf[pos + 5]!;
      if (!isVrChars(a, b)) fail(ctx, 'GW_KOS_BAD_VR', `invalid VR bytes at byte ${pos + 4}`, tag);
      vr = vrOf(a, b);
      if (LONG_VR.has(vr)) {
        if (end - pos < 12) fail(ctx, 'GW_KOS_TRUNCATED', `truncated element header at byte ${pos}`, tag);
        len = u32(ctx, pos + 8); hdr = 12;
      } else { len = u16(ctx, pos + 6); hdr = 8; }
    } else {
      len = u32(ctx, pos + 4); hdr = 8;
      vr = SQ_TAGS.has(tag) || len === UNDEF ? 'SQ' : 'UN';
    }
    pos += hdr;
    if (tag <= lastTag) {
      // Out-of-order or duplicate tags: keep the first occurrence; order violations are tolerated.
    }
    lastTag = tag;
    if (vr === 'UN' && len === UNDEF && ctx.explicit) {
      // PS3.5 §6.2.2: UN with undefined length is a sequence encoded in Implicit VR Little Endian.
      if (depth + 1 > ctx.lim.maxDepth) fail(ctx, 'GW_KOS_NESTING_TOO_DEEP', `sequences nested deeper than ${ctx.lim.maxDepth}`, tag);
      const items: DataSet[] = [];
      ds.add(tag, VR_SQ, pos, len, items);
      const inner: Ctx = { ...ctx, explicit: false, le: true };
      pos = parseSequence(inner, tag, items, pos, end, true, depth + 1);
      ctx.items = inner.items;
      continue;
    }
    if (vr === 'SQ' || len === UNDEF) {
      if (len !== UNDEF && len > end - pos) fail(ctx, 'GW_KOS_LENGTH_PAST_END', `sequence length ${len} runs past the end of its container`, tag);
      if (depth + 1 > ctx.lim.maxDepth) fail(ctx, 'GW_KOS_NESTING_TOO_DEEP', `sequences nested deeper than ${ctx.lim.maxDepth}`, tag);
      const items: DataSet[] = [];
      ds.add(tag, VR_SQ, pos, len, items);
      pos = parseSequence(ctx, tag, items, pos, len === UNDEF ? end : pos + len, len === UNDEF, depth + 1);
      continue;
    }
    if (len > end - pos) fail(ctx, 'GW_KOS_LENGTH_PAST_END', `value length ${len} runs past the end of its container (${end - pos} bytes left)`, tag);
    ds.add(tag, vrCode(vr), pos, len);
    pos += len;
  }
  if (undefinedItem) fail(ctx, 'GW_KOS_TRUNCATED', 'missing item delimiter (input truncated)');
  return pos;
}

function parseSequence(ctx: Ctx, sqTag: number, items: DataSet[], pos: number, end: number, undef: boolean, depth: number): number {
  while (pos < end) {
    if (end - pos < 8) fail(ctx, 'GW_KOS_TRUNCATED', `truncated item header at byte ${pos}`, sqTag);
    const tag = ((u16(ctx, pos) << 16) | u16(ctx, pos + 2)) >>> 0;
    const len = u32(ctx, pos + 4);
    pos += 8;
    if (tag === SEQ_DELIM) {
      if (!undef) fail(ctx, 'GW_KOS_STRAY_DELIMITER', 'sequence delimiter inside a defined-length sequence', sqTag);
      return pos;
    }
    if (tag !== ITEM) fail(ctx, 'GW_KOS_BAD_ITEM', `expected an item tag in sequence, found ${tagStr(tag)}`, sqTag);
    if (++ctx.items > ctx.lim.maxItems) fail(ctx, 'GW_KOS_TOO_MANY_ITEMS', `more than ${ctx.lim.maxItems} sequence items`, sqTag);
    const item = new DataSet(ctx.buf);
    ctx.stack.push([sqTag, items.length]);
    items.push(item);
    if (len === UNDEF) {
      pos = parseDataset(ctx, item, pos, end, true, depth);
    } else {
      if (len > end - pos) fail(ctx, 'GW_KOS_LENGTH_PAST_END', `item length ${len} runs past the end of its sequence`);
      pos = parseDataset(ctx, item, pos, pos + len, false, depth);
    }
    ctx.stack.pop();
  }
  if (undef) fail(ctx, 'GW_KOS_TRUNCATED', 'missing sequence delimiter (input truncated)', sqTag);
  return pos;
}

export function str(ds: DataSet, tag: number): string | undefined {
  const i = ds.idx(tag);
  if (i < 0 || ds.isSeq(i)) return undefined;
  const f = ds.f;
  // ASCII-only VRs (UI, CS, DA, TM, DS, IS, AE, UR): strip NUL/space padding on both ends.
  let a = f[i + 1]!, b = a + f[i + 2]!;
  const buf = ds.buf;
  while (b > a && (buf[b - 1] === 0x20 || buf[b - 1] === 0x00)) b--;
  while (a < b && (buf[a] === 0x20 || buf[a] === 0x00)) a++;
  return a === b ? undefined : buf.toString('latin1', a, b);
}

export function raw(ds: DataSet, tag: number): Uint8Array | undefined {
  const i = ds.idx(tag);
  if (i < 0 || ds.isSeq(i)) return undefined;
  const off = ds.f[i + 1]!;
  return ds.buf.subarray(off, off + ds.f[i + 2]!);
}

const NONE: DataSet[] = [];
export function seq(ds: DataSet, tag: number): DataSet[] {
  return ds.items(tag) ?? NONE;
}

function readMeta(buf: Buffer, start: number, lim: ParseLimits): { meta: DataSet; end: number } {
  const ctx: Ctx = { buf, explicit: true, le: true, lim, items: 0, stack: [] };
  const meta = new DataSet(buf);
  let pos = start;
  // Group 0002 is always explicit VR little endian (PS3.10 §7.1); read while the group is 0002.
  while (pos + 8 <= buf.length && buf.readUInt16LE(pos) === 0x0002) {
    const tag = ((buf.readUInt16LE(pos) << 16) | buf.readUInt16LE(pos + 2)) >>> 0;
    const a = buf[pos + 4]!, b = buf[pos + 5]!;
    if (!isVrChars(a, b)) fail(ctx, 'GW_KOS_BAD_VR', 'invalid VR in file meta information', tag);
    const vr = String.fromCharCode(a, b);
    let len: number, hdr: number;
    if (LONG_VR.has(vr)) {
      if (pos + 12 > buf.length) fail(ctx, 'GW_KOS_TRUNCATED', 'truncated file meta information', tag);
      len = buf.readUInt32LE(pos + 8); hdr = 12;
    } else { len = buf.readUInt16LE(pos + 6); hdr = 8; }
    if (len === UNDEF || len > buf.length - pos - hdr) fail(ctx, 'GW_KOS_LENGTH_PAST_END', 'file meta element runs past the end of input', tag);
    meta.add(tag, vrCode(vr), pos + hdr, len);
    pos += hdr + len;
  }
  return { meta, end: pos };
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
  const top: Ctx = { buf, explicit: true, le: true, lim, items: 0, stack: [] };
  if (buf.length === 0) fail(top, 'GW_KOS_EMPTY', 'empty input');
  let part10 = false;
  let pos = 0;
  let meta: DataSet | undefined;
  if (buf.length >= 132 && buf.toString('latin1', 128, 132) === 'DICM') { part10 = true; pos = 132; }
  else if (buf.length >= 4 && buf.toString('latin1', 0, 4) === 'DICM') { pos = 4; } // preamble stripped
  if (pos > 0 || (buf.length >= 8 && buf.readUInt16LE(0) === 0x0002 && isVrChars(buf[4]!, buf[5]!))) {
    const m = readMeta(buf, pos, lim);
    meta = m.meta; pos = m.end;
  }
  let ts = meta ? (str(meta, 0x00020010) ?? '') : '';
  if (meta && !ts) fail(top, 'GW_KOS_NO_TRANSFER_SYNTAX', 'file meta information has no Transfer Syntax UID', 0x00020010);
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
        fail(top, tooBig ? 'GW_KOS_INFLATE_LIMIT' : 'GW_KOS_INFLATE_FAILED',
          tooBig ? `deflated dataset inflates beyond ${opts.maxInflatedBytes} bytes` : 'deflated dataset is not a valid raw deflate stream');
      }
      pos = 0;
      break;
    }
    default:
      if (opts.encapsulatedAsExplicitLE && /^1\.2\.840\.10008\.1\.2\.[1-9]/.test(ts)) break;
      fail(top, 'GW_KOS_UNSUPPORTED_TRANSFER_SYNTAX', `unsupported transfer syntax ${ts.slice(0, 64)} (encapsulated/compressed syntaxes are not used for KOS)`, 0x00020010);
  }
  const ctx: Ctx = { buf, explicit, le, lim, items: 0, stack: [] };
  const ds = new DataSet(buf);
  if (pos >= buf.length) fail(ctx, 'GW_KOS_EMPTY', 'no dataset after the file meta information');
  parseDataset(ctx, ds, pos, buf.length, false, 0);
  return { meta, ds, transferSyntaxUid: ts, part10 };
}

/** Bare dataset: explicit VR if bytes 4–5 look like a VR; big endian if the group reads small in BE. */
function sniffTransferSyntax(buf: Buffer, pos: number): string {
  if (buf.length - pos < 8) return TS.implicitLE;
  const explicit = isVrChars(buf[pos + 4]!, buf[pos + 5]!);
  const gLE = buf.readUInt16LE(pos), gBE = buf.readUInt16BE(pos);
  if (explicit) return gBE < gLE && gBE !== 0 ? TS.explicitBE : TS.explicitLE;
  return TS.implicitLE;
}
