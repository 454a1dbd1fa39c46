/**
 * Hostile input: every malformed KOS gives an error issue with a clear message, never an exception,
 * never unbounded memory or time. Plus a seeded mutation fuzz over valid fixtures.
 * The per-input time bound below is a hang guard, not a performance assertion.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { readDicomIdentity, readKos, syntheticManifest, validateManifestModel, writeKos } from '../../src/dicom/index.js';

const DIR = join(import.meta.dirname, '../fixtures/kos');
const fx = (n: string) => new Uint8Array(readFileSync(join(DIR, n)));
const valid = writeKos(syntheticManifest({ series: 2, instancesPerSeries: 3, seed: 'hostile' }));

// ---- tiny byte builders (explicit VR little endian) -----------------------------------------
function el(group: number, elem: number, vr: string, value: Buffer | string): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
  const long = ['OB', 'SQ', 'UN', 'UT', 'UR', 'UC'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0); h.writeUInt16LE(elem, 2); h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(v.length, 8); else h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}
function u32(n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; }
function tagBytes(g: number, e: number): Buffer { const b = Buffer.alloc(4); b.writeUInt16LE(g); b.writeUInt16LE(e, 2); return b; }
function part10(ts: string, dataset: Buffer): Buffer {
  const metaBody = Buffer.concat([el(2, 1, 'OB', Buffer.from([0, 1])), el(2, 2, 'UI', '1.2.840.10008.5.1.4.1.1.88.59'), el(2, 3, 'UI', '1.2.3'), el(2, 0x10, 'UI', ts)]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(2, 0, 'UL', u32(metaBody.length)), metaBody, dataset]);
}
/** Replace the first (or every) occurrence of a tag+VR header in a buffer. */
function patchTag(src: Uint8Array, from: [number, number, string], to: [number, number, string], all = false): Uint8Array {
  const b = Buffer.from(src);
  const needle = Buffer.concat([tagBytes(from[0], from[1]), Buffer.from(from[2], 'latin1')]);
  const repl = Buffer.concat([tagBytes(to[0], to[1]), Buffer.from(to[2], 'latin1')]);
  let i = b.indexOf(needle, 132);
  assert.ok(i > 0, 'tag to patch exists');
  while (i > 0) { repl.copy(b, i); if (!all) break; i = b.indexOf(needle, i + 1); }
  return new Uint8Array(b);
}
/** Overwrite the value of the first element with this tag (same length). */
function patchValue(src: Uint8Array, g: number, e: number, fn: (old: string) => string): Uint8Array {
  const b = Buffer.from(src);
  const i = b.indexOf(tagBytes(g, e), 132);
  assert.ok(i > 0);
  const len = b.readUInt16LE(i + 6);
  const old = b.toString('latin1', i + 8, i + 8 + len);
  const nv = fn(old);
  assert.equal(nv.length, old.length);
  b.write(nv, i + 8, 'latin1');
  return new Uint8Array(b);
}
function nested(depth: number): Buffer {
  const parts: Buffer[] = [el(8, 0x16, 'UI', '1.2.840.10008.5.1.4.1.1.88.59')];
  for (let i = 0; i < depth; i++) {
    parts.push(tagBytes(0x0040, 0xa730), Buffer.from('SQ\0\0', 'latin1'), u32(0xffffffff), tagBytes(0xfffe, 0xe000), u32(0xffffffff));
  }
  return part10('1.2.840.10008.1.2.1', Buffer.concat(parts));
}

