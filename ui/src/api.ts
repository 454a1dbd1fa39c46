/**
 * Every request the page makes goes through here: the gateway's public FHIR and DICOMweb APIs,
 * with the signed-in user's token, so each is authorised and audited like any other client's.
 * Errors carry the gateway's error code (OperationOutcome details.coding, or the DICOMweb
 * { code, message, requestId } body) so the page can show it.
 */
import { accessToken, expireSession } from './auth.js';

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function errorOf(r: Response): Promise<ApiError> {
  const requestId = r.headers.get('x-request-id') ?? undefined;
  let body: Record<string, any> | undefined;
  try {
    body = (await r.json()) as Record<string, any>;
  } catch {
    /* not JSON */
  }
  if (body?.resourceType === 'OperationOutcome') {
    const issue = body.issue?.[0] ?? {};
    const code = issue.details?.coding?.[0]?.code ?? `HTTP_${r.status}`;
    const rid = /requestId=(\S+)/.exec(String(issue.diagnostics ?? ''))?.[1] ?? requestId;
    return new ApiError(r.status, code, issue.details?.text ?? issue.diagnostics ?? r.statusText, rid);
  }
  if (body && typeof body.code === 'string') return new ApiError(r.status, body.code, String(body.message ?? r.statusText), body.requestId ?? requestId);
  return new ApiError(r.status, `HTTP_${r.status}`, r.statusText || 'Request failed', requestId);
}

/** fetch() against the gateway (same origin); throws ApiError on a non-2xx answer. */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = accessToken();
  if (token) headers.set('authorization', `Bearer ${token}`);
  const r = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
  if (r.ok) return r;
  const err = await errorOf(r);
  if (r.status === 401) expireSession();
  throw err;
}

export async function fhir<T = any>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (!headers.has('accept')) headers.set('accept', 'application/fhir+json');
  const r = await api(`/fhir/${path.replace(/^\/+/, '')}`, { ...init, headers });
  return (await r.json()) as T;
}

/** A searchset's resources of one type (entries with search.mode match, or all of that type). */
export function resources<T = any>(bundle: any, type: string, mode: 'match' | 'include' | undefined = undefined): T[] {
  return ((bundle?.entry ?? []) as any[])
    .filter((e) => e?.resource?.resourceType === type && (!mode || !e.search?.mode || e.search.mode === mode))
    .map((e) => e.resource as T);
}

/** A URL the gateway handed out (absolute, on PUBLIC_BASE_URL) → the same path on this origin. */
export function localPath(url: string): string {
  try {
    const u = new URL(url, location.href);
    const i = u.pathname.indexOf('/fhir/');
    return i >= 0 ? u.pathname.slice(i) + u.search : u.pathname + u.search;
  } catch {
    return url;
  }
}
