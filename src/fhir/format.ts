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

/** Decide the response format; 406 when nothing acceptable was asked for. */
export function negotiateFhirFormat(req: Request): FhirFormat {
  const fmt = typeof req.query._format === 'string' ? req.query._format.toLowerCase().split(';')[0]!.trim() : undefined;
  if (fmt) {
    if (JSON_TYPES.has(fmt)) return 'json';
    if (XML_TYPES.has(fmt)) return 'xml';
    throw new GatewayError(406, 'GW_NOT_ACCEPTABLE', `_format "${fmt}" is not supported; use json or xml`, { expression: ['_format'] });
  }
  const ranges = acceptedRanges(req.get('accept'));
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
  try {
    return xml().xmlToObj(text);
  } catch {
    throw new GatewayError(400, 'GW_BODY_PARSE', 'Request body is not valid FHIR XML');
  }
}

/** A resource already serialised as JSON text (stored JSON spliced into a Bundle unparsed). */
export interface RawResource {
  resourceType: string;
  id: string;
  json: string;
}

/** Stand-in string for the i-th raw resource; the per-response nonce keeps client-supplied text from matching. */
export function rawPlaceholder(nonce: string, i: number): string {
  return `\u0000gw-raw:${nonce}:${i}`;
}

/** Send `body` as FHIR JSON with each rawPlaceholder(nonce, i) string replaced by raws[i] verbatim. */
export function sendJsonWithRaw(res: Response, body: unknown, nonce: string, raws: string[]): void {
  const text = JSON.stringify(body);
  const re = new RegExp(`"\\\\u0000gw-raw:${nonce}:(\\d+)"`, 'g');
  res.status(200).setHeader('Content-Type', 'application/fhir+json; charset=utf-8');
  res.send(text.replace(re, (_m, i: string) => raws[Number(i)]!));
}

export function sendResource(req: Request, res: Response, resource: unknown, status = 200, format?: FhirFormat): void {
  const { body, contentType } = serialize(resource, format ?? negotiateFhirFormat(req));
  res.status(status).setHeader('Content-Type', contentType);
  res.send(body);
}