const KOS_UID = '1.2.840.10008.5.1.4.1.1.88.59';
const tsExplicit = '1.2.840.10008.1.2.1';
const cases: Array<[string, () => Uint8Array, string | RegExp, object?]> = [
  ['empty input', () => new Uint8Array(0), 'GW_KOS_EMPTY'],
  ['single byte', () => Uint8Array.of(0x44), /GW_KOS_(TRUNCATED|EMPTY)/],
  ['plain text', () => new Uint8Array(Buffer.from('hello, this is not DICOM at all, just some text')), /GW_KOS_/],
  ['PNG header', () => new Uint8Array(Buffer.from('89504e470d0a1a0a0000000d49484452000000100000001008060000001ff3ff61', 'hex')), /GW_KOS_/],
  ['preamble and DICM only', () => new Uint8Array(Buffer.concat([Buffer.alloc(128), Buffer.from('DICM')])), 'GW_KOS_NO_TRANSFER_SYNTAX'],
  ['meta without dataset', () => part10(tsExplicit, Buffer.alloc(0)), 'GW_KOS_EMPTY'],
  ['unsupported transfer syntax (JPEG baseline)', () => part10('1.2.840.10008.1.2.4.50', el(8, 0x16, 'UI', KOS_UID)), 'GW_KOS_UNSUPPORTED_TRANSFER_SYNTAX'],
  ['meta element length past end', () => new Uint8Array(Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), tagBytes(2, 0x10), Buffer.from('UI'), Buffer.from([0xff, 0x00]), Buffer.from('1.2')])), 'GW_KOS_LENGTH_PAST_END'],
  ['truncated at half', () => valid.subarray(0, valid.length >> 1), /GW_KOS_(TRUNCATED|LENGTH_PAST_END)/],
  ['truncated by one byte', () => valid.subarray(0, valid.length - 1), /GW_KOS_(TRUNCATED|LENGTH_PAST_END)/],
  ['truncated inside file meta', () => valid.subarray(0, 150), /GW_KOS_/],
  ['value length past end', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x10, 0x10), Buffer.from('PN'), Buffer.from([0xf0, 0xff]), Buffer.from('DOE^J')])), 'GW_KOS_LENGTH_PAST_END'],
  ['huge 32-bit length', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x40, 0xa160), Buffer.from('UT\0\0'), u32(0xfffffff0), Buffer.from('xx')])), 'GW_KOS_LENGTH_PAST_END'],
  ['defined sequence length past end', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x40, 0xa375), Buffer.from('SQ\0\0'), u32(1000), tagBytes(0xfffe, 0xe000), u32(0)])), 'GW_KOS_LENGTH_PAST_END'],
  ['item length past end', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x40, 0xa375), Buffer.from('SQ\0\0'), u32(0xffffffff), tagBytes(0xfffe, 0xe000), u32(5000), Buffer.alloc(8)])), 'GW_KOS_LENGTH_PAST_END'],
  ['undefined-length sequence never closed', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x40, 0xa375), Buffer.from('SQ\0\0'), u32(0xffffffff)])), 'GW_KOS_TRUNCATED'],
  ['undefined-length item never closed', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x40, 0xa375), Buffer.from('SQ\0\0'), u32(0xffffffff), tagBytes(0xfffe, 0xe000), u32(0xffffffff), el(0x20, 0xd, 'UI', '1.2')])), 'GW_KOS_TRUNCATED'],
  ['sequences nested 100 deep', () => nested(100), 'GW_KOS_NESTING_TOO_DEEP'],
  ['sequences nested 10,000 deep', () => nested(10_000), 'GW_KOS_NESTING_TOO_DEEP'],
  ['deflate bomb (100 MiB of zeros)', () => part10('1.2.840.10008.1.2.1.99', deflateRawSync(Buffer.alloc(100 * 1024 * 1024))), 'GW_KOS_INFLATE_LIMIT'],
  ['deflate over a caller limit', () => fx('ts-deflated-le.dcm'), 'GW_KOS_INFLATE_LIMIT', { maxInflatedBytes: 1024 }],
  ['corrupt deflate stream', () => part10('1.2.840.10008.1.2.1.99', Buffer.from('this is not deflate data, not at all')), 'GW_KOS_INFLATE_FAILED'],
  ['invalid VR bytes', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x10, 0x10), Buffer.from([0x01, 0x02, 0x04, 0x00]), Buffer.from('ABCD')])), 'GW_KOS_BAD_VR'],
  ['stray item delimiter', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0xfffe, 0xe00d), u32(0)])), 'GW_KOS_STRAY_DELIMITER'],
  ['item tag in a dataset', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0xfffe, 0xe000), u32(0)])), 'GW_KOS_STRAY_DELIMITER'],
  ['non-item tag inside a sequence', () => part10(tsExplicit, Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x40, 0xa375), Buffer.from('SQ\0\0'), u32(0xffffffff), el(0x10, 0x10, 'PN', 'X')])), 'GW_KOS_BAD_ITEM'],
  ['CT image, not a KOS', () => patchValue(patchValue(valid, 2, 2, (s) => s.replace('88.59', '2\0\0\0\0')), 8, 0x16, (s) => s.replace('1.88.59', '1.2\0\0\0\0')), 'GW_KOS_NOT_KOS'],
  ['dataset without SOP Class UID', () => part10(tsExplicit, el(0x10, 0x10, 'PN', 'DOE^JOHN')), 'GW_KOS_NOT_KOS'],
  ['no evidence sequence', () => patchTag(valid, [0x40, 0xa375, 'SQ'], [0x40, 0xa376, 'SQ']), 'GW_KOS_NO_EVIDENCE'],
  ['evidence item without Referenced Series', () => patchTag(valid, [0x08, 0x1115, 'SQ'], [0x08, 0x1116, 'SQ']), 'GW_KOS_EMPTY_SERIES_LIST'],
  ['series without Referenced SOP Sequence', () => patchTag(valid, [0x08, 0x1199, 'SQ'], [0x08, 0x119a, 'SQ']), 'GW_KOS_EMPTY_INSTANCE_LIST'],
  ['malformed referenced SOP Instance UID', () => patchValue(valid, 8, 0x1155, (s) => 'A' + s.slice(1)), 'GW_KOS_BAD_UID'],
  ['malformed manifest SOP Instance UID', () => patchValue(valid, 8, 0x18, (s) => s.replace('2.25.', '2..5.')), 'GW_KOS_BAD_UID'],
  ['missing Patient ID', () => patchValue(valid, 0x10, 0x20, (s) => ' '.repeat(s.length)), 'GW_KOS_NO_PATIENT_ID'],
  // Retrieve AE Title (0008,0054) moved to (0008,0056) as well: an AE Title alone is only a warning (XDS-I.b)
  ['no Retrieve Location UID, Retrieve URL or Retrieve AE Title', () => patchTag(patchTag(patchTag(valid, [0x40, 0xe011, 'UI'], [0x40, 0xe013, 'UI'], true), [0x08, 0x1190, 'UR'], [0x08, 0x1191, 'UR'], true), [0x08, 0x54, 'AE'], [0x08, 0x56, 'AE'], true), 'GW_KOS_NO_RETRIEVE_LOCATION'],
  ['Key Image Note', () => fx('kin.dcm'), 'GW_KOS_TITLE_NOT_MANIFEST'],
  ['IOCM rejection note', () => fx('rejection.dcm'), 'GW_KOS_TITLE_NOT_MANIFEST'],
  ['more references than allowed', () => fx('mado-base.dcm'), 'GW_KOS_TOO_MANY_REFERENCES', { maxReferences: 3 }],
  ['not a byte array', () => 'DICM' as unknown as Uint8Array, /GW_KOS_/],
];

