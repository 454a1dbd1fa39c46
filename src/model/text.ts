/**
 * Characters no stored text may hold. PostgreSQL text and jsonb cannot store U+0000 (jsonb refuses
 * the \u0000 escape) nor an unpaired UTF-16 surrogate; DICOM text VRs exclude C0 control characters
 * other than ESC (PS3.5 §6.1.2.3, §6.2: LT/ST/UT also allow TAB, LF, FF, CR); FHIR strings
 * SHOULD NOT contain characters below U+0020 other than TAB, CR, LF (R4 §2.1.28.0.1 "string").
 * Padding (trailing NUL of a UI, PS3.5 §6.2) is trimmed by the DICOM reader before this check.
 */

/** Never storable: NUL and unpaired surrogates. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Decoded DICOM text: C0 controls other than TAB, LF, FF, CR (ESC is consumed by the decoder). */
const DICOM_FORBIDDEN = /[\u0000-\u0008\u000b\u000e-\u001f]/;

export interface ForbiddenText {
  /** JSON-ish path of the offending string ("patient.name.alphabetic", "entry[2].resource.id") */
  path: string;
  /** U+XXXX of the first offending character */
  char: string;
}

function codeOf(s: string, re: RegExp): string {
  const m = re.exec(s);
  return `U+${(m?.[0].charCodeAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The first string (or object key) under `value` matching `re`, depth-first; undefined when none. */
function scan(value: unknown, path: string, re: RegExp, depth = 0): ForbiddenText | undefined {
  if (typeof value === 'string') return re.test(value) ? { path, char: codeOf(value, re) } : undefined;
  if (typeof value !== 'object' || value === null || depth > 200) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const f = scan(value[i], `${path}[${i}]`, re, depth + 1);
      if (f) return f;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    if (re.test(k)) return { path: path ? `${path}.${k.replace(re, '?')}` : k.replace(re, '?'), char: codeOf(k, re) };
    const f = scan(v, path ? `${path}.${k}` : k, re, depth + 1);
    if (f) return f;
  }
  return undefined;
}

/** A string PostgreSQL would refuse (FHIR / JSON input). */
export function findUnstorableText(value: unknown, path = ''): ForbiddenText | undefined {
  return scan(value, path, UNSTORABLE);
}

/** A decoded DICOM text value holding a character its VR forbids (manifest model). */
export function findForbiddenDicomText(value: unknown, path = ''): ForbiddenText | undefined {
  return scan(value, path, DICOM_FORBIDDEN);
}
