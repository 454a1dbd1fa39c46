/**
 * Raw search parameters → an AND-of-OR plan of SQL conditions plus the result-shaping options
 * (style.md §5.4). Parameters outside our table: ignored and reported as a warning, or 400 with
 * `Prefer: handling=strict` (FHIR R4 3.1.1.4 "handling"); unsupported chains are always 400.
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Cursor, SortSpec, SqlCond, TokenMatch } from '../../store/search-sql.js';
import { badParam, parseDate, parseReference, parseToken, splitOr, unescapeValue, type RawParam, type TokenValue } from './parse.js';
import { findParam, INCLUDES, REVINCLUDES, SORTS, type SearchParamImpl } from './params.js';

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

/** Both spellings of a UID (digest Q14): "urn:oid:1.2.3" and "1.2.3". */
function uidForms(v: string): string[] {
  if (v.startsWith('urn:oid:') && UID_RE.test(v.slice(8))) return [v, v.slice(8)];
  if (UID_RE.test(v)) return [v, `urn:oid:${v}`];
  return [v];
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

function compileParam(type: string, def: SearchParamImpl, p: RawParam, label: string): SqlCond {
  const t = def.target;
  const mod = p.modifier;
  if (mod !== undefined && mod !== 'missing' && !(def.modifiers ?? []).includes(mod)) {
    // FHIR allows a [type] modifier on references: patient:Patient=…
    if (!(def.type === 'reference' && t.t === 'reference' && mod === t.targetType)) {
      throw badParam(label, `Modifier ":${mod}" is not supported on "${def.name}"`, 'GW_SEARCH_MODIFIER');
    }
  }
  if (mod === 'missing') {
    if (!(def.modifiers ?? []).includes('missing')) throw badParam(label, `Modifier ":missing" is not supported on "${def.name}"`, 'GW_SEARCH_MODIFIER');
    const missing = missingFlag(p, label);
    switch (t.t) {
      case 'token':
        return { k: 'token-missing', codes: t.codes, missing };
      case 'reference':
      case 'date':
        return { k: 'column-missing', column: t.column, missing };
      default:
        throw badParam(label, `Modifier ":missing" is not supported on "${def.name}"`, 'GW_SEARCH_MODIFIER');
    }
  }
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
      const ids = parseTokens(p, label).map((tv) => tv.value ?? '');
      const docrefIds = ids.filter((x) => x.startsWith('study-')).map((x) => `kos-docref-${x.slice(6)}`);
      return { k: 'by-docref-id', ids: docrefIds, not };
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
      // context.related holds identifiers only (digest §1.7): a literal reference matches nothing.
      splitOr(p.value).forEach((v) => parseReference(v, label, 'ImagingStudy'));
      return { k: 'false' };
    }
    case 'string':
      return { k: 'string', column: t.column, or: splitOr(p.value).map((v) => unescapeValue(v)), exact: mod === 'exact' };
    case 'author-name':
      return { k: 'author-name', part: t.part, or: splitOr(p.value).map((v) => unescapeValue(v)), exact: mod === 'exact' };
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

export function decodeCursor(v: string): Cursor & { s: string } {
  try {
    const o = JSON.parse(Buffer.from(v, 'base64url').toString('utf8')) as { v: unknown; id: unknown; s: unknown };
    if ((o.v === null || typeof o.v === 'string') && typeof o.id === 'string' && typeof o.s === 'string') return { v: o.v, id: o.id, s: o.s };
  } catch {
    /* fall through */
  }
  throw badParam('_cursor', 'Invalid or expired paging cursor; restart the search');
}

export function encodeCursor(c: Cursor, sortKey: string): string {
  return Buffer.from(JSON.stringify({ v: c.v, id: c.id, s: sortKey }), 'utf8').toString('base64url');
}

export function planSearch(resourceType: string, params: RawParam[], o: PlanOptions): SearchPlan {
  const warnings: OperationOutcomeIssue[] = [];
  const conds: SqlCond[] = [];
  const linkParams: Array<[string, string]> = [];
  let count = o.defaultCount;
  let summaryCount = false;
  let total: SearchPlan['total'] = 'none';
  let sortParam: string | undefined;
  let cursorRaw: string | undefined;
  let elements: string[] | undefined;
  const include: string[] = [];
  const revinclude: string[] = [];
  let statusGiven = false;

  for (const p of params) {
    const label = p.modifier ? `${p.name}:${p.modifier}` : p.name;
    if (CONTROL.has(p.name)) {
      // _format stays in the links so a client paging in XML keeps getting XML.
      if (p.name !== '_cursor' && p.name !== '_pretty') linkParams.push([label, p.value]);
      switch (p.name) {
        case '_count': {
          count = parseCount(p.value, o, warnings);
          if (count === 0) summaryCount = true;
          break;
        }
        case '_total':
          if (p.value !== 'none' && p.value !== 'estimate' && p.value !== 'accurate') throw badParam('_total', '_total must be none, estimate or accurate');
          total = p.value;
          break;
        case '_summary':
          if (p.value === 'count') summaryCount = true;
          else if (p.value !== 'false') throw badParam('_summary', `_summary=${p.value} is not supported (count or false)`, 'GW_SEARCH_NOT_SUPPORTED');
          break;
        case '_sort':
          sortParam = p.value;
          break;
        case '_cursor':
          cursorRaw = p.value;
          break;
        case '_elements':
          elements = p.value.split(',').map((s) => s.trim()).filter(Boolean);
          for (const e of elements) if (!/^[a-zA-Z][a-zA-Z0-9]*$/.test(e)) throw badParam('_elements', `Invalid element name "${e}" in _elements`);
          break;
        case '_include':
        case '_revinclude': {
          const allowed = (p.name === '_include' ? INCLUDES : REVINCLUDES)[resourceType] ?? [];
          const v = p.value.replace(/:iterate$|:recurse$/, '');
          if (!allowed.includes(v)) {
            if (o.strict) throw badParam(p.name, `${p.name}=${p.value} is not supported on ${resourceType}`, 'GW_SEARCH_NOT_SUPPORTED');
            warnings.push(warning(`${p.name}=${p.value} is not supported on ${resourceType} and was ignored`, p.name));
          } else (p.name === '_include' ? include : revinclude).push(v);
          break;
        }
      }
      continue;
    }
    const def = findParam(resourceType, p.name);
    if (!def) {
      // Unsupported chains and _has are refused outright: ignoring them would widen the result.
      if (p.name.includes('.') || p.name === '_has') throw badParam(label, `Chained search "${label}" is not supported`, 'GW_SEARCH_CHAIN');
      if (o.strict) throw badParam(label, `Unknown search parameter "${label}" for ${resourceType}`, 'GW_SEARCH_UNKNOWN_PARAM');
      warnings.push(warning(`Unknown search parameter "${label}" was ignored`, label));
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

  const sorts = SORTS[resourceType] ?? { _lastUpdated: 'lastUpdated' };
  let sort: SortSpec = { column: 'lastUpdated', desc: true };
  if (sortParam !== undefined) {
    const keys = sortParam.split(',').map((s) => s.trim()).filter(Boolean);
    if (keys.length !== 1) throw badParam('_sort', '_sort takes exactly one key (the id is always the tiebreak)', 'GW_SEARCH_NOT_SUPPORTED');
    const desc = keys[0]!.startsWith('-');
    const key = desc ? keys[0]!.slice(1) : keys[0]!;
    const column = sorts[key];
    if (!column) throw badParam('_sort', `_sort=${keys[0]} is not supported on ${resourceType} (use ${Object.keys(sorts).join(', ')})`, 'GW_SEARCH_NOT_SUPPORTED');
    sort = { column, desc };
  }
  const sortKey = `${sort.desc ? '-' : ''}${sort.column}`;
  let cursor: Cursor | undefined;
  if (cursorRaw !== undefined) {
    const c = decodeCursor(cursorRaw);
    if (c.s !== sortKey) throw badParam('_cursor', 'Paging cursor does not belong to this search; restart the search');
    cursor = { v: c.v, id: c.id };
  }
  return { resourceType, conds, count, summaryCount, sort, sortParam, cursor, total, elements, include, revinclude, warnings, linkParams };
}
