/**
 * One search request end to end: raw parameters (URL and, for POST _search, the form body) →
 * plan → SQL (patient filter inside) → searchset Bundle with absolute links, keyset `next`,
 * warnings as an OperationOutcome entry (search.mode = outcome), and the audit annotation.
 */
import { findUnstorableText } from '../../model/text.js';
import type { Bundle, BundleEntry, BundleLink, OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { Request, Response } from 'express';
import type { AppDeps } from '../../deps.js';
import type { AuditSubtype } from '../../audit/types.js';
import { patientFilter, principalOf, type PatientFilter } from '../../auth/principal.js';
import { mediaType, readBody } from '../../http/body.js';
import { GatewayError } from '../../http/errors.js';
import { countSearch, estimateSearch, runSearch, type SearchRow, type SearchTable } from '../../store/search-sql.js';
import { negotiateFhirFormat, sendResource, sendSearchsetWithRaw, type RawResource } from '../format.js';
import { parseQueryString, type RawParam } from './parse.js';
import { encodeCursor, planSearch, sortKeyOf, type SearchPlan } from './plan.js';

export interface IncludeResult {
  resources: Resource[];
  /** true when the include list was capped (reported as a warning, never silent) */
  capped?: boolean;
}

export interface SearchHandler {
  table: SearchTable;
  subtype: AuditSubtype;
  render: (row: SearchRow) => Resource;
  /**
   * The same resource as JSON text, without parsing the stored JSON (plain JSON searches without
   * _elements/_include: the common ITI-67 case). Must equal JSON.stringify(render(row)) in content.
   */
  renderJson?: (row: SearchRow) => RawResource;
  /** Patient ids a row concerns (audit) */
  patientOf?: (row: SearchRow) => string | undefined | null;
  /** _include / _revinclude resolution */
  includes?: (plan: SearchPlan, rows: SearchRow[], resources: Resource[], pf: PatientFilter) => Promise<IncludeResult>;
}

/** The largest number of resources added by _include/_revinclude to one page. */
export const MAX_INCLUDES = 1000;

const FORM = 'application/x-www-form-urlencoded';

/** Raw parameters of GET [type]?… or POST [type]/_search (URL query + form body, FHIR 3.1.1.3). */
export async function rawParams(req: Request, maxBody: number): Promise<RawParam[]> {
  const url = req.originalUrl;
  const qi = url.indexOf('?');
  const fromUrl = qi === -1 ? [] : parseQueryString(url.slice(qi + 1));
  if (req.method !== 'POST') return fromUrl;
  const mt = mediaType(req);
  if (mt !== FORM) throw new GatewayError(415, 'GW_UNSUPPORTED_MEDIA_TYPE', `POST _search takes ${FORM}, not "${mt || '(none)'}"`);
  const body = await readBody(req, maxBody);
  return [...fromUrl, ...parseQueryString(body.toString('utf8'))];
}

function rawQueryString(params: RawParam[]): string {
  return params.map((p) => `${p.modifier ? `${p.name}:${p.modifier}` : p.name}=${p.value}`).join('&');
}

/** FHIR `Prefer: handling=strict` (3.1.1.4): unknown parameters become 400. */
export function isStrict(req: Request): boolean {
  const prefer = req.get('prefer') ?? '';
  return /(^|[,;\s])handling\s*=\s*"?strict"?/i.test(prefer);
}

function enc(s: string): string {
  // Keep the token/chain punctuation readable; escape everything else.
  return encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%7C/gi, '|').replace(/%2C/gi, ',');
}

function link(base: string, params: Array<[string, string]>, extra: Array<[string, string]> = []): string {
  const all = [...params, ...extra];
  return all.length ? `${base}?${all.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')}` : base;
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };

