/**
 * The security chain app.ts mounts before the /dicomweb and /fhir routers, in this order:
 * HSTS (TLS only) → audit recorder (so every outcome below is audited, 401s included) →
 * authentication (req.principal) → rate limit per identity → policy (route → action → decision,
 * patient filter on req.principal) → per-request time limit for non-streaming FHIR routes.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import client from 'prom-client';
import type { AppDeps } from '../deps.js';
import { createAuditRecorder, type AuditRecorder, type AuditRecorderOptions } from '../audit/recorder.js';
import { createSyslogExporter, type SyslogExporter } from '../audit/syslog.js';
import { createPatientResolver } from '../store/principal-store.js';
import { authenticationMiddleware } from './authenticate.js';
import { createBreakGlassNotifier } from './break-glass.js';
import { classifyRequest, policyMiddleware } from './policy.js';
import { handlerTimeoutMiddleware, hstsMiddleware, rateLimitMiddleware } from './request-limits.js';

export interface Security {
  handlers: RequestHandler[];
  audit?: AuditRecorder;
  syslog?: SyslogExporter;
  /** Flush the audit queue and stop exporters (shutdown) */
  close(): Promise<void>;
}

/** Parts the composition root may choose; each defaults to the production one. */
export interface SecurityParts {
  /** Builds the audit recorder (undefined result: an app without one, e.g. a benchmark baseline) */
  makeAuditRecorder?: (o: AuditRecorderOptions) => AuditRecorder | undefined;
}

export function createSecurity(deps: AppDeps & { registry?: client.Registry }, parts: SecurityParts = {}): Security {
  const { config, db, log } = deps;
  const syslog = config.audit.syslog ? createSyslogExporter(config.audit.syslog, log) : undefined;
  const makeAuditRecorder = parts.makeAuditRecorder ?? createAuditRecorder;
  const audit = makeAuditRecorder({ db, log, serverUrl: config.publicBaseUrl, storeQuery: config.audit.storeQuery, classify: classifyRequest, onRecord: syslog ? (r) => syslog.send(r.resource) : undefined });
  if (deps.registry) {
    // An audit trail that silently loses events is worse than none: make the queue observable.
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new client.Gauge({ name, help, registers: [deps.registry!], collect() { this.set(read() ?? 0); } });
    gauge('audit_queue_length', 'AuditEvents waiting to be written', () => audit?.stats().queued);
    gauge('audit_events_written', 'AuditEvents written since start', () => audit?.stats().written);
    gauge('audit_events_dropped', 'AuditEvents dropped (queue full) since start', () => audit?.stats().dropped);
    gauge('audit_write_failures', 'Failed audit batch writes since start', () => audit?.stats().failures);
    gauge('audit_events_rejected', 'AuditEvents the database refused even with unstorable characters replaced (lost) since start', () => audit?.stats().rejected);
    if (syslog) {
      gauge('audit_syslog_queue_length', 'Records waiting for the syslog collector', () => syslog.stats().queued);
      gauge('audit_syslog_dropped', 'Syslog records dropped since start', () => syslog.stats().dropped);
    }
  }
  const handlers: RequestHandler[] = [hstsMiddleware];
  if (audit) handlers.push(audit.middleware);
  handlers.push(authenticationMiddleware(config.auth));
  if (config.rateLimit) handlers.push(rateLimitMiddleware(config.rateLimit.requestsPerMinute));
  handlers.push(
    policyMiddleware({
      auth: config.auth,
      resolver: config.auth.jwt || config.auth.introspection ? createPatientResolver(db) : undefined,
      onBreakGlass: createBreakGlassNotifier(config.auth.breakGlass?.notifyUrl, log),
    }),
  );
  const timeout = handlerTimeoutMiddleware(config.limits.requestTimeoutMs);
  handlers.push((req: Request, res: Response, next: NextFunction) => {
    // WADO-RS and ITI-68 Binary stream their bodies; their upstream timeouts apply instead.
    if (req.path.startsWith('/fhir/') && !req.path.startsWith('/fhir/Binary/')) return timeout(req, res, next);
    next();
  });
  return {
    handlers,
    audit,
    syslog,
    async close() {
      await audit?.close();
      await syslog?.drain(2_000);
      await syslog?.close();
    },
  };
}
