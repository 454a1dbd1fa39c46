import { randomUUID, createHash } from 'node:crypto';

/** PS3.5 §9.1: components of digits, no leading zeros; length (≤ 64) is checked by isValidUid. */
export const UID_PATTERN = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;

/** Same answer as UID_PATTERN plus the length check, without a regex (called per reference on ingest). */
export function isValidUid(s: string): boolean {
  if (typeof s !== 'string') return false;
  const n = s.length;
  if (n === 0 || n > 64) return false;
  let atStart = true, leadingZero = false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (atStart) return false; // empty component
      atStart = true;
    } else if (c >= 0x30 && c <= 0x39) {
      if (atStart) { leadingZero = c === 0x30; atStart = false; }
      else if (leadingZero) return false; // "0" followed by digits
    } else return false;
  }
  return !atStart;
}

function hexToDecimal(hex: string): string {
  return BigInt('0x' + hex).toString(10);
}

/** "2.25." + UUID as an unsigned decimal integer (PS3.5 §B.2). */
export function newUid(): string {
  return '2.25.' + hexToDecimal(randomUUID().replace(/-/g, ''));
}

/** Deterministic 2.25 UID derived from a seed (name-based, UUIDv5-like from SHA-1). */
export function derivedUid(seed: string): string {
  const h = createHash('sha1').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return '2.25.' + hexToDecimal(h.subarray(0, 16).toString('hex'));
}