describe('hostile KOS input → error issues', () => {
  it('has at least 30 named cases', () => assert.ok(cases.length >= 30));
  for (const [name, make, code, opts] of cases) {
    it(name, () => {
      const input = make();
      const r = readKos(input, opts);
      const errs = r.issues.filter((i) => i.severity === 'error');
      assert.ok(errs.length > 0, 'at least one error');
      const hit = errs.find((e) => (typeof code === 'string' ? e.code === code : code.test(e.code)));
      assert.ok(hit, `expected ${code}, got ${errs.map((e) => e.code).join(', ')}`);
      assert.ok(hit.message.length > 8 && !/(^|\s)undefined($|\s)|NaN|\[object/.test(hit.message), `clear message: ${hit.message}`);
      assert.doesNotThrow(() => readDicomIdentity(input, opts));
    });
  }
  it('UN with undefined length is read as an implicit VR sequence (PS3.5 §6.2.2)', () => {
    const impl = (g: number, e: number, v: string) => { const b = Buffer.from(v.length % 2 ? v + '\0' : v, 'latin1'); return Buffer.concat([tagBytes(g, e), u32(b.length), b]); };
    const ds = Buffer.concat([el(8, 0x16, 'UI', KOS_UID), tagBytes(0x40, 0xa375), Buffer.from('UN\0\0'), u32(0xffffffff),
      tagBytes(0xfffe, 0xe000), u32(0xffffffff), impl(0x20, 0xd, '1.2.3.4'), tagBytes(0xfffe, 0xe00d), u32(0), tagBytes(0xfffe, 0xe0dd), u32(0)]);
    const r = readKos(part10(tsExplicit, ds));
    assert.equal(r.manifest?.evidence[0]?.studyInstanceUid, '1.2.3.4');
  });
  it('readDicomIdentity reads an image in an encapsulated transfer syntax (STOW-RS), readKos refuses it', () => {
    const ds = Buffer.concat([el(8, 0x16, 'UI', '1.2.840.10008.5.1.4.1.1.2'), el(8, 0x18, 'UI', '1.2.3.4.5'), el(0x20, 0xd, 'UI', '1.2.3'), el(0x20, 0xe, 'UI', '1.2.3.6'),
      tagBytes(0x7fe0, 0x10), Buffer.from('OB\0\0'), u32(0xffffffff), tagBytes(0xfffe, 0xe000), u32(0)]);
    const bytes = part10('1.2.840.10008.1.2.4.50', ds);
    const id = readDicomIdentity(bytes);
    assert.deepEqual(id.issues, []);
    assert.equal(id.identity?.sopClassUid, '1.2.840.10008.5.1.4.1.1.2');
    assert.equal(id.identity?.seriesInstanceUid, '1.2.3.6');
    assert.equal(readKos(bytes).kind, 'not-kos');
  });
  it('a Uint8Array view with a byte offset reads correctly', () => {
    const big = new Uint8Array(valid.length + 7);
    big.set(valid, 7);
    const r = readKos(big.subarray(7));
    assert.equal(r.kind, 'manifest');
    assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
  });
});

// ---- seeded mutation fuzz -------------------------------------------------------------------
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('seeded mutation fuzz', () => {
  const seeds: Uint8Array[] = ['mado-base.dcm', 'mado-madotemp.dcm', 'mado-kos-101.dcm', 'ts-implicit-le.dcm', 'ts-explicit-be.dcm',
    'ts-deflated-le.dcm', 'ts-bare-implicit-le.dcm', 'charset-jis13.dcm'].map((n) => fx(n));
  seeds.push(valid);
  const N = 10_000;
  it(`${N} mutated inputs: no exception, bounded time`, () => {
    const rnd = mulberry32(0x4d41444f);
    const ri = (n: number) => Math.floor(rnd() * n);
    let worst = 0, errors = 0, parsed = 0;
    for (let n = 0; n < N; n++) {
      const src = seeds[n % seeds.length]!;
      let b = Buffer.from(src);
      const op = ri(6);
      if (op === 0) { for (let k = 1 + ri(8); k > 0; k--) b[ri(b.length)] = ri(256); }            // byte flips
      else if (op === 1) b = b.subarray(0, ri(b.length));                                          // truncation
      else if (op === 2) {                                                                          // 16/32-bit length edits
        const p = 132 + ri(Math.max(1, b.length - 140));
        const v = [0xffffffff, 0, 1, 0x7fffffff, ri(0x10000), b.length, ri(1 << 24)][ri(7)]!;
        if (rnd() < 0.5) b.writeUInt32LE(v >>> 0, Math.min(p, b.length - 4)); else b.writeUInt16LE(v & 0xffff, Math.min(p, b.length - 2));
      } else if (op === 3) { const p = ri(b.length); b = Buffer.concat([b.subarray(0, p), b.subarray(p + 1 + ri(16))]); } // deletion
      else if (op === 4) { const p = ri(b.length); const q = ri(b.length); b = Buffer.concat([b.subarray(0, p), b.subarray(q, q + ri(64)), b.subarray(p)]); } // insertion
      else { const p = ri(b.length - 8); b.writeUInt32LE(0xe000fffe, p); }                        // item tag injection
      const t0 = performance.now();
      let r;
      try {
        r = readKos(b);
        readDicomIdentity(b);
        if (r.manifest) validateManifestModel(r.manifest);
      } catch (e) {
        assert.fail(`mutation ${n} (op ${op}) threw: ${(e as Error).stack}`);
      }
      const dt = performance.now() - t0;
      worst = Math.max(worst, dt);
      assert.ok(dt < 2000, `mutation ${n} took ${dt} ms (hang guard)`);
      assert.ok(Array.isArray(r.issues) && typeof r.kind === 'string');
      if (r.issues.some((i) => i.severity === 'error')) errors++;
      if (r.manifest) parsed++;
    }
    assert.ok(errors > N / 4, `most mutations are reported (${errors})`);
    console.log(`# fuzz: ${N} inputs, ${errors} with errors, ${parsed} produced a manifest, worst ${worst.toFixed(1)} ms`);
  });
});
