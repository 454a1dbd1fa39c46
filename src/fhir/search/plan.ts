/**
 * Raw search parameters → an AND-of-OR plan of SQL conditions plus the result-shaping options
 * (decisions.md D44). Parameters outside our table: ignored and reported as a warning, or 400 with
 * `Prefer: handling=strict` (FHIR R4 3.1.1.4 "handling"); unsupported chains are always 400.
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Cursor, SortKey, SortSpec, SqlCond, TokenMatch } from '../../store/search-sql.js';
import { badParam, parseDate, parseReference, parseToken, splitOr, unescapeValue, type RawParam, type TokenValue } from './parse.js';
import { findParam, findUnsupported, INCLUDES, REVINCLUDES, SORTS, type SearchParamImpl } from './params.js';

export interface SearchPlan {
  resourceType: string;
  conds: SqlCond[];
  count: number;
  /** _summary=count or _count=0: total only */
  summaryCount: boolean;
  sort: SortSpec;
  /** The _sort value as given (kept in links) */
  sortParam?: string;
  cursor?: Cursor;
  total: 'none' | 'estimate' | 'accurate';
  elements?: string[];
  include: string[];
  revinclude: string[];
  warnings: OperationOutcomeIssue[];
  /** Normalised parameters for Bundle.link (without _cursor / _format) */
  linkParams: Array<[string, string]>;
}

export interface PlanOptions {
  strict: boolean;
  defaultCount: number;
  maxCount: number;
}

/** Result-shaping parameters handled here rather than in the table. */
const CONTROL = new Set(['_count', '_sort', '_total', '_summary', '_elements', '_include', '_revinclude', '_format', '_cursor', '_pretty']);

const UID_RE = /^[0-2](\.(0|[1-9]\d*))+$/;

/** Bound on OR values per parameter (each becomes a bound array element). */
export const MAX_OR = 100;

