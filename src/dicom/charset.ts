/**
 * Specific Character Set (0008,0005) decoding from raw bytes (PS3.3 C.12.1.1.2, PS3.5 §6.1).
 * Done here rather than by dcmjs: ISO 2022 needs per-escape-sequence switching, a reset to the
 * initial state at delimiters ('\\', CR/LF/FF/TAB, and '^' '=' in PN, PS3.5 §6.1.2.5.3), and
 * JIS X 0201 katakana in G1 (IR 13), which no single TextDecoder label handles.
 * Checked: dcmjs 0.51.1 DicomMessage.readFile throws "Using multiple character sets is not supported"
 * on "ISO 2022 IR 6\ISO 2022 IR 87" and "ISO 2022 IR 13\ISO 2022 IR 87" (PS3.5 Annex H examples).
 */

const single: Record<string, string> = {
  '': 'latin1', 'ISO_IR 6': 'latin1', 'ISO_IR 100': 'latin1', 'ISO_IR 101': 'iso-8859-2', 'ISO_IR 109': 'iso-8859-3',
  'ISO_IR 110': 'iso-8859-4', 'ISO_IR 144': 'iso-8859-5', 'ISO_IR 127': 'iso-8859-6', 'ISO_IR 126': 'iso-8859-7',
  'ISO_IR 138': 'iso-8859-8', 'ISO_IR 148': 'windows-1254', 'ISO_IR 203': 'iso-8859-15', 'ISO_IR 166': 'windows-874',
  'ISO_IR 13': 'shift_jis', 'ISO_IR 192': 'utf-8', GB18030: 'gb18030', GBK: 'gbk',
};

/** ISO 2022 G1 96-character sets (ESC - F) → TextDecoder label for their high half. */
const g1Parts: Record<string, string> = { A: 'latin1', B: 'iso-8859-2', C: 'iso-8859-3', D: 'iso-8859-4', L: 'iso-8859-5',
  G: 'iso-8859-6', F: 'iso-8859-7', H: 'iso-8859-8', M: 'windows-1254', T: 'windows-874', b: 'iso-8859-15' };
/** Defined terms for value 1 → which G1 part (ESC - x) is active initially. */
const iso2022Initial: Record<string, string> = { 'ISO 2022 IR 100': 'A', 'ISO 2022 IR 101': 'B', 'ISO 2022 IR 109': 'C',
  'ISO 2022 IR 110': 'D', 'ISO 2022 IR 144': 'L', 'ISO 2022 IR 127': 'G', 'ISO 2022 IR 126': 'F', 'ISO 2022 IR 138': 'H',
  'ISO 2022 IR 148': 'M', 'ISO 2022 IR 166': 'T', 'ISO 2022 IR 203': 'b' };

const decoders = new Map<string, TextDecoder>();
function dec(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) { d = new TextDecoder(label, { fatal: false }); decoders.set(label, d); }
  return d;
}
const tables = new Map<string, string[]>();
function highTable(label: string): string[] {
  let t = tables.get(label);
  if (!t) {
    t = [];
    for (let b = 0x80; b <= 0xff; b++) t.push(dec(label).decode(Uint8Array.of(b)));
    tables.set(label, t);
  }
  return t;
}

export interface Charset {
  /** Decode a text value; `pn` enables the '^'/'=' reset rule. */
  decode(bytes: Uint8Array, pn: boolean): string;
  /** Terms that are not recognised (reported once as a warning by the reader). */
  unknown: string[];
}

type G0 = 'ascii' | 'roman' | 'jis0208' | 'jis0212' | 'ksx1001' | 'gb2312';
type G1 = 'none' | 'katakana' | 'ksx1001' | 'gb2312' | string /* g1Parts key */;

