/**
 * Per-request context: the middleware that honours or generates X-Request-Id and gives the
 * request its child logger. No AsyncLocalStorage: nothing read it, and a store that is entered
 * once switches on Node's promise hooks for every promise of the process from then on.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
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

const BASE_LOG = Symbol('baseLog');
const CHILD_LOG = Symbol('childLog');
type LoggedRequest = Request & { [BASE_LOG]?: Logger; [CHILD_LOG]?: Logger };

// req.log is one accessor on Express's request prototype (not a property defined per request): the
// child logger is made when first used, since most requests log nothing (pino's child() copies and
// serialises its bindings every time).
Object.defineProperty(express.request, 'log', {
  configurable: true,
  get(this: LoggedRequest) {
    return (this[CHILD_LOG] ??= this[BASE_LOG]?.child({ requestId: this.requestId }));
  },
  set(this: LoggedRequest, v: Logger) {
    this[CHILD_LOG] = v;
  },
});

export function requestIdMiddleware(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get('x-request-id');
    req.requestId = incoming && SAFE_ID.test(incoming) ? incoming : randomUUID();
    (req as LoggedRequest)[BASE_LOG] = log;
    res.setHeader('X-Request-Id', req.requestId);
    next();
  };
}
