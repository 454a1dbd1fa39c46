/**
 * GET /fhir/AuditEvent (search) and GET /fhir/AuditEvent/{id} (read): the audit trail, for
 * administrators only (the policy, src/auth/policy.ts, refuses everyone else before this runs).
 * Search parameters: date (ge/gt/le/lt/eq), patient, agent (subject), entity, type, subtype,
 * outcome, action, _count; newest first, keyset paging via an opaque _cursor.
 */
import { refuseUnstorableRequest } from '../routes.js';
import type { AuditEvent, Bundle } from '@medplum/fhirtypes';
import type { Request, Response, Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { readBody, requireMediaType } from '../../http/body.js';
import { badRequest, notFound } from '../../http/errors.js';
import { readAuditEvent, searchAuditEvents, type AuditQuery } from '../../store/audit-store.js';
import { sendResource } from '../format.js';
import { registerResource } from '../registry.js';

const PARAMS = ['date', 'patient', 'agent', 'entity', 'type', 'subtype', 'outcome', 'action', 'break-glass', '_count', '_cursor', '_total', '_format', '_summary'];

export function registerAuditEvent(): void {
  registerResource({
    type: 'AuditEvent',
    profile: 'http://hl7.org/fhir/StructureDefinition/AuditEvent',
    supportedProfiles: ['https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery', 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead'],
    interactions: ['read', 'search-type'],
    searchParams: [
      { name: 'date', type: 'date', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-date', documentation: 'recorded; prefixes ge, gt, le, lt, eq' },
      { name: 'patient', type: 'reference', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-patient' },
      { name: 'agent', type: 'reference', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-agent', documentation: 'the user agent\'s identity (token sub, Basic user name or certificate subject)' },
      { name: 'entity', type: 'reference', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-entity', documentation: 'e.g. DocumentReference/{id}, Binary/{id}, study:{uid}' },
      { name: 'type', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-type' },
      { name: 'subtype', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-subtype', documentation: 'ITI-65, ITI-67, ITI-68, RAD-107, RAD-129, STOW-RS, or a restful interaction' },
      { name: 'outcome', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-outcome' },
      { name: 'action', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/AuditEvent-action' },
      { name: 'break-glass', type: 'token', definition: 'urn:mado-gateway:SearchParameter/AuditEvent-break-glass', documentation: 'true: only break-glass (purposeOfEvent BTG) accesses; false: only the others (gateway-defined)' },
    ],
  });
}

function list(v: unknown): string[] {
  if (v === undefined) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.flatMap((x) => (typeof x === 'string' ? x.split(',') : [])).map((s) => s.trim()).filter(Boolean);
}

/** token "system|code" or "code" → code */
const code = (s: string) => (s.includes('|') ? s.slice(s.indexOf('|') + 1) : s);

function parseDate(raw: string): AuditQuery['dates'] {
  const m = /^(eq|ge|gt|le|lt)?(\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?)$/.exec(raw);
  if (!m) throw badRequest(`Invalid date "${raw.slice(0, 40)}"`, 'GW_INVALID_PARAM', ['date']);
  const op = (m[1] ?? 'eq') as 'eq' | 'ge' | 'gt' | 'le' | 'lt';
  const v = m[2]!;
  // The given precision defines an interval [start, end)
  const start = new Date(v.length === 4 ? `${v}-01-01T00:00:00Z` : v.length === 7 ? `${v}-01T00:00:00Z` : v.length === 10 ? `${v}T00:00:00Z` : /[Z+-]\d*:?\d*$/.test(v.slice(10)) ? v : `${v}Z`);
  if (Number.isNaN(start.getTime())) throw badRequest(`Invalid date "${raw.slice(0, 40)}"`, 'GW_INVALID_PARAM', ['date']);
  const end = new Date(start);
  if (v.length === 4) end.setUTCFullYear(end.getUTCFullYear() + 1);
  else if (v.length === 7) end.setUTCMonth(end.getUTCMonth() + 1);
  else if (v.length === 10) end.setUTCDate(end.getUTCDate() + 1);
  else end.setTime(end.getTime() + (v.includes('.') ? 1 : 1000));
  switch (op) {
    case 'eq':
      return [{ op: 'ge', at: start }, { op: 'lt', at: end }];
    case 'ge':
      return [{ op: 'ge', at: start }];
    case 'gt':
      return [{ op: 'ge', at: end }];
    case 'le':
      return [{ op: 'lt', at: end }];
    case 'lt':
      return [{ op: 'lt', at: start }];
  }
}

export function mountAuditEvent(router: Router, deps: AppDeps): void {
  registerAuditEvent();
  const { db, config } = deps;
  const base = `${config.publicBaseUrl}/fhir`;

  const search = async (req: Request, res: Response, params: Record<string, unknown>) => {
    refuseUnstorableRequest('', params);
    for (const k of Object.keys(params)) {
      const name = k.split(':')[0]!;
      if (!PARAMS.includes(name)) throw badRequest(`Unknown search parameter "${name.slice(0, 40)}" for AuditEvent`, 'GW_UNKNOWN_PARAM', [name]);
    }
    // _summary=count: the total only (FHIR 3.1.1.5.8), as on the other resource types.
    const summary = list(params._summary)[0];
    if (summary !== undefined && summary !== 'count' && summary !== 'false') throw badRequest(`_summary=${summary.slice(0, 20)} is not supported (count or false)`, 'GW_SEARCH_NOT_SUPPORTED', ['_summary']);
    const countRaw = summary === 'count' ? '0' : list(params._count)[0];
    const count = countRaw === undefined ? config.search.defaultCount : Number(countRaw);
    if (!Number.isInteger(count) || count < 0) throw badRequest('_count must be a non-negative integer', 'GW_INVALID_PARAM', ['_count']);
    let after: AuditQuery['after'];
    const cursor = list(params._cursor)[0];
    if (cursor) {
      const [ts, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
      const d = new Date(ts ?? '');
      if (!id || Number.isNaN(d.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) throw badRequest('Invalid _cursor', 'GW_INVALID_PARAM', ['_cursor']);
      after = { recorded: d, id };
    }
    const bg = list(params['break-glass'])[0];
    const q: AuditQuery = {
      dates: list(params.date).flatMap(parseDate),
      patients: list(params.patient).map((p) => (p.startsWith('Patient/') ? p : `Patient/${p}`)),
      agents: list(params.agent),
      entities: list(params.entity),
      types: list(params.type).map(code),
      subtypes: list(params.subtype).map(code),
      outcomes: list(params.outcome).map(code),
      actions: list(params.action).map(code),
      breakGlass: bg === undefined ? undefined : bg === 'true',
      count: Math.min(count, config.search.maxCount),
      after,
      withTotal: summary === 'count' || list(params._total)[0] !== 'none',
    };
    const { resources, total, last } = await searchAuditEvents(db, q);
    const selfQuery = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) if (typeof x === 'string' && k !== '_cursor') selfQuery.append(k, x);
    const link: NonNullable<Bundle['link']> = [{ relation: 'self', url: `${base}/AuditEvent?${selfQuery}${cursor ? `&_cursor=${cursor}` : ''}` }];
    if (last) {
      const next = new URLSearchParams(selfQuery);
      next.set('_cursor', Buffer.from(`${last.recorded.toISOString()}|${last.id}`).toString('base64url'));
      link.push({ relation: 'next', url: `${base}/AuditEvent?${next}` });
    }
    const bundle: Bundle<AuditEvent> = {
      resourceType: 'Bundle',
      type: 'searchset',
      total,
      link,
      entry: resources.map((r) => ({ fullUrl: `${base}/AuditEvent/${r.id}`, resource: r, search: { mode: 'match' } })),
    };
    res.locals.audit = { subtype: 'search', action: 'E', query: new URLSearchParams(selfQuery).toString(), count: resources.length };
    sendResource(req, res, bundle);
  };

  router.get('/AuditEvent', (req, res) => search(req, res, req.query as Record<string, unknown>));
  router.post('/AuditEvent/_search', async (req, res) => {
    requireMediaType(req, ['application/x-www-form-urlencoded']);
    const body = (await readBody(req, 64 * 1024)).toString('utf8');
    const params: Record<string, string[]> = {};
    for (const [k, v] of new URLSearchParams(body)) (params[k] ??= []).push(v);
    for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string') (params[k] ??= []).push(v);
    await search(req, res, params);
  });
  router.get('/AuditEvent/:id', async (req, res) => {
    const ev = await readAuditEvent(db, req.params.id!);
    if (!ev) throw notFound('AuditEvent');
    res.locals.audit = { subtype: 'read', action: 'R', entities: [`AuditEvent/${ev.id}`] };
    sendResource(req, res, ev);
  });
}
