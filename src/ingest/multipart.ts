/**
 * multipart/related parsing for STOW-RS (PS3.18 §10.5.1.2, RFC 2387 / RFC 2046 §5.1.1), over a
 * body already read with a size limit. Tolerant where senders differ in practice (quoted or bare
 * boundary, CRLF or bare LF, transport padding after the delimiter, missing part Content-Type),
 * strict where ambiguity would be unsafe (no boundary, no closing delimiter, oversized headers).
 */
import { GatewayError } from '../http/errors.js';
import { parseContentType, type MediaType } from '../http/media-type.js';

/** Content-Type of a request or part; type '' when absent or not a media type. */
export function contentTypeOf(header: string | undefined): MediaType {
  return parseContentType(header) ?? { type: '', params: {} };
}

export interface Part {
  headers: Record<string, string>;
  contentType: MediaType;
  body: Buffer;
}

export interface MultipartLimits {
  maxParts: number;
  maxHeaderBytes: number;
}

const bad = (message: string) => new GatewayError(400, 'GW_MULTIPART_INVALID', message);

/** Split a multipart body into parts. Throws 400 GW_MULTIPART_INVALID on malformed input. */
export function parseMultipart(body: Buffer, boundary: string, limits: MultipartLimits = { maxParts: 10_000, maxHeaderBytes: 16_384 }): Part[] {
  if (!boundary || boundary.length > 200) throw bad('multipart boundary missing or longer than 200 characters (RFC 2046 allows 70)');
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  // First delimiter: at the very start or after a line break (anything before is preamble).
  let pos: number;
  if (body.subarray(0, delim.length).equals(delim)) pos = 0;
  else {
    const at = body.indexOf(Buffer.concat([Buffer.from('\n'), delim]));
    if (at === -1) throw bad('multipart body does not contain the boundary given in Content-Type');
    pos = at + 1;
  }
  const parts: Part[] = [];
  const next = Buffer.concat([Buffer.from('\n'), delim]);
  for (;;) {
    let p = pos + delim.length;
    if (body[p] === 0x2d && body[p + 1] === 0x2d) return parts; // closing delimiter "--boundary--"
    // transport padding, then the line break ending the delimiter line
    while (p < body.length && (body[p] === 0x20 || body[p] === 0x09)) p++;
    if (body[p] === 0x0d) p++;
    if (body[p] !== 0x0a) throw bad('multipart delimiter line is not followed by a line break');
    p++;
    // headers up to the empty line
    let headerEnd = -1;
    let bodyStart = -1;
    for (let q = p; q < body.length && q - p <= limits.maxHeaderBytes; q++) {
      if (body[q] === 0x0a) {
        if (body[q + 1] === 0x0a) { headerEnd = q; bodyStart = q + 2; break; }
        if (body[q + 1] === 0x0d && body[q + 2] === 0x0a) { headerEnd = q; bodyStart = q + 3; break; }
      }
      if (q === p && (body[q] === 0x0a || (body[q] === 0x0d && body[q + 1] === 0x0a))) {
        headerEnd = q;
        bodyStart = body[q] === 0x0a ? q + 1 : q + 2;
        break;
      }
    }
    if (headerEnd === -1) throw bad(`multipart part headers missing their terminating empty line or longer than ${limits.maxHeaderBytes} bytes`);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(p, headerEnd).toString('latin1').split(/\r?\n/)) {
      const c = line.indexOf(':');
      if (c <= 0) continue;
      headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    const end = body.indexOf(next, bodyStart - 1 < 0 ? 0 : bodyStart - 1);
    if (end === -1) throw bad('multipart body is truncated: no closing boundary');
    const partEnd = end > 0 && body[end - 1] === 0x0d ? end - 1 : end;
    parts.push({ headers, contentType: contentTypeOf(headers['content-type']), body: body.subarray(bodyStart, Math.max(bodyStart, partEnd)) });
    if (parts.length > limits.maxParts) throw new GatewayError(413, 'GW_TOO_MANY_PARTS', `more than ${limits.maxParts} parts in one request`);
    pos = end + 1;
  }
}
