/**
 * FHIR format negotiation (_format, then Accept) and serialisation. JSON always; XML because the
 * MHD Document Responder SHALL support it (ITI TF-2 3.67.4.1.2.2, App. Z.6), via the maintained
 * `fhir` package rather than a hand-written serializer.
 */
import type { Request, Response } from 'express';
import { Fhir } from 'fhir';
import { GatewayError } from '../http/errors.js';
import { parseAccept, type MediaRange } from '../http/media-type.js';

export type FhirFormat = 'json' | 'xml';

const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir', 'json']);
const XML_TYPES = new Set(['application/fhir+xml', 'application/xml', 'text/xml', 'application/xml+fhir', 'xml']);

let fhirXml: Fhir | undefined;
function xml(): Fhir {
  return (fhirXml ??= new Fhir());
}

/** Acceptable media ranges of an Accept header, highest q first (q=0 ranges dropped). */
export function acceptedRanges(header: string | undefined): MediaRange[] {
  return (parseAccept(header) ?? []).filter((r) => r.q > 0);
}

/** The decision per request: the router checks early (406 before any work), handlers reuse it. */
const decided = new WeakMap<Request, FhirFormat>();

/** Decide the response format; 406 when nothing acceptable was asked for. */
export function negotiateFhirFormat(req: Request): FhirFormat {
  let f = decided.get(req);
  if (f === undefined) {
    f = decideFormat(formatParam(req), req.get('accept'));
    decided.set(req, f);
  }
  return f;
}

/** The single `_format` value, or undefined (absent, or repeated: then Accept decides). */
function formatParam(req: Request): string | undefined {
  // req.query re-parses the whole query string on every read: only look when _format can be there.
  if (!req.originalUrl.includes('_format')) return undefined;
  const v = req.query._format;
  return typeof v === 'string' ? v.toLowerCase().split(';')[0]!.trim() : undefined;
}

function decideFormat(fmt: string | undefined, accept: string | undefined): FhirFormat {
  if (fmt) {
    if (JSON_TYPES.has(fmt)) return 'json';
    if (XML_TYPES.has(fmt)) return 'xml';
    throw new GatewayError(406, 'GW_NOT_ACCEPTABLE', `_format "${fmt}" is not supported; use json or xml`, { expression: ['_format'] });
  }
  const ranges = acceptedRanges(accept);
  if (ranges.length === 0) return 'json';
  for (const r of ranges) {
    if (JSON_TYPES.has(r.type) || r.type === '*/*' || r.type === 'application/*') return 'json';
    if (XML_TYPES.has(r.type) || r.type === 'text/*') return 'xml';
  }
  throw new GatewayError(406, 'GW_NOT_ACCEPTABLE', 'None of the media types in Accept can be produced; use application/fhir+json or application/fhir+xml');
}

export function serialize(resource: unknown, format: FhirFormat): { body: string; contentType: string } {
  if (format === 'xml') return { body: xml().objToXml(resource as object), contentType: 'application/fhir+xml; charset=utf-8' };
  return { body: JSON.stringify(resource), contentType: 'application/fhir+json; charset=utf-8' };
}

/** Parse an XML FHIR resource into JSON form; 400 on malformed XML. */
export function parseFhirXml(text: string): unknown {
  // The XML converter is lenient with a cut-off document: require the root element to be closed
  // (XML 1.0 §2.1 well-formedness) and a resource to come out, so truncation is a parse error.
  const body = text.replace(/^\uFEFF/, '').replace(/<\?xml[^>]*\?>/g, '').replace(/<!--[\s\S]*?-->/g, '').trim();
  const root = /^<([A-Za-z][\w.-]*)[\s>/]/.exec(body)?.[1];
  const closed = root !== undefined && (new RegExp(`</${root}\\s*>$`).test(body) || /^<[^>]*\/>$/.test(body));
  let out: unknown;
  try {
    out = closed ? xml().xmlToObj(text) : undefined;
  } catch {
    out = undefined;
  }
  if (typeof (out as { resourceType?: unknown })?.resourceType !== 'string') throw new GatewayError(400, 'GW_BODY_PARSE', 'Request body is not well-formed FHIR XML (a truncated document, or no resource root element)');
  return out;
}

/** A resource already serialised as JSON text (stored JSON spliced into a Bundle unparsed). */
export interface RawResource {
  resourceType: string;
  id: string;
  json: string;
}

/**
 * Send a searchset Bundle as FHIR JSON: `head` (the Bundle without `entry`) serialised, then one
 * entry per raw resource with its stored JSON text spliced in verbatim, then `tail` entries (e.g.
 * the OperationOutcome). Same bytes as JSON.stringify of the parsed equivalent, without parsing.
 */
export function sendSearchsetWithRaw(res: Response, head: object, raws: ReadonlyArray<{ fullUrl: string; json: string }>, tail: readonly object[]): void {
  const parts: string[] = [];
  for (const r of raws) parts.push(`{"fullUrl":${JSON.stringify(r.fullUrl)},"resource":${r.json},"search":{"mode":"match"}}`);
  for (const t of tail) parts.push(JSON.stringify(t));
  const text = JSON.stringify(head);
  sendText(res, 200, 'application/fhir+json; charset=utf-8', parts.length ? `${text.slice(0, -1)},"entry":[${parts.join(',')}]}` : text);
}

/**
 * Write a complete text response with node's own API (express's res.send would copy the string
 * into a Buffer and send headers and body as two chunks). HEAD gets the headers only (node).
 */
export function sendText(res: Response, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export function sendResource(req: Request, res: Response, resource: unknown, status = 200, format?: FhirFormat): void {
  const { body, contentType } = serialize(resource, format ?? negotiateFhirFormat(req));
  sendText(res, status, contentType, body);
}
