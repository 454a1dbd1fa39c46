/**
 * Search syntax, parsed from the raw query string ourselves (not from express's extended parser
 * and not with @medplum/core's parseSearchRequest, which guesses prefixes on values such as
 * "ap123456", decisions.md D45). FHIR R4 3.1.1.4 (search syntax), 2.21.0.7 (escaping).
 */
import { GatewayError } from '../../http/errors.js';

export interface RawParam {
  /** Parameter name without modifier, e.g. "patient.identifier" */
  name: string;
  /** Text after ':' in the key, e.g. "missing", "identifier" */
  modifier?: string;
  /** Decoded value, still with FHIR escapes (\, \| \$ \\) */
  value: string;
}

export const badParam = (param: string, message: string, code = 'GW_SEARCH_INVALID') => new GatewayError(400, code, message, { expression: [param] });

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw badParam(what, 'Malformed percent-encoding in the query string', 'GW_SEARCH_ENCODING');
  }
}

/** application/x-www-form-urlencoded / URL query → ordered parameter list (repetitions kept). */
export function parseQueryString(qs: string): RawParam[] {
  const out: RawParam[] = [];
  for (const part of qs.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const key = decode(rawKey, rawKey);
    const value = eq === -1 ? '' : decode(part.slice(eq + 1), key);
    const colon = key.indexOf(':');
    out.push(colon === -1 ? { name: key, value } : { name: key.slice(0, colon), modifier: key.slice(colon + 1), value });
  }
  return out;
}

/** Split on commas not escaped with a backslash (FHIR 2.21.0.7: OR). */
export function splitOr(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) {
      cur += c + value[i + 1];
      i++;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Remove FHIR search escapes (\, \| \$ \\). */
export function unescapeValue(v: string): string {
  return v.replace(/\\([,|$\\])/g, '$1');
}

export interface TokenValue {
  /** undefined: any system; '': no system (the `|value` form) */
  system?: string;
  /** undefined: any value (the `system|` form) */
  value?: string;
}

/** Strip surrounding double quotes: IG examples write related:identifier="12345" (decisions.md D17). */
function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/** Token forms (FHIR 3.1.1.4.4): value | system|value | |value | system| . */
export function parseToken(raw: string, param: string): TokenValue {
  const s = unquote(raw.trim());
  let bar = -1;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') {
      i++;
      continue;
    }
    if (s[i] === '|') {
      bar = i;
      break;
    }
  }
  if (bar === -1) {
    const value = unquote(unescapeValue(s));
    if (!value) throw badParam(param, `Empty value for search parameter "${param}"`);
    return { value };
  }
  const system = unquote(unescapeValue(s.slice(0, bar)));
  const value = unquote(unescapeValue(s.slice(bar + 1)));
  if (!system && !value) throw badParam(param, `Empty token "|" for search parameter "${param}"`);
  return value ? { system, value } : { system };
}

export type DatePrefix = 'eq' | 'ne' | 'lt' | 'gt' | 'le' | 'ge' | 'sa' | 'eb';
const PREFIXES = new Set<DatePrefix>(['eq', 'ne', 'lt', 'gt', 'le', 'ge', 'sa', 'eb']);

export interface DateValue {
  prefix: DatePrefix;
  /** Inclusive lower bound of the value's implicit range (ISO instant, UTC) */
  lo: string;
  /** Exclusive upper bound of the value's implicit range */
  hi: string;
}

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * A FHIR date/dateTime search value with its precision (FHIR 3.1.1.4.2): "2024" covers the whole
 * year. Values without a zone are taken as UTC (the server's zone; documented in CONFORMANCE.md).
 */
export function parseDate(raw: string, param: string): DateValue {
  let s = raw.trim();
  let prefix: DatePrefix = 'eq';
  const p = s.slice(0, 2) as DatePrefix;
  if (PREFIXES.has(p)) {
    prefix = p;
    s = s.slice(2);
  } else if (/^[a-z]{2}/.test(s)) {
    throw badParam(param, `Unsupported prefix "${s.slice(0, 2)}" on date parameter "${param}" (use eq, ne, lt, gt, le, ge, sa or eb)`);
  }
  const m = DATE_RE.exec(s);
  if (!m) throw badParam(param, `Invalid date "${raw}" for search parameter "${param}"`);
  const [, y, mo, d, hh, mi, ss, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) : 1;
  const day = d ? Number(d) : 1;
  if (month < 1 || month > 12 || day < 1 || day > 31 || (hh && (Number(hh) > 23 || Number(mi) > 59 || Number(ss ?? 0) > 59))) {
    throw badParam(param, `Invalid date "${raw}" for search parameter "${param}"`);
  }
  if (hh !== undefined && mi !== undefined) {
    const offsetMin = !tz || tz === 'Z' ? 0 : (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
    const fracMs = frac ? Number(`0.${frac}`) * 1000 : 0;
    const base = Date.UTC(year, month - 1, day, Number(hh), Number(mi), Number(ss ?? 0)) - offsetMin * 60_000;
    if (Number.isNaN(base)) throw badParam(param, `Invalid date "${raw}" for search parameter "${param}"`);
    const width = frac ? Math.max(10 ** (3 - frac.length), 0.001) : ss !== undefined ? 1000 : 60_000;
    return { prefix, lo: isoMicros(base + fracMs), hi: isoMicros(base + fracMs + width) };
  }
  const lo = Date.UTC(year, month - 1, day);
  const hi = d ? Date.UTC(year, month - 1, day + 1) : mo ? Date.UTC(year, month, 1) : Date.UTC(year + 1, 0, 1);
  if (d && new Date(lo).getUTCMonth() !== month - 1) throw badParam(param, `Invalid date "${raw}" for search parameter "${param}"`);
  return { prefix, lo: isoMicros(lo), hi: isoMicros(hi) };
}

/** ISO instant from (possibly fractional) epoch milliseconds, microsecond precision. */
function isoMicros(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.round((ms - whole) * 1000);
  const iso = new Date(whole).toISOString(); // …sss Z
  return micros ? `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z` : iso;
}

/** Reference value → the id of the target (Patient/123, 123, or an absolute URL on our base). */
export function parseReference(raw: string, param: string, targetType: string): string | undefined {
  const s = unescapeValue(unquote(raw.trim()));
  if (!s) throw badParam(param, `Empty reference for search parameter "${param}"`);
  const m = /(?:^|\/)([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(s);
  if (m) return m[1] === targetType ? m[2]! : undefined; // a reference to another type matches nothing
  if (/^[A-Za-z0-9\-.]{1,64}$/.test(s)) return s;
  throw badParam(param, `Invalid reference "${raw}" for search parameter "${param}"`);
}