function warning(text: string, param: string, code: OperationOutcomeIssue['code'] = 'not-supported'): OperationOutcomeIssue {
  return { severity: 'warning', code, details: { text }, expression: [param] };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Both spellings of a UID (decisions.md D14): "urn:oid:1.2.3" and "1.2.3"; likewise of a UUID
 * ("urn:uuid:…" and bare, compared in lower case as RFC 4122 §3 outputs it).
 */
function uidForms(v: string): string[] {
  if (v.startsWith('urn:oid:') && UID_RE.test(v.slice(8))) return [v, v.slice(8)];
  if (UID_RE.test(v)) return [v, `urn:oid:${v}`];
  if (/^urn:uuid:/i.test(v) && UUID_RE.test(v.slice(9))) return [...new Set([v, `urn:uuid:${v.slice(9).toLowerCase()}`, v.slice(9).toLowerCase()])];
  if (UUID_RE.test(v)) return [...new Set([v, v.toLowerCase(), `urn:uuid:${v.toLowerCase()}`])];
  return [v];
}

const RFC3986 = 'urn:ietf:rfc:3986';

/**
 * DocumentReference.identifier (ITI-67 "masterIdentifier and identifier"). The rendered docrefs
 * carry two identifiers, both with system urn:ietf:rfc:3986: the uniqueId urn:oid:<SOP UID>
 * (masterIdentifier = identifier[0], shared by the KOS and FHIR docref; manifest_token) and the
 * entryUUID urn:uuid:<uuid> of each docref (document_reference.entry_uuid, migration 0005).
 * `|value` asks for an identifier without a system: there is none.
 */
function docrefIdentifier(values: TokenValue[], not: boolean): SqlCond {
  const tokens: TokenMatch[] = [];
  const uuids = new Set<string>();
  for (const tv of values) {
    if (tv.system === '') continue;
    if (tv.value === undefined) {
      tokens.push({ system: tv.system });
      continue;
    }
    const forms = uidForms(tv.value);
    const uuid = forms.find((f) => f.startsWith('urn:uuid:') && UUID_RE.test(f.slice(9)) && f === f.toLowerCase());
    if (uuid) {
      if (tv.system === undefined || tv.system === RFC3986) uuids.add(uuid);
      continue;
    }
    tokens.push(tv.system === undefined ? { values: forms } : { system: tv.system, values: forms });
  }
  return { k: 'docref-identifier', tokens, uuids: [...uuids], not };
}

function tokenMatches(values: TokenValue[], uid: boolean): TokenMatch[] {
  return values.map((tv) => {
    if (tv.value === undefined) return { system: tv.system };
    const vals = uid ? uidForms(tv.value) : [tv.value];
    // A bare UID row is indexed with system '' (ingest): with a system given, match the prefixed row.
    return tv.system === undefined ? { values: vals } : { system: tv.system, values: vals };
  });
}

function parseTokens(p: RawParam, label: string): TokenValue[] {
  return splitOr(p.value).map((v) => parseToken(v, label));
}

function missingFlag(p: RawParam, label: string): boolean {
  if (p.value === 'true') return true;
  if (p.value === 'false') return false;
  throw badParam(label, `:missing takes true or false, got "${p.value}"`);
}

/** A modifier the parameter does not declare → 400 (FHIR allows a [type] modifier on references: patient:Patient=…). */
function checkModifier(def: SearchParamImpl, mod: string | undefined, label: string): void {
  if (mod === undefined || mod === 'missing' || (def.modifiers ?? []).includes(mod)) return;
  const t = def.target;
  if (def.type === 'reference' && t.t === 'reference' && mod === t.targetType) return;
  throw badParam(label, `Modifier ":${mod}" is not supported on "${def.name}"`, 'GW_SEARCH_MODIFIER');
}

/** [param]:missing=true|false */
function missingCond(def: SearchParamImpl, p: RawParam, label: string): SqlCond {
  const t = def.target;
  if (!(def.modifiers ?? []).includes('missing')) throw badParam(label, `Modifier ":missing" is not supported on "${def.name}"`, 'GW_SEARCH_MODIFIER');
  const missing = missingFlag(p, label);
  switch (t.t) {
    case 'token':
      return { k: 'token-missing', codes: t.codes, missing };
    case 'docref-identifier':
      return { k: 'token-missing', codes: ['identifier'], missing };
    case 'reference':
    case 'date':
      return { k: 'column-missing', column: t.column, missing };
    default:
      throw badParam(label, `Modifier ":missing" is not supported on "${def.name}"`, 'GW_SEARCH_MODIFIER');
  }
}

function compileParam(type: string, def: SearchParamImpl, p: RawParam, label: string): SqlCond {
  const t = def.target;
  const mod = p.modifier;
  checkModifier(def, mod, label);
  if (mod === 'missing') return missingCond(def, p, label);
  if (p.value === '') throw badParam(label, `Empty value for search parameter "${label}"`);
  if (splitOr(p.value).length > MAX_OR) throw badParam(label, `At most ${MAX_OR} comma-separated values per parameter`, 'GW_SEARCH_TOO_COSTLY');
  const not = mod === 'not';
  switch (t.t) {
    case 'token': {
      const values = parseTokens(p, label);
      if (t.requireSystem && values.some((v) => v.system === undefined)) {
        // Product ask 7: a Patient ID means nothing without its issuer.
        throw badParam(label, `"${def.name}" needs system|value (or |value for an identifier without an issuer); a bare value could match another issuer's patient`, 'GW_SEARCH_IDENTIFIER_SYSTEM');
      }
      return { k: 'token', codes: t.codes, or: tokenMatches(values, !!t.uid), not };
    }
    case 'docref-identifier':
      return docrefIdentifier(parseTokens(p, label), not);
    case 'column-token': {
      const vals = new Set<string>();
      for (const tv of parseTokens(p, label)) {
        if (tv.value === undefined) throw badParam(label, `"${def.name}" needs a code`);
        const mapped = t.map ? t.map(tv.system, tv.value) : [tv.value];
        for (const m of mapped ?? []) vals.add(m);
      }
      if (!vals.size) return not ? { k: 'column-in', column: t.column, values: [], not: true } : { k: 'false' };
      return { k: 'column-in', column: t.column, values: [...vals], not };
    }
    case 'imaging-study-id': {
      // the ImagingStudy id is its imaging_study row's (migration 0011)
      const ids = parseTokens(p, label).map((tv) => tv.value ?? '').filter((x) => x.startsWith('study-'));
      return { k: 'column-in', column: 'id', values: ids, not };
    }
    case 'date':
      return { k: 'date', column: t.column, or: splitOr(p.value).map((v) => parseDate(v, label)) };
    case 'period':
      return { k: 'period', or: splitOr(p.value).map((v) => parseDate(v, label)) };
    case 'reference': {
      if (mod === 'identifier') {
        const values = parseTokens(p, label);
        if (values.some((v) => v.system === undefined)) throw badParam(label, `"${label}" needs system|value (or |value for an identifier without an issuer)`, 'GW_SEARCH_IDENTIFIER_SYSTEM');
        return { k: 'token', codes: t.identifierCodes ?? [], or: tokenMatches(values, false), not: false };
      }
      const ids = splitOr(p.value).map((v) => parseReference(v, label, t.targetType)).filter((x): x is string => x !== undefined);
      return ids.length ? { k: 'column-in', column: t.column, values: ids, not: false } : { k: 'false' };
    }
    case 'related': {
      if (mod === 'identifier') return { k: 'token', codes: t.identifierCodes, or: tokenMatches(parseTokens(p, label), true), not: false };
      // context.related holds logical references (IG MHD envelope): an ImagingStudy reference stands
      // for its study; other targets (ServiceRequest, unknown ids) match nothing.
      const ids = splitOr(p.value).map((v) => parseReference(v, label, 'ImagingStudy')).filter((x): x is string => x !== undefined && x.startsWith('study-'));
      return ids.length ? { k: 'related-study', ids } : { k: 'false' };
    }
    case 'string':
      return { k: 'string', column: t.column, or: splitOr(p.value).map((v) => unescapeValue(v)), exact: mod === 'exact' };
    case 'name-terms':
      return { k: 'name-terms', column: t.column, part: t.part, or: splitOr(p.value).map((v) => unescapeValue(v)), exact: mod === 'exact' };
    case 'patient-identifier': {
      const values = parseTokens(p, label);
      // Product ask 7, as for patient.identifier: no bare Patient ID without its issuer.
      if (values.some((v) => v.system === undefined)) throw badParam(label, `"${def.name}" needs system|value (or |value for an identifier without an issuer)`, 'GW_SEARCH_IDENTIFIER_SYSTEM');
      return { k: 'patient-identifier', or: tokenMatches(values, false), not };
    }
    case 'endpoint-ref':
      return { k: 'endpoint', ids: splitOr(p.value).map((v) => parseReference(v, label, 'Endpoint')).filter((x): x is string => x !== undefined) };
  }
}

function parseCount(v: string, o: PlanOptions, warnings: OperationOutcomeIssue[]): number {
  if (!/^\d+$/.test(v)) throw badParam('_count', `_count must be a non-negative integer, got "${v}"`);
  const n = Number(v);
  if (n > o.maxCount) {
    warnings.push(warning(`_count=${n} exceeds the maximum page size; ${o.maxCount} entries per page are returned, follow the next link for more`, '_count', 'too-costly'));
    return o.maxCount;
  }
  return n;
}

const keyValue = (x: unknown): x is string | null => x === null || typeof x === 'string';

export function decodeCursor(v: string): Cursor & { s: string } {
  try {
    const o = JSON.parse(Buffer.from(v, 'base64url').toString('utf8')) as { v: unknown; id: unknown; s: unknown };
    if (typeof o.id === 'string' && typeof o.s === 'string') {
      // A single value is the one-key cursor of earlier releases (links handed out before an upgrade).
      if (keyValue(o.v)) return { v: [o.v], id: o.id, s: o.s };
      if (Array.isArray(o.v) && o.v.length && o.v.every(keyValue)) return { v: o.v, id: o.id, s: o.s };
    }
  } catch {
    /* fall through */
  }
  throw badParam('_cursor', 'Invalid or expired paging cursor; restart the search');
}

/** The sort as bound into cursors: "-date,lastUpdated". */
export function sortKeyOf(sort: SortSpec): string {
  return sort.map((k) => `${k.desc ? '-' : ''}${k.column}`).join(',');
}

/**
 * _sort (FHIR 3.1.1.5.3): comma-separated keys, each ascending or '-' descending, the id always
 * the last tiebreak. Every key is a non-null timestamp expression (search-sql sortExpr), so any
 * combination pages with a keyset cursor: no key is refused for being one of several.
 */
function parseSort(resourceType: string, value: string): SortSpec {
  const sorts = SORTS[resourceType] ?? { _lastUpdated: 'lastUpdated' };
  const keys = value.split(',').map((s) => s.trim());
  if (!keys.length || keys.some((k) => k === '' || k === '-')) throw badParam('_sort', `_sort needs one or more comma-separated keys (${Object.keys(sorts).join(', ')})`);
  const out: SortKey[] = [];
  for (const k of keys) {
    const desc = k.startsWith('-');
    const name = desc ? k.slice(1) : k;
    const column = sorts[name];
    if (!column) throw badParam('_sort', `_sort=${k} is not supported on ${resourceType} (use ${Object.keys(sorts).join(', ')}, each optionally with - for descending)`, 'GW_SEARCH_NOT_SUPPORTED');
    if (out.some((o) => o.column === column)) throw badParam('_sort', `_sort lists "${name}" twice`);
    out.push({ column, desc });
  }
  return out;
}

export function encodeCursor(c: Cursor, sortKey: string): string {
  // v is an array, one value per sort key (decodeCursor also reads the older single value).
  return Buffer.from(JSON.stringify({ v: c.v, id: c.id, s: sortKey }), 'utf8').toString('base64url');
}

/** What the control parameters (_count, _sort, _include, …) of one search say. */
interface Controls {
  count: number;
  summaryCount: boolean;
  total: SearchPlan['total'];
  sortParam?: string;
  cursorRaw?: string;
  elements?: string[];
  include: string[];
  revinclude: string[];
}

function applyInclude(c: Controls, resourceType: string, p: RawParam, o: PlanOptions, warnings: OperationOutcomeIssue[]): void {
  const allowed = (p.name === '_include' ? INCLUDES : REVINCLUDES)[resourceType] ?? [];
  const v = p.value.replace(/:iterate$|:recurse$/, '');
  if (allowed.includes(v)) {
    (p.name === '_include' ? c.include : c.revinclude).push(v);
    return;
  }
  if (o.strict) throw badParam(p.name, `${p.name}=${p.value} is not supported on ${resourceType}`, 'GW_SEARCH_NOT_SUPPORTED');
  warnings.push(warning(`${p.name}=${p.value} is not supported on ${resourceType} and was ignored`, p.name));
}

function applyControl(c: Controls, resourceType: string, p: RawParam, o: PlanOptions, warnings: OperationOutcomeIssue[]): void {
  switch (p.name) {
    case '_count':
      c.count = parseCount(p.value, o, warnings);
      if (c.count === 0) c.summaryCount = true;
      break;
    case '_total':
      if (p.value !== 'none' && p.value !== 'estimate' && p.value !== 'accurate') throw badParam('_total', '_total must be none, estimate or accurate');
      c.total = p.value;
      break;
    case '_summary':
      if (p.value === 'count') c.summaryCount = true;
      else if (p.value !== 'false') throw badParam('_summary', `_summary=${p.value} is not supported (count or false)`, 'GW_SEARCH_NOT_SUPPORTED');
      break;
    case '_sort':
      c.sortParam = p.value;
      break;
    case '_cursor':
      c.cursorRaw = p.value;
      break;
    case '_elements':
      c.elements = p.value.split(',').map((s) => s.trim()).filter(Boolean);
      for (const e of c.elements) if (!/^[a-zA-Z][a-zA-Z0-9]*$/.test(e)) throw badParam('_elements', `Invalid element name "${e}" in _elements`);
      break;
    case '_include':
    case '_revinclude':
      applyInclude(c, resourceType, p, o, warnings);
      break;
  }
}

/** A search parameter outside the table: warning (lenient) or 400; chains and _has always 400. */
function unknownParam(resourceType: string, p: RawParam, label: string, o: PlanOptions, warnings: OperationOutcomeIssue[]): void {
  const unsupported = findUnsupported(resourceType, p.name);
  if (unsupported) {
    // A parameter of the transaction this server does not implement (params.ts UNSUPPORTED).
    if (o.strict) throw badParam(label, `Search parameter "${label}" is not supported by this server: ${unsupported.reason}`, 'GW_SEARCH_UNKNOWN_PARAM');
    warnings.push(warning(`Search parameter "${label}" is not supported by this server and was ignored: ${unsupported.reason}`, label));
    return;
  }
  // Unsupported chains and _has are refused outright: ignoring them would widen the result.
  if (p.name.includes('.') || p.name === '_has') throw badParam(label, `Chained search "${label}" is not supported`, 'GW_SEARCH_CHAIN');
  if (o.strict) throw badParam(label, `Unknown search parameter "${label}" for ${resourceType}`, 'GW_SEARCH_UNKNOWN_PARAM');
  warnings.push(warning(`Unknown search parameter "${label}" was ignored`, label));
}

/** The keyset cursor of a _cursor value, checked against the search's sort. */
function cursorFor(cursorRaw: string | undefined, sort: SortSpec): Cursor | undefined {
  if (cursorRaw === undefined) return undefined;
  const c = decodeCursor(cursorRaw);
  if (c.s !== sortKeyOf(sort) || c.v.length !== sort.length) throw badParam('_cursor', 'Paging cursor does not belong to this search; restart the search');
  return { v: c.v, id: c.id };
}

export function planSearch(resourceType: string, params: RawParam[], o: PlanOptions): SearchPlan {
  const warnings: OperationOutcomeIssue[] = [];
  const conds: SqlCond[] = [];
  const linkParams: Array<[string, string]> = [];
  const c: Controls = { count: o.defaultCount, summaryCount: false, total: 'none', include: [], revinclude: [] };
  let statusGiven = false;

  for (const p of params) {
    const label = p.modifier ? `${p.name}:${p.modifier}` : p.name;
    if (CONTROL.has(p.name)) {
      // _format stays in the links so a client paging in XML keeps getting XML.
      if (p.name !== '_cursor' && p.name !== '_pretty') linkParams.push([label, p.value]);
      applyControl(c, resourceType, p, o, warnings);
      continue;
    }
    const def = findParam(resourceType, p.name);
    if (!def) {
      unknownParam(resourceType, p, label, o, warnings);
      continue;
    }
    linkParams.push([label, p.value]);
    if (def.name === 'status' && p.modifier !== 'not') statusGiven = true;
    conds.push(compileParam(resourceType, def, p, label));
  }

  // entered-in-error is returned only when status asks for it (MHD status VS excludes it).
  if (!statusGiven && (resourceType === 'DocumentReference' || resourceType === 'ImagingStudy')) {
    conds.push({ k: 'column-in', column: 'status', values: ['entered-in-error'], not: true });
  }

  const sort: SortSpec = c.sortParam !== undefined ? parseSort(resourceType, c.sortParam) : [{ column: 'lastUpdated', desc: true }];
  const { count, summaryCount, sortParam, total, elements, include, revinclude } = c;
  return { resourceType, conds, count, summaryCount, sort, sortParam, cursor: cursorFor(c.cursorRaw, sort), total, elements, include, revinclude, warnings, linkParams };
}