/** _elements (FHIR 3.1.1.5.9): listed top-level elements plus the mandatory ones, marked SUBSETTED. */
export function applyElements(r: Resource, elements: string[]): Resource {
  const keep = new Set(['resourceType', 'id', 'meta', ...elements]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (keep.has(k) || (k.startsWith('_') && keep.has(k.slice(1)))) out[k] = v;
  const meta = { ...((out.meta as object | undefined) ?? {}) } as { tag?: unknown[] };
  meta.tag = [...(meta.tag ?? []), SUBSETTED];
  out.meta = meta;
  return out as unknown as Resource;
}

export async function handleSearch(req: Request, res: Response, deps: AppDeps, type: string, h: SearchHandler): Promise<void> {
  const { config, db } = deps;
  const params = await rawParams(req, config.limits.maxBodyBytes);
  const query = rawQueryString(params);
  // Annotate before running: a failing search is audited too (with its outcome).
  res.locals.audit = { subtype: h.subtype, action: 'E', query, entities: [], patientIds: [], count: 0 };
  const plan = planSearch(type, params, { strict: isStrict(req), defaultCount: config.search.defaultCount, maxCount: config.search.maxCount });
  // A value bound into SQL holding U+0000 is refused (PostgreSQL cannot take it); ignored unknown
  // parameters never reach SQL.
  if (findUnstorableText(plan.conds)) throw new GatewayError(400, 'GW_BAD_CHARACTER', 'A search parameter value holds U+0000 (or an unpaired surrogate), which no FHIR value can carry');
  const pf = patientFilter(principalOf(req));
  const base = `${config.publicBaseUrl}/fhir/${type}`;
  const sqlPlan = { table: h.table, conds: plan.conds };
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset' };

  if (plan.summaryCount) {
    bundle.total = await countSearch(db, sqlPlan, pf);
    bundle.link = [{ relation: 'self', url: link(base, plan.linkParams) }];
    if (plan.warnings.length) bundle.entry = [outcomeEntry(plan)];
    res.locals.audit.count = 0;
    sendResource(req, res, bundle);
    return;
  }

  const format = negotiateFhirFormat(req); // 406 before any database work
  const { rows, more } = await runSearch(db, { ...sqlPlan, sort: plan.sort, cursor: plan.cursor, limit: plan.count }, pf);
  const raw = format === 'json' && h.renderJson && !plan.elements && !plan.include.length && !plan.revinclude.length ? rows.map(h.renderJson) : undefined;
  const resources = raw ? [] : rows.map((r) => h.render(r));
  const refs: Array<{ resourceType: string; id?: string }> = raw ?? resources;
  if (plan.total === 'accurate') bundle.total = await countSearch(db, sqlPlan, pf);
  else if (plan.total === 'estimate') bundle.total = await estimateSearch(db, sqlPlan, pf);

  const links: BundleLink[] = [{ relation: 'self', url: link(base, plan.linkParams, plan.cursor ? [['_cursor', encodeCursorParam(plan)]] : []) }];
  if (more && rows.length) {
    const last = rows[rows.length - 1]!;
    links.push({ relation: 'next', url: link(base, plan.linkParams, [['_cursor', encodeCursor({ v: last.sort_key, id: last.id }, sortKeyOf(plan.sort))]]) });
  }
  bundle.link = links;

  const entries: BundleEntry[] = raw
    ? []
    : resources.map((r) => ({
        fullUrl: `${config.publicBaseUrl}/fhir/${r.resourceType}/${r.id}`,
        resource: plan.elements ? applyElements(r, plan.elements) : r,
        search: { mode: 'match' },
      }));
  if ((plan.include.length || plan.revinclude.length) && h.includes && rows.length) {
    const inc = await h.includes(plan, rows, resources, pf);
    for (const r of inc.resources) entries.push({ fullUrl: `${config.publicBaseUrl}/fhir/${r.resourceType}/${r.id}`, resource: r, search: { mode: 'include' } });
    if (inc.capped) {
      plan.warnings.push({ severity: 'warning', code: 'too-costly', details: { text: `_include/_revinclude limited to ${MAX_INCLUDES} resources for this page; use a smaller _count` }, expression: ['_include'] });
    }
  }
  if (plan.warnings.length) entries.push(outcomeEntry(plan));
  if (entries.length && !raw) bundle.entry = entries;

  const patientIds = new Set<string>();
  for (const r of rows) {
    const p = h.patientOf?.(r);
    if (p) patientIds.add(p);
  }
  res.locals.audit = { subtype: h.subtype, action: 'E', query, entities: refs.map((r) => `${r.resourceType}/${r.id}`), patientIds: [...patientIds], count: refs.length };
  if (raw) sendSearchsetWithRaw(res, bundle, raw.map((r) => ({ fullUrl: `${config.publicBaseUrl}/fhir/${r.resourceType}/${r.id}`, json: r.json })), entries);
  else sendResource(req, res, bundle, 200, format);
}

function encodeCursorParam(plan: SearchPlan): string {
  return encodeCursor(plan.cursor!, sortKeyOf(plan.sort));
}

function outcomeEntry(plan: SearchPlan): BundleEntry {
  const oo: OperationOutcome = { resourceType: 'OperationOutcome', issue: plan.warnings };
  return { resource: oo, search: { mode: 'outcome' } };
}
