/**
 * pino JSON logger. Redaction by construction: callers log ids, codes and counts only. Request
 * logs carry the route path without its query string (query strings carry PHI, e.g.
 * patient.identifier) and never headers or bodies.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mado-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Defence in depth: these keys must never reach a log line even if a caller passes them.
      redact: { paths: ['req.headers', 'headers', 'authorization', 'body', 'query', '*.authorization', '*.password'], remove: true },
    },
    destination as pino.DestinationStream | undefined,
  );
}

/** The path of a URL without its query string. */
export function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