export function makeCharset(raw: string | undefined): Charset {
  const terms = (raw ?? '').split('\\').map((s) => s.trim());
  const first = terms[0] ?? '';
  const unknown: string[] = [];
  const iso2022 = terms.some((t) => t.startsWith('ISO 2022'));
  if (!iso2022) {
    let label = single[first];
    if (label === undefined) { unknown.push(first); label = 'latin1'; }
    if (label === 'latin1') return { unknown, decode: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') };
    if (label === 'utf-8') return { unknown, decode: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8') };
    const d = dec(label);
    return { unknown, decode: (b) => d.decode(b) };
  }
  for (const t of terms) {
    if (t && !t.startsWith('ISO 2022') && single[t] === undefined) unknown.push(t);
  }
  let init0: G0 = 'ascii';
  let init1: G1 = 'none';
  if (first === 'ISO 2022 IR 13') { init0 = 'roman'; init1 = 'katakana'; }
  else if (iso2022Initial[first]) init1 = iso2022Initial[first]!;
  return { unknown, decode: (b, pn) => decode2022(b, pn, init0, init1) };
}

function decode2022(b: Uint8Array, pn: boolean, init0: G0, init1: G1): string {
  let g0: G0 = init0;
  let g1: G1 = init1;
  let out = '';
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c === 0x1b) {
      const c1 = b[i + 1], c2 = b[i + 2], c3 = b[i + 3];
      if (c1 === 0x28 && c2 === 0x42) { g0 = 'ascii'; i += 3; continue; }             // ESC ( B  IR 6
      if (c1 === 0x28 && c2 === 0x4a) { g0 = 'roman'; i += 3; continue; }             // ESC ( J  IR 14
      if (c1 === 0x29 && c2 === 0x49) { g1 = 'katakana'; i += 3; continue; }          // ESC ) I  IR 13
      if (c1 === 0x24 && c2 === 0x42) { g0 = 'jis0208'; i += 3; continue; }           // ESC $ B  IR 87
      if (c1 === 0x24 && c2 === 0x28 && c3 === 0x44) { g0 = 'jis0212'; i += 4; continue; } // ESC $ ( D IR 159
      if (c1 === 0x24 && c2 === 0x29 && c3 === 0x43) { g1 = 'ksx1001'; i += 4; continue; } // ESC $ ) C IR 149
      if (c1 === 0x24 && c2 === 0x29 && c3 === 0x41) { g1 = 'gb2312'; i += 4; continue; }  // ESC $ ) A IR 58
      if (c1 === 0x2d && c2 !== undefined && g1Parts[String.fromCharCode(c2)]) { g1 = String.fromCharCode(c2); i += 3; continue; }
      out += '\ufffd'; i += 1; continue;                                             // unknown escape: skip ESC
    }
    if (c < 0x80) {
      if (g0 === 'jis0208' || g0 === 'jis0212') {
        let j = i;
        while (j < n && b[j] !== 0x1b && b[j]! >= 0x21 && b[j]! < 0x7f) j++;
        if (j === i) { out += String.fromCharCode(c); i++; continue; } // control/space inside 2-byte mode
        if (g0 === 'jis0208') {
          const wrapped = new Uint8Array(j - i + 6);
          wrapped.set([0x1b, 0x24, 0x42]); wrapped.set(b.subarray(i, j), 3); wrapped.set([0x1b, 0x28, 0x42], 3 + j - i);
          out += dec('iso-2022-jp').decode(wrapped);
        } else {
          out += '\ufffd'.repeat((j - i) >> 1); // JIS X 0212 is not supported by TextDecoder
        }
        i = j;
        continue;
      }
      let ch = String.fromCharCode(c);
      if (g0 === 'roman') { if (c === 0x5c) ch = '\u00a5'; else if (c === 0x7e) ch = '\u203e'; }
      out += ch;
      if (c === 0x5c || c === 0x0d || c === 0x0a || c === 0x0c || c === 0x09 || (pn && (c === 0x5e || c === 0x3d))) {
        g0 = init0; g1 = init1;
      }
      i++;
      continue;
    }
    if (g1 === 'katakana') { out += c >= 0xa1 && c <= 0xdf ? String.fromCharCode(0xff61 + c - 0xa1) : '\ufffd'; i++; continue; }
    if (g1 === 'ksx1001' || g1 === 'gb2312') {
      let j = i;
      while (j < n && b[j]! >= 0x80) j++;
      out += dec(g1 === 'ksx1001' ? 'euc-kr' : 'gb18030').decode(b.subarray(i, j));
      i = j;
      continue;
    }
    if (g1 !== 'none' && g1Parts[g1]) { out += highTable(g1Parts[g1]!)[c - 0x80]; i++; continue; }
    out += String.fromCharCode(c); // no G1 designated: tolerate as Latin-1
    i++;
  }
  return out;
}

// ---- encoding (KOS writer) ----------------------------------------------------------------------

/** Character sets the writer can encode text in besides ISO_IR 192 (PS3.5 Annexes H, I, K). */
export type TextCharset = 'ISO_IR 192' | '\\ISO 2022 IR 87' | '\\ISO 2022 IR 149' | 'GB18030';

