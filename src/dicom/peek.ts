/**
 * A tiny incremental DICOM header reader (no dcmjs): finds the SOP Instance UID (0008,0018) at the
 * start of a PS3.10 file, so the WADO-RS proxy can filter multipart parts while they stream
 * (SUPPL §X.1.1.3: a source may return only the instances published in the manifest).
 *
 * Call peekSopInstanceUid(prefix) with the bytes received so far; it answers 'need-more' until it
 * can decide. Handles Explicit VR LE, Implicit VR LE and Explicit VR BE (retired) datasets, with or
 * without the 128-byte preamble, and skips undefined-length sequences. For a deflated dataset
 * (1.2.840.10008.1.2.1.99) it falls back to Media Storage SOP Instance UID (0002,0003), which
 * PS3.10 §7.1 requires to equal (0008,0018).
 */

export type PeekResult =
  | { kind: 'found'; uid: string; source: '00080018' | '00020003' }
  | { kind: 'need-more' }
  | { kind: 'not-found' };

class NeedMore extends Error {}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);
const IMPLICIT = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 16;

interface Cursor {
  buf: Buffer;
  pos: number;
  implicit: boolean;
  le: boolean;
}

function need(c: Cursor, n: number): void {
  if (c.pos + n > c.buf.length) throw new NeedMore();
}

function u16(c: Cursor): number {
  need(c, 2);
  const v = c.le ? c.buf.readUInt16LE(c.pos) : c.buf.readUInt16BE(c.pos);
  c.pos += 2;
  return v;
}

function u32(c: Cursor): number {
  need(c, 4);
  const v = c.le ? c.buf.readUInt32LE(c.pos) : c.buf.readUInt32BE(c.pos);
  c.pos += 4;
  return v;
}

interface Element {
  group: number;
  element: number;
  vr: string | null;
  length: number;
  valueStart: number;
}

function readHeader(c: Cursor): Element {
  const group = u16(c);
  const element = u16(c);
  // Item / delimitation tags never carry a VR, whatever the transfer syntax
  if (group === 0xfffe) return { group, element, vr: null, length: u32(c), valueStart: c.pos };
  if (c.implicit) return { group, element, vr: null, length: u32(c), valueStart: c.pos };
  need(c, 2);
  const vr = c.buf.toString('latin1', c.pos, c.pos + 2);
  c.pos += 2;
  if (!/^[A-Z]{2}$/.test(vr)) throw new Error('bad VR');
  let length: number;
  if (LONG_VRS.has(vr)) {
    c.pos += 2;
    length = u32(c);
  } else {
    length = u16(c);
  }
  return { group, element, vr, length, valueStart: c.pos };
}

function skip(c: Cursor, n: number): void {
  need(c, n);
  c.pos += n;
}

/** Skip an undefined-length sequence (or encapsulated value) up to its delimitation item. */
function skipUndefined(c: Cursor, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error('nesting too deep');
  for (;;) {
    const item = readHeader(c);
    if (item.group !== 0xfffe) throw new Error('expected item');
    if (item.element === 0xe0dd) return; // Sequence Delimitation Item
    if (item.element !== 0xe000) throw new Error('unexpected delimiter');
    if (item.length !== UNDEFINED) {
      skip(c, item.length);
      continue;
    }
    // undefined-length item: elements until Item Delimitation (FFFE,E00D)
    for (;;) {
      const el = readHeader(c);
      if (el.group === 0xfffe && el.element === 0xe00d) break;
      if (el.length === UNDEFINED) skipUndefined(c, depth + 1);
      else skip(c, el.length);
    }
  }
}

function trimUid(buf: Buffer, start: number, length: number): string {
  return buf.toString('latin1', start, start + length).replace(/[\0 ]+$/, '');
}

/** Read the File Meta Information group; returns the transfer syntax and (0002,0003). */
function readMeta(buf: Buffer, start: number): { end: number; ts: string; mediaUid?: string } {
  const c: Cursor = { buf, pos: start, implicit: false, le: true };
  let ts = '';
  let mediaUid: string | undefined;
  for (;;) {
    need(c, 4);
    if (buf.readUInt16LE(c.pos) !== 0x0002) break;
    const el = readHeader(c);
    if (el.length === UNDEFINED) throw new Error('undefined length in meta');
    need(c, el.length);
    if (el.element === 0x0010) ts = trimUid(buf, c.pos, el.length);
    if (el.element === 0x0003) mediaUid = trimUid(buf, c.pos, el.length);
    c.pos += el.length;
  }
  return { end: c.pos, ts, mediaUid };
}

export function peekSopInstanceUid(buf: Buffer): PeekResult {
  try {
    let start = 0;
    if (buf.length < 132) {
      // could still be a preamble; the raw-dataset case is decided once 132 bytes are in
      throw new NeedMore();
    }
    if (buf.toString('latin1', 128, 132) === 'DICM') start = 132;
    if (buf.length < start + 8) throw new NeedMore();
    let ts = '';
    let mediaUid: string | undefined;
    let pos = start;
    if (buf.readUInt16LE(start) === 0x0002) {
      const meta = readMeta(buf, start);
      ts = meta.ts;
      mediaUid = meta.mediaUid;
      pos = meta.end;
    } else if (start === 0) {
      // no preamble and no meta: guess the encoding from the first element
      const vr = buf.toString('latin1', 4, 6);
      ts = /^[A-Z]{2}$/.test(vr) ? '' : IMPLICIT;
    }
    const fallback = (): PeekResult => (mediaUid ? { kind: 'found', uid: mediaUid, source: '00020003' } : { kind: 'not-found' });
    if (ts === DEFLATED) return fallback();
    const c: Cursor = { buf, pos, implicit: ts === IMPLICIT, le: ts !== EXPLICIT_BE };
    for (;;) {
      let el: Element;
      try {
        el = readHeader(c);
      } catch (err) {
        if (err instanceof NeedMore) throw err;
        return fallback();
      }
      const tag = el.group * 0x10000 + el.element;
      if (tag === 0x00080018) {
        if (el.length === UNDEFINED || el.length > 64) return fallback();
        need(c, el.length);
        return { kind: 'found', uid: trimUid(buf, c.pos, el.length), source: '00080018' };
      }
      if (tag > 0x00080018) return fallback();
      if (el.length === UNDEFINED) skipUndefined(c, 0);
      else skip(c, el.length);
    }
  } catch (err) {
    // a read past the end of what has arrived so far is "not yet", not "never"
    if (err instanceof NeedMore || err instanceof RangeError) return { kind: 'need-more' };
    return { kind: 'not-found' };
  }
}
