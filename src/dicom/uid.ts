import { randomUUID, createHash } from 'node:crypto';

/** PS3.5 §9.1: components of digits, no leading zeros; length (≤ 64) is checked by isValidUid. */
export const UID_PATTERN = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;

export function isValidUid(s: string): boolean {
  return typeof s === 'string' && s.length > 0 && s.length <= 64 && UID_PATTERN.test(s);
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
