/**
 * Break-glass notification: when an emergency purpose of use lifts a patient limit, POST a small
 * JSON notice to config.auth.breakGlass.notifyUrl. Fire-and-forget and bounded (timeout, at most
 * a few in flight) so a slow receiver never delays or breaks the clinical request. The notice
 * carries no patient data: who, when, what kind of access, and the request id to find the
 * flagged AuditEvent.
 */
import type { Request } from 'express';
import type { Logger } from '../log.js';
import type { Action } from './policy.js';
import type { Principal } from './principal.js';

export function createBreakGlassNotifier(notifyUrl: string | undefined, log: Logger, opts: { timeoutMs?: number; maxInFlight?: number } = {}) {
  let inFlight = 0;
  const max = opts.maxInFlight ?? 8;
  const timeoutMs = opts.timeoutMs ?? 3_000;
  return (req: Request, p: Principal, action: Action) => {
    log.warn({ requestId: req.requestId, subject: p.subject, action: action.kind }, 'break-glass access');
    if (!notifyUrl) return;
    if (inFlight >= max) {
      log.warn({ requestId: req.requestId }, 'break-glass notification dropped (too many in flight)');
      return;
    }
    inFlight++;
    const body = JSON.stringify({
      event: 'break-glass',
      time: new Date().toISOString(),
      requestId: req.requestId,
      subject: p.subject,
      issuer: p.issuer,
      clientId: p.clientId,
      action: action.kind,
      resourceType: action.resourceType,
      purposeOfUse: p.purposeOfUse,
    });
    fetch(notifyUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' })
      .then((r) => r.body?.cancel())
      .catch((err: Error) => log.warn({ requestId: req.requestId, err: err.name }, 'break-glass notification failed'))
      .finally(() => inFlight--);
  };
}
