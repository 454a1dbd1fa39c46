/**
 * Reading request bodies with a size limit (413) and a media-type allow-list (415). Routes call
 * this themselves so that each one states what it accepts; nothing is parsed globally.
 */
import type { Request } from 'express';
import { GatewayError } from './errors.js';
import { parseContentType } from './media-type.js';

/** Media type without parameters, lower-cased ("" when absent or not a media type). */
export function mediaType(req: Request): string {
  return parseContentType(req.get('content-type'))?.type ?? '';
}

export function requireMediaType(req: Request, allowed: readonly string[]): string {
  const mt = mediaType(req);
  if (!allowed.includes(mt)) {
    throw new GatewayError(415, 'GW_UNSUPPORTED_MEDIA_TYPE', `Content-Type "${mt || '(none)'}" is not supported here; use ${allowed.join(' or ')}`);
  }
  return mt;
}

/** Read the whole body into one Buffer, refusing more than `limit` bytes (early on Content-Length). */
export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  if (req.get('content-encoding') && req.get('content-encoding') !== 'identity') {
    throw new GatewayError(415, 'GW_UNSUPPORTED_ENCODING', 'Content-Encoding is not supported; send the body uncompressed');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.unpipe();
      req.resume(); // drain so the 413 can be written on a keep-alive socket
      throw tooLarge(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError(413, 'GW_BODY_TOO_LARGE', `Request body exceeds the maximum of ${limit} bytes`);
}

/** Parse a JSON body; 400 with a clear message on syntax errors. */
export function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new GatewayError(400, 'GW_BODY_PARSE', 'Request body is not valid JSON');
  }
}
