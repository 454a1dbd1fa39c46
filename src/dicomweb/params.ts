/**
 * Path validation for /dicomweb (decisions.md D40):
 * UIDs are digits and dots without leading zeros, ≤ 64 chars (PS3.5 §9.1); frame lists are
 * ascending-or-not positive integers; traversal in any form is refused before routing.
 */
import type { NextFunction, Request, Response } from 'express';
import { isValidUid } from '../dicom/uid.js';
import { GatewayError } from '../http/errors.js';

export function uidParam(req: Request, name: string): string {
  const v = (req.params as Record<string, string | undefined>)[name];
  if (typeof v !== 'string' || !isValidUid(v)) {
    throw new GatewayError(400, 'GW_DICOMWEB_BAD_UID', `Path parameter "${name}" is not a valid DICOM UID (digits and dots, no leading zeros, at most 64 characters)`);
  }
  return v;
}

export const MAX_FRAMES_PER_REQUEST = 10_000;

/** `{frames}`: comma-separated 1-based frame numbers (PS3.18 §10.4.1.6). */
export function frameList(req: Request): number[] {
  const v = (req.params as Record<string, string | undefined>).frames ?? '';
  if (!/^[1-9]\d{0,8}(,[1-9]\d{0,8})*$/.test(v)) throw new GatewayError(400, 'GW_DICOMWEB_BAD_FRAMES', 'Frame list must be comma-separated positive integers');
  const frames = v.split(',').map(Number);
  if (frames.length > MAX_FRAMES_PER_REQUEST) throw new GatewayError(400, 'GW_DICOMWEB_BAD_FRAMES', `At most ${MAX_FRAMES_PER_REQUEST} frames per request`);
  return frames;
}

/**
 * Refuse dot segments, encoded dots/slashes/backslashes and backslashes anywhere in a /dicomweb
 * path — before routing, so no variant reaches a handler or an upstream.
 */
export function rejectTraversal(req: Request, _res: Response, next: NextFunction): void {
  const raw = req.originalUrl.split('?')[0]!;
  if (/%2e|%2f|%5c|%00|\\/i.test(raw) || raw.split('/').some((s) => s === '.' || s === '..')) {
    next(new GatewayError(400, 'GW_DICOMWEB_BAD_PATH', 'Path contains dot segments or encoded separators'));
    return;
  }
  next();
}
