/**
 * Accept negotiation for WADO-RS / QIDO-RS (PS3.18 §8.7.3) on the shared media type grammar
 * (src/http/media-type.ts): quoted and unquoted parameters, q-values, `transfer-syntax=*`,
 * wildcards. Each resource kind has an allow-list; the result is the normalised Accept sent
 * upstream (never the client's raw header). Nothing acceptable → 406 before any I/O
 * (decisions.md D40).
 */
import { GatewayError } from '../http/errors.js';
import { parseAccept as parseMediaRanges, qualityOf, type MediaRange } from '../http/media-type.js';
import { memo } from '../model/memo.js';

export type { MediaRange };

/** Media ranges of an Accept header, highest q first; 400 when the header is too long. */
export function dicomwebAcceptRanges(header: string | undefined): MediaRange[] {
  const ranges = parseMediaRanges(header);
  if (!ranges) throw new GatewayError(400, 'GW_DICOMWEB_BAD_ACCEPT', 'Accept header too long');
  return ranges;
}

export type ResourceKind = 'instances' | 'metadata' | 'rendered' | 'frames' | 'bulkdata' | 'search';

const TS_UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;
/** Rendered media types, the default (PS3.18 §8.7.3: image/jpeg for single-frame images) first. */
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
  // A viewer sends the same Accept with every frame: the answer (a pure function of both) is kept.
  const key = header === undefined ? kind : `${kind}\n${header}`;
  return memo(negotiated, 256, key, () => negotiateRanges(kind, header));
}

/** Successful negotiations by kind + Accept (refusals throw and are not kept). */
const negotiated = new Map<string, string>();

function negotiateRanges(kind: ResourceKind, header: string | undefined): string {
  const ranges = dicomwebAcceptRanges(header);
  if (kind === 'rendered') return rendered(ranges);
  const out: string[] = [];
  for (const r of ranges) {
    if (r.q === 0) continue;
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
  if (out.length === 0) throw notAcceptable(kind);
  return [...new Set(out)].join(', ');
}

function notAcceptable(kind: ResourceKind): GatewayError {
  return new GatewayError(406, 'GW_DICOMWEB_NOT_ACCEPTABLE', `None of the acceptable media types is supported for this ${kind} resource`);
}

/**
 * Rendered resources (PS3.18 §8.7.3): `image/*` and `*∕*` ask for the default type, JPEG; types the
 * client names keep their q. A browser's `<img>` Accept (`image/avif,image/webp,…,image/*,*∕*;q=0.8`)
 * therefore gets JPEG. When JPEG itself is excluded (q=0) a wildcard still admits PNG and GIF.
 */
function rendered(ranges: MediaRange[]): string {
  const jpegQ = qualityOf(ranges, { type: 'image/jpeg', params: {} });
  const offers = RENDERED_TYPES.map((type, i) => ({ type, i, q: qualityOf(ranges, { type, params: {} }), named: ranges.some((r) => r.type === type && r.q > 0) }))
    .filter((o) => o.q > 0 && (o.named || o.type === 'image/jpeg' || jpegQ === 0))
    .sort((a, b) => b.q - a.q || Number(b.named) - Number(a.named) || a.i - b.i);
  if (offers.length === 0) throw notAcceptable('rendered');
  return offers.map((o) => o.type + (o.q < 1 ? `; q=${o.q}` : '')).join(', ');
}
