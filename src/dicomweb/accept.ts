/**
 * Tolerant Accept parsing and negotiation for WADO-RS / QIDO-RS (PS3.18 §8.7.3;
 * product ask 8). Quoted and unquoted parameters, q-values, `transfer-syntax=*`, wildcards.
 * Each resource kind has an allow-list; the result is the normalised Accept sent upstream (never
 * the client's raw header). Nothing acceptable → 406 before any I/O (decisions.md D40).
 */
import { GatewayError } from '../http/errors.js';

export interface MediaRange {
  type: string; // lower-case "type/subtype"
  params: Record<string, string>; // lower-case keys, unquoted values
  q: number;
}

/** Split on commas outside quotes, then on semicolons outside quotes. */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '"') quoted = !quoted;
    if (ch === '\\' && quoted && i + 1 < s.length) {
      cur += ch + s[++i];
      continue;
    }
    if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export function parseAccept(header: string | undefined): MediaRange[] {
  if (header === undefined || header.trim() === '') return [{ type: '*/*', params: {}, q: 1 }];
  if (header.length > 4096) throw new GatewayError(400, 'GW_DICOMWEB_BAD_ACCEPT', 'Accept header too long');
  const ranges: MediaRange[] = [];
  for (const part of splitOutsideQuotes(header, ',')) {
    if (!part.trim()) continue;
    const [typeRaw, ...paramRaw] = splitOutsideQuotes(part, ';');
    const type = typeRaw!.trim().toLowerCase();
    if (!/^[a-z0-9!#$&^_.+*-]+\/[a-z0-9!#$&^_.+*-]+$/.test(type)) continue; // ignore garbage ranges
    const params: Record<string, string> = {};
    let q = 1;
    for (const p of paramRaw) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const k = p.slice(0, eq).trim().toLowerCase();
      let v = p.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
      if (k === 'q') {
        const n = Number(v);
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 1;
      } else params[k] = v;
    }
    if (q > 0) ranges.push({ type, params, q });
  }
  // stable sort by q (highest first); the client's order breaks ties
  return ranges.map((r, i) => ({ r, i })).sort((a, b) => b.r.q - a.r.q || a.i - b.i).map((x) => x.r);
}

export type ResourceKind = 'instances' | 'metadata' | 'rendered' | 'frames' | 'bulkdata' | 'search';

const TS_UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;
const RENDERED_TYPES = ['image/jpeg', 'image/png', 'image/gif'];
const FRAME_TYPES = ['application/octet-stream', 'image/jpeg', 'image/jls', 'image/jp2', 'image/jpx', 'image/dicom-rle', 'image/jxl', 'video/mpeg', 'video/mp4', 'video/h265'];

function tsParam(r: MediaRange): string {
  const ts = r.params['transfer-syntax'];
  if (ts === undefined) return '';
  if (ts !== '*' && !(TS_UID.test(ts) && ts.length <= 64)) throw new GatewayError(400, 'GW_DICOMWEB_BAD_ACCEPT', 'transfer-syntax must be a UID or *');
  return `; transfer-syntax=${ts}`;
}

function q(r: MediaRange): string {
  return r.q < 1 ? `; q=${r.q}` : '';
}

/**
 * Negotiate one resource kind; returns the Accept header value to send upstream, or throws 406.
 * multipart `type` may be quoted or not; an absent `type` on multipart/related means the
 * resource's default part type.
 */
export function negotiate(kind: ResourceKind, header: string | undefined): string {
  const ranges = parseAccept(header);
  const out: string[] = [];
  for (const r of ranges) {
    const [major] = r.type.split('/');
    const wildcard = r.type === '*/*' || (major !== 'multipart' && r.type.endsWith('/*'));
    switch (kind) {
      case 'instances': {
        if (wildcard || (r.type === 'multipart/related' && (r.params.type === undefined || r.params.type.toLowerCase() === 'application/dicom'))) {
          out.push(`multipart/related; type="application/dicom"${r.type === 'multipart/related' ? tsParam(r) : ''}${q(r)}`);
        }
        break;
      }
      case 'metadata':
      case 'search': {
        if (r.type === 'application/dicom+json' || r.type === 'application/json' || r.type === '*/*' || r.type === 'application/*') out.push('application/dicom+json');
        break;
      }
      case 'rendered': {
        if (RENDERED_TYPES.includes(r.type)) out.push(r.type + q(r));
        else if (r.type === '*/*' || r.type === 'image/*') out.push('image/jpeg' + q(r));
        break;
      }
      case 'frames':
      case 'bulkdata': {
        const partType = r.type === 'multipart/related' ? (r.params.type ?? 'application/octet-stream').toLowerCase() : undefined;
        if (partType && (FRAME_TYPES.includes(partType) || (kind === 'bulkdata' && partType === 'application/octet-stream'))) {
          out.push(`multipart/related; type="${partType}"${tsParam(r)}${q(r)}`);
        } else if (kind === 'bulkdata' && r.type === 'application/octet-stream') {
          out.push('application/octet-stream' + q(r));
        } else if (wildcard) {
          out.push(`multipart/related; type="application/octet-stream"${q(r)}`);
        }
        break;
      }
    }
  }
  if (out.length === 0) {
    throw new GatewayError(406, 'GW_DICOMWEB_NOT_ACCEPTABLE', `None of the acceptable media types is supported for this ${kind} resource`);
  }
  return [...new Set(out)].join(', ');
}