/** Character → bytes tables built once from the TextDecoder of the same set (WHATWG indexes). */
const reverse = new Map<string, Map<string, number>>();
function reverseTable(label: 'euc-jp' | 'euc-kr' | 'gb18030'): Map<string, number> {
  let t = reverse.get(label);
  if (t) return t;
  t = new Map();
  const d = new TextDecoder(label, { fatal: true });
  // EUC rows/cells 0xA1–0xFE are the 94×94 sets (JIS X 0208, KS X 1001); GB18030 two-byte codes
  // are lead 0x81–0xFE, trail 0x40–0x7E / 0x80–0xFE.
  const [l0, t0] = label === 'gb18030' ? [0x81, 0x40] : [0xa1, 0xa1];
  for (let l = l0; l <= 0xfe; l++) for (let c = t0; c <= 0xfe; c++) {
    if (c === 0x7f) continue;
    let ch: string;
    try { ch = d.decode(Uint8Array.of(l, c)); } catch { continue; }
    if (ch.length === 1 && !t.has(ch)) t.set(ch, (l << 8) | c);
  }
  reverse.set(label, t);
  return t;
}

function isDelimiter(c: number, pn: boolean): boolean {
  return c === 0x5c || c === 0x0d || c === 0x0a || c === 0x0c || c === 0x09 || (pn && (c === 0x5e || c === 0x3d));
}

/**
 * Encode a text value in `cs`; undefined when a character has no code there. ISO 2022: JIS X 0208
 * in G0 (ESC $ B … ESC ( B), KS X 1001 in G1 (ESC $ ) C), designations repeated after each
 * delimiter, where PS3.5 §6.1.2.5.3 returns to the initial state ('^' and '=' too in PN).
 */
export function encodeText(s: string, cs: TextCharset, pn: boolean): Buffer | undefined {
  if (cs === 'ISO_IR 192') return Buffer.from(s, 'utf8');
  const table = reverseTable(cs === 'GB18030' ? 'gb18030' : cs === '\\ISO 2022 IR 87' ? 'euc-jp' : 'euc-kr');
  const out: number[] = [];
  let g0Jis = false, g1Ks = false;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) {
      if (g0Jis) { out.push(0x1b, 0x28, 0x42); g0Jis = false; }
      out.push(c);
      if (isDelimiter(c, pn)) g1Ks = false;
      continue;
    }
    const code = table.get(ch);
    if (code === undefined) return undefined;
    if (cs === 'GB18030') out.push(code >> 8, code & 0xff);
    else if (cs === '\\ISO 2022 IR 87') {
      if (!g0Jis) { out.push(0x1b, 0x24, 0x42); g0Jis = true; }
      out.push((code >> 8) & 0x7f, code & 0x7f);
    } else {
      if (!g1Ks) { out.push(0x1b, 0x24, 0x29, 0x43); g1Ks = true; }
      out.push(code >> 8, code & 0xff);
    }
  }
  if (g0Jis) out.push(0x1b, 0x28, 0x42);
  return Buffer.from(out);
}

const KANA = /[\u3040-\u30ff]/u, HANGUL = /[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]/u, HAN = /[\u3400-\u9fff]/u;

/**
 * The character set a KOS is written in: the manifest's own when it was ISO 2022 IR 87 / IR 149 or
 * GB18030; for a manifest without one (from FHIR), chosen from the script of its person names (kana
 * → Japanese, Hangul → Korean, other Han → Chinese); else ISO_IR 192. The caller falls back to
 * ISO_IR 192 when some text has no code in the chosen set.
 */
export function preferredCharset(declared: string | undefined, names: string[]): TextCharset {
  if (declared !== undefined) {
    const terms = declared.split('\\').map((x) => x.trim());
    if (terms.includes('ISO 2022 IR 87')) return '\\ISO 2022 IR 87';
    if (terms.includes('ISO 2022 IR 149')) return '\\ISO 2022 IR 149';
    if (terms[0] === 'GB18030') return 'GB18030';
    return 'ISO_IR 192';
  }
  const all = names.join('');
  if (KANA.test(all)) return '\\ISO 2022 IR 87';
  if (HANGUL.test(all)) return '\\ISO 2022 IR 149';
  if (HAN.test(all)) return 'GB18030';
  return 'ISO_IR 192';
}
