/**
 * The one place that maps errors to HTTP. Bad input is a GatewayError (or medplum's
 * OperationOutcomeError) with a 4xx status and a stable GW_* code; anything else is a bug and
 * becomes a 500 whose body says nothing internal (details go to the log with the request id).
 * /fhir answers with an OperationOutcome; /dicomweb (and the rest) with { code, message, requestId }.
 */
import { getStatus, OperationOutcomeError } from '@medplum/core';
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { NextFunction, Request, Response } from 'express';

/** FHIR issue-type codes used with each HTTP status (FHIR R4 valueset issue-type). */
const ISSUE_TYPE_BY_STATUS: Record<number, OperationOutcomeIssue['code']> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  405: 'not-supported',
  406: 'not-supported',
  409: 'conflict',
  410: 'deleted',
  412: 'conflict',
  413: 'too-costly',
  415: 'not-supported',
  422: 'processing',
  429: 'throttled',
  500: 'exception',
  502: 'transient',
  503: 'transient',
  504: 'timeout',
};

export class GatewayError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly extra: { expression?: string[]; issues?: OperationOutcomeIssue[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

export function operationOutcome(status: number, code: string, message: string, requestId?: string, expression?: string[]): OperationOutcome {
  const issue: OperationOutcomeIssue = {
    severity: status >= 500 ? 'fatal' : 'error',
    code: ISSUE_TYPE_BY_STATUS[status] ?? (status >= 500 ? 'exception' : 'invalid'),
    details: { coding: [{ system: 'urn:mado-gateway:error', code }], text: message },
    diagnostics: requestId ? `requestId=${requestId}` : undefined,
    expression,
  };
  return { resourceType: 'OperationOutcome', issue: [issue] };
}

interface HttpError {
  status: number;
  code: string;
  message: string;
  expression?: string[];
  issues?: OperationOutcomeIssue[];
  headers?: Record<string, string>;
}

/** Normalise anything thrown into an HttpError; unknown errors become an opaque 500. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof GatewayError) return { status: err.status, code: err.code, message: err.message, expression: err.extra.expression, issues: err.extra.issues, headers: err.extra.headers };
  if (err instanceof OperationOutcomeError) {
    const status = getStatus(err.outcome);
    // medplum maps some unknown errors to 400 with the internal message; only trust 4xx outcomes.
    if (status >= 400 && status < 500) {
      return { status, code: 'GW_FHIR_' + status, message: err.outcome.issue?.[0]?.details?.text ?? 'Invalid request', issues: err.outcome.issue };
    }
  }
  // body-parser / raw-body errors carry a status and a type
  const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean };
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500 && e.type) {
    switch (e.type) {
      case 'entity.too.large':
        return { status: 413, code: 'GW_BODY_TOO_LARGE', message: 'Request body exceeds the configured maximum size' };
      case 'entity.parse.failed':
        return { status: 400, code: 'GW_BODY_PARSE', message: 'Request body is not valid JSON' };
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return { status: 415, code: 'GW_UNSUPPORTED_ENCODING', message: 'Unsupported content encoding or charset' };
      case 'request.aborted':
        return { status: 400, code: 'GW_REQUEST_ABORTED', message: 'Request aborted by the client' };
      default:
        return { status, code: 'GW_BAD_REQUEST', message: 'Bad request' };
    }
  }
  return { status: 500, code: 'GW_INTERNAL', message: 'Internal server error' };
}

export function isFhirPath(path: string): boolean {
  return path === '/fhir' || path.startsWith('/fhir/');
}

export function sendError(req: Request, res: Response, err: HttpError): void {
  if (res.headersSent) {
    // Too late for a status: break the connection rather than end a response that looks complete.
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(err.headers ?? {})) res.setHeader(k, v);
  if (isFhirPath(req.path)) {
    const outcome = operationOutcome(err.status, err.code, err.message, req.requestId, err.expression);
    if (err.issues?.length) outcome.issue = [...outcome.issue!, ...err.issues.map((i) => ({ ...i }))];
    res.status(err.status).type('application/fhir+json').send(JSON.stringify(outcome));
  } else {
    res.status(err.status).json({ code: err.code, message: err.message, requestId: req.requestId });
  }
}

/** Express error middleware (last in the chain). */
export function errorHandler() {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const h = toHttpError(err);
    if (h.status >= 500) req.log?.error({ err: { name: (err as Error)?.name, message: (err as Error)?.message, stack: (err as Error)?.stack }, code: h.code }, 'request failed');
    else req.log?.debug({ code: h.code, status: h.status }, 'request rejected');
    sendError(req, res, h);
  };
}

export const notFound = (what = 'Resource') => new GatewayError(404, 'GW_NOT_FOUND', `${what} not found`);
export const badRequest = (message: string, code = 'GW_BAD_REQUEST', expression?: string[]) => new GatewayError(400, code, message, { expression });
