/**
 * CORS on every route, errors and preflight included (product ask 1). Set before anything can
 * fail so error responses carry the headers too.
 */
import type { NextFunction, Request, Response } from 'express';

const ALLOW_HEADERS = 'Authorization, Content-Type, Accept, Accept-Encoding, Prefer, If-None-Match, If-Match, If-Modified-Since, Range, X-Request-Id, traceparent';
const EXPOSE_HEADERS = 'Content-Length, Content-Type, Content-Location, ETag, Last-Modified, Location, X-Request-Id, Warning, Accept-Ranges, Content-Range';

export function corsMiddleware(origins: readonly string[] | '*') {
  const allowed = origins === '*' ? null : new Set(origins);
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.get('origin');
    if (allowed === null) {
      res.setHeader('Access-Control-Allow-Origin', '*');
    } else if (origin && allowed.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.append('Vary', 'Origin');
    } else {
      res.append('Vary', 'Origin');
    }
    res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
    if (req.method === 'OPTIONS' && req.get('access-control-request-method')) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', req.get('access-control-request-headers') ?? ALLOW_HEADERS);
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}
