/**
 * Media types for every route: Content-Type parsing (RFC 9110 §8.3.1) and Accept negotiation
 * (RFC 9110 §12.5.1). The grammar is `content-type`'s (quoted values and escapes, parameter names
 * lower-cased, a comma ends a media range); choosing among offers follows `negotiator`'s rules:
 * the most specific matching range decides an offer's quality (`image/png` over `image/*` over
 * `*∕*`), q=0 excludes, parameters given in the range must match the offer's, and a parameter
 * value `*` matches any value (DICOMweb's `transfer-syntax=*`, PS3.18 §8.7.3.5.2).
 *
 * A missing or blank Accept means `*∕*` (RFC 9110 §12.5.1). Headers longer than
 * MAX_ACCEPT_LENGTH are refused by callers (parseAccept returns undefined) so a hostile header
 * cannot make negotiation quadratic.
 */
import { parse as parseHeader, format as formatHeader } from 'content-type';
import Negotiator from 'negotiator';

/** A media type: `type/subtype` lower-cased, parameter names lower-cased, values unquoted. */
export interface MediaType {
  type: string;
  params: Record<string, string>;
}

/** One range of an Accept header; `q` in [0, 1]. */
export interface MediaRange extends MediaType {
  q: number;
}

export const MAX_ACCEPT_LENGTH = 4096;

const TOKEN_TYPE = /^[a-z0-9!#$%&'*+.^_`|~-]+\/[a-z0-9!#$%&'*+.^_`|~-]+$/;

function lowerParams(p: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) {
    const name = k.toLowerCase();
    if (!(name in out)) out[name] = v; // the first of repeated parameters wins
  }
  return out;
}

/**
 * Parse a Content-Type value (or any single media type). Undefined when absent or not
 * `type/subtype`; a caller decides whether that is a 400 or a 415.
 */
export function parseContentType(value: string | undefined): MediaType | undefined {
  if (value === undefined) return undefined;
  const parsed = parseHeader(value);
  const type = parsed.type.trim().toLowerCase();
  if (!TOKEN_TYPE.test(type)) return undefined;
  return { type, params: lowerParams(parsed.parameters) };
}

/** Format a media type, quoting parameter values where RFC 9110 §5.6.6 requires it. */
export function formatMediaType(mt: MediaType): string {
  return formatHeader({ type: mt.type, parameters: mt.params });
}

/** `q` of a range: RFC 9110 §12.4.2 allows 0–1 with up to three decimals; anything else counts as 1. */
function qOf(raw: string | undefined): number {
  if (raw === undefined) return 1;
  const n = Number(raw.trim());
  return Number.isFinite(n) && raw.trim() !== '' ? Math.min(1, Math.max(0, n)) : 1;
}

/**
 * Parse an Accept header into media ranges, highest q first (the client's order breaks ties).
 * q=0 ranges are kept, last: they exclude what they match (qualityOf), so a caller that walks
 * the ranges skips them. Ranges that are not `type/subtype` are ignored. A missing or blank
 * header is `*∕*`; undefined when the header is longer than MAX_ACCEPT_LENGTH.
 */
export function parseAccept(header: string | undefined): MediaRange[] | undefined {
  if (header === undefined || header.trim() === '') return [{ type: '*/*', params: {}, q: 1 }];
  if (header.length > MAX_ACCEPT_LENGTH) return undefined;
  const ranges: Array<MediaRange & { i: number }> = [];
  let at = 0;
  while (at < header.length) {
    const parsed = parseHeader(header, { comma: true, start: at });
    const type = parsed.type.trim().toLowerCase();
    const params = lowerParams(parsed.parameters);
    const q = qOf(params.q);
    delete params.q;
    if (TOKEN_TYPE.test(type) && !(type.startsWith('*/') && type !== '*/*')) ranges.push({ type, params, q, i: ranges.length });
    if (parsed.index <= at) break;
    at = parsed.index + 1;
  }
  return ranges.sort((a, b) => b.q - a.q || a.i - b.i).map(({ type, params, q }) => ({ type, params, q }));
}

/** Whether a range is `*∕*` or `type/*`. */
export function isWildcard(range: MediaType): boolean {
  return range.type === '*/*' || range.type.endsWith('/*');
}

/**
 * The offers the client accepts, most preferred first (higher q; then the more specific match;
 * then the order of `offers`, so put the server's default first). Offers are media type strings
 * and may carry parameters (`multipart/related; type="application/dicom"`).
 */
export function preferredMediaTypes(header: string | undefined, offers: readonly string[]): string[] {
  const accept = header === undefined || header.trim() === '' ? '*/*' : header;
  if (accept.length > MAX_ACCEPT_LENGTH) return [];
  return new Negotiator({ headers: { accept } }).mediaTypes([...offers]);
}

/** The client's preferred offer, or undefined when none is acceptable (→ 406). */
export function preferredMediaType(header: string | undefined, offers: readonly string[]): string | undefined {
  return preferredMediaTypes(header, offers)[0];
}

/**
 * The quality the client gives one offer: q of the most specific range that matches it
 * (RFC 9110 §12.5.1), 0 when none matches or that range has q=0. A range's parameters must all
 * be the offer's too (`*` matches any value).
 */
export function qualityOf(ranges: readonly MediaRange[], offer: MediaType): number {
  let best = -1;
  let q = 0;
  for (const r of ranges) {
    const s = specificity(r, offer);
    if (s > best) {
      best = s;
      q = r.q;
    }
  }
  return best < 0 ? 0 : q;
}

/** Specificity of a range matching an offer (-1: no match): exact type 2, `type/*` 1, `*∕*` 0, +4 with parameters. */
export function specificity(range: MediaType, offer: MediaType): number {
  let s: number;
  if (range.type === offer.type) s = 2;
  else if (range.type === '*/*') s = 0;
  else if (range.type.endsWith('/*') && offer.type.startsWith(range.type.slice(0, -1))) s = 1;
  else return -1;
  const keys = Object.keys(range.params);
  for (const k of keys) {
    const want = range.params[k]!;
    if (want !== '*' && want.toLowerCase() !== (offer.params[k] ?? '').toLowerCase()) return -1;
  }
  return keys.length > 0 ? s + 4 : s;
}
