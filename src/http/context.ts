/**
 * Per-request context: the middleware that honours or generates X-Request-Id and gives the
 * request its child logger. No AsyncLocalStorage: nothing read it, and a store that is entered
 * once switches on Node's promise hooks for every promise of the process from then on.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../log.js';

// A client-supplied id is echoed only when it is short and harmless (no header injection, no PHI-sized blobs).
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      requestId: string;
      log: Logger;
    }
  }
}

export function requestIdMiddleware(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && SAFE_ID.test(incoming) ? incoming : randomUUID();
    req.requestId = requestId;
    // The child logger is made when first used: most requests log nothing (pino's child() copies
    // and serialises its bindings every time).
    let child: Logger | undefined;
    Object.defineProperty(req, 'log', {
      configurable: true,
      enumerable: true,
      get: () => (child ??= log.child({ requestId })),
      set: (v: Logger) => {
        child = v;
      },
    });
    res.setHeader('X-Request-Id', requestId);
    next();
  };
}
