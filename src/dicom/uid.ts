import { randomUUID } from 'node:crypto';

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

/** Deterministic 2.25 UIDs: one derivation for the whole gateway (src/model/ids.ts). */
export { derivedUid, kosSeriesUid } from '../model/ids.js';
