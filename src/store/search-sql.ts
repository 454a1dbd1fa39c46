/**
 * FHIR search → SQL (decisions.md D44). compileSearch is a pure function of the plan and the patient
 * filter; every value goes through a binding. The patient filter is a condition of the same
 * query (never a post-filter), so totals and paging never reveal hidden resources.
 *
 * Tables per resource type (migrations/20261123_0001_schema.ts):
 * - DocumentReference → document_reference d (tokens: manifest_token on d.manifest_id; entryUUID
 *                       and author names: generated columns, migrations/20261123_0005)
 * - ImagingStudy      → manifest m ⋈ imaging_study s, manifests that are current or entered-in-error
 * - Patient           → patient p (identifiers: patient_identifier)
 * - Endpoint          → endpoint e
 * - List              → submission_set l (tokens: submission_set_token; source names: source_terms)
 */
import type { Knex } from 'knex';
import type { PatientFilter } from '../model/access.js';
import { restrictionSql } from './access-sql.js';
import { rawPrepared } from './db.js';

export type SearchTable = 'DocumentReference' | 'ImagingStudy' | 'Patient' | 'Endpoint' | 'List';

export interface TokenMatch {
  /** undefined: any system; '' only rows without a system */
  system?: string;
  /** undefined: any value of that system; several: alternatives (urn:oid: and bare UID, decisions.md D14) */
  values?: string[];
}

export interface DateBound {
  prefix: 'eq' | 'ne' | 'lt' | 'gt' | 'le' | 'ge' | 'sa' | 'eb';
  lo: string;
  hi: string;
}

export type SqlCond =
  | { k: 'token'; codes: string[]; or: TokenMatch[]; not: boolean }
  | { k: 'token-missing'; codes: string[]; missing: boolean }
  | { k: 'column-in'; column: string; values: string[]; not: boolean }
  | { k: 'column-missing'; column: string; missing: boolean }
  | { k: 'date'; column: string; or: DateBound[] }
  | { k: 'period'; or: DateBound[] }
  | { k: 'string'; column: string; or: string[]; exact: boolean }
  /** DocumentReference.identifier: uniqueId tokens (manifest_token 'identifier') or entryUUIDs (d.entry_uuid) */
  | { k: 'docref-identifier'; tokens: TokenMatch[]; uuids: string[]; not: boolean }
  /** Name part of a person author/source: folded starts-with (default) or exact (migration 0005) */
  | { k: 'name-terms'; column: string; part: 'given' | 'family'; or: string[]; exact: boolean }
  /** DocumentReference.related = these ImagingStudy ids (study-<h>): documents of the same study */
  | { k: 'related-study'; ids: string[] }
  | { k: 'patient-identifier'; or: TokenMatch[]; not: boolean }
  | { k: 'by-docref-id'; ids: string[]; not: boolean }
  | { k: 'endpoint'; ids: string[] }
  | { k: 'false' };

export interface SortKey {
  column: string;
  desc: boolean;
}

/** Sort keys in order; the id (ascending) is always the final tiebreak. */
export type SortSpec = SortKey[];

export interface Cursor {
  /** Sort key values of the last row sent, one per SortSpec key, as PostgreSQL text */
  v: Array<string | null>;
  /** Id (tiebreak) of the last row sent */
  id: string;
}

export interface SqlPlan {
  table: SearchTable;
  conds: SqlCond[];
  sort: SortSpec;
  cursor?: Cursor;
  /** Rows to return; one more is fetched to decide on a next link */
  limit: number;
}

interface TableDef {
  from: string;
  idCol: string;
  /** Token table join: [table, fk column, owner column] */
  tokens?: { table: string; fk: string; owner: string };
  patientCol?: string;
  /** the manifest id column (access restrictions, src/store/access-sql.ts) */
  manifestCol?: string;
  columns: Record<string, string>;
  /** Sort columns that may be NULL (sorted as -infinity so the keyset comparison stays total) */
  nullableSorts?: string[];
  select: string;
  /** Always-on conditions */
  base?: string;
}

const TABLES: Record<SearchTable, TableDef> = {
  DocumentReference: {
    from: 'document_reference d',
    idCol: 'd.id',
    tokens: { table: 'manifest_token', fk: 'manifest_id', owner: 'd.manifest_id' },
    patientCol: 'd.patient_id',
    manifestCol: 'd.manifest_id',
    columns: {
      id: 'd.id',
      status: 'd.status',
      format: 'd.format',
      patient: 'd.patient_id',
      date: 'd.date',
      creation: 'd.creation',
      lastUpdated: 'd.last_updated',
      authorTerms: 'd.author_terms',
    },
    nullableSorts: ['creation'],
    // meta apart (small, parsed) and the rest as text, both stored (migration 0007): the search
    // response splices the text unparsed (fhir/format.ts sendJsonWithRaw); resourceType is
    // re-added first by the renderer.
    select: `d.id, d.resource_meta AS meta, d.body_text, d.patient_id, d.manifest_id, d.last_updated, (SELECT mv.version_id FROM manifest mv WHERE mv.id = d.manifest_id) AS version_id`,
  },
  ImagingStudy: {
    from: 'manifest m JOIN imaging_study s ON s.manifest_id = m.id',
    // one row per referenced study (migration 0011): the ImagingStudy id is the row's
    idCol: 's.resource_id',
    tokens: { table: 'manifest_token', fk: 'manifest_id', owner: 'm.id' },
    patientCol: 'm.patient_id',
    manifestCol: 'm.id',
    columns: { status: 'm.status', patient: 'm.patient_id', started: 's.started', lastUpdated: 'm.last_updated', id: 's.resource_id' },
    nullableSorts: ['started'],
    select: 'm.id, m.model, m.sop_instance_uid, m.status, m.patient_id, m.version_id, m.last_updated, s.resource_id, s.study_instance_uid AS study_uid',
    // One ImagingStudy per study: from its current manifest (or the entered-in-error one, shown only on request).
    base: "m.status IN ('current', 'entered-in-error')",
  },
  Patient: {
    from: 'patient p',
    idCol: 'p.id',
    patientCol: 'p.id',
    columns: { id: 'p.id', birthdate: 'p.birth_date', name: 'p.name_text', family: 'p.family', given: 'p.given', lastUpdated: 'p.last_updated' },
    select: 'p.id, p.resource, p.last_updated',
  },
  Endpoint: {
    from: 'endpoint e',
    idCol: 'e.id',
    columns: { id: 'e.id', 'connection-type': 'e.connection_type', lastUpdated: 'e.last_updated' },
    select: 'e.id, e.resource, e.last_updated',
  },
  List: {
    from: 'submission_set l',
    idCol: 'l.id',
    tokens: { table: 'submission_set_token', fk: 'submission_set_id', owner: 'l.id' },
    patientCol: 'l.patient_id',
    columns: { id: 'l.id', status: 'l.status', patient: 'l.patient_id', date: 'l.date', lastUpdated: 'l.last_updated', sourceTerms: 'l.source_terms' },
    nullableSorts: ['date'],
    select: 'l.id, l.resource, l.patient_id, l.last_updated',
  },
};

export interface Compiled {
  sql: string;
  bindings: unknown[];
}

function col(t: TableDef, name: string): string {
  const c = t.columns[name];
  if (!c) throw new Error(`search-sql: no column "${name}"`);
  return c;
}

/** Sort expression: nullable keys sort as -infinity so the keyset comparison stays total. */
function sortExpr(t: TableDef, s: SortKey): string {
  const c = col(t, s.column);
  return t.nullableSorts?.includes(s.column) ? `COALESCE(${c}, '-infinity'::timestamptz)` : c;
}

/** Lists up to this long are bound value by value (IN (?, …)); longer ones as one array. */
const INLINE_LIST_MAX = 16;

/**
 * `expr` equals one of `values`. Short lists are written IN (?, ?, …) rather than = ANY(?::text[]):
 * PostgreSQL then knows the list length when it plans a named statement generically, so it moves
 * to the cached generic plan after five executions (plancache.c choose_custom_plan) instead of
 * re-planning every request — with one array parameter of unknown length the generic plan's
 * estimate stays worse than the custom one's and every execution is planned again.
 */
function anyOf(expr: string, values: readonly string[], b: unknown[]): string {
  if (values.length === 0) return 'FALSE';
  if (values.length === 1) {
    b.push(values[0]);
    return `${expr} = ?`;
  }
  if (values.length <= INLINE_LIST_MAX) {
    b.push(...values);
    return `${expr} IN (${values.map(() => '?').join(', ')})`;
  }
  b.push(values);
  return `${expr} = ANY(?::text[])`;
}

function tokenMatchSql(m: TokenMatch, alias: string, b: unknown[]): string {
  const parts: string[] = [];
  if (m.values) parts.push(anyOf(`${alias}.value`, m.values, b));
  if (m.system !== undefined) {
    parts.push(`${alias}.system = ?`);
    b.push(m.system);
  }
  return parts.length ? parts.join(' AND ') : 'TRUE';
}

function dateSql(c: string, v: DateBound, b: unknown[]): string {
  // Point-valued targets (FHIR 3.1.1.4.2 with a zero-width target range).
  switch (v.prefix) {
    case 'eq':
      b.push(v.lo, v.hi);
      return `(${c} >= ?::timestamptz AND ${c} < ?::timestamptz)`;
    case 'ne':
      b.push(v.lo, v.hi);
      return `(${c} < ?::timestamptz OR ${c} >= ?::timestamptz)`;
    case 'lt':
    case 'eb':
      b.push(v.lo);
      return `${c} < ?::timestamptz`;
    case 'le':
      b.push(v.hi);
      return `${c} < ?::timestamptz`;
    case 'gt':
    case 'sa':
      b.push(v.hi);
      return `${c} >= ?::timestamptz`;
    case 'ge':
      b.push(v.lo);
      return `${c} >= ?::timestamptz`;
  }
}

/**
 * context.period as an interval [start, end]. MADO gives only period.start (the study start,
 * IG MHD envelope); a missing end is taken as the start (an instant), not as "ongoing" — otherwise
 * every study would match period=ge<anything>. Semantics per FHIR 3.1.1.4.2 for ranges; ge/lt
 * give MHD's serviceStopTimeFrom/serviceStartTimeTo overlap (ITI-67 "period").
 */
function periodSql(v: DateBound, b: unknown[]): string {
  const s = 'd.period_start';
  const e = 'COALESCE(d.period_end, d.period_start)';
  switch (v.prefix) {
    case 'eq':
      b.push(v.lo, v.hi);
      return `(${s} >= ?::timestamptz AND ${e} < ?::timestamptz)`;
    case 'ne':
      b.push(v.lo, v.hi);
      return `(${s} < ?::timestamptz OR ${e} >= ?::timestamptz)`;
    case 'gt':
      b.push(v.hi);
      return `${e} >= ?::timestamptz`;
    case 'ge':
      b.push(v.lo);
      return `${e} >= ?::timestamptz`;
    case 'lt':
      b.push(v.lo);
      return `${s} < ?::timestamptz`;
    case 'le':
      b.push(v.hi);
      return `${s} < ?::timestamptz`;
    case 'sa':
      b.push(v.hi);
      return `${s} >= ?::timestamptz`;
    case 'eb':
      b.push(v.lo);
      return `${e} < ?::timestamptz`;
  }
}

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Study Instance UID tokens belong to the manifest, which has one ImagingStudy row per referenced
 * study (migration 0011): a row matches when the UID is its own study's, or when another code
 * (accession-number) matched. A filter on top of the token lookup, so the index plan stays.
 */
function ownStudyOnly(sql: string, tk: NonNullable<TableDef['tokens']>, c: Extract<SqlCond, { k: 'token' }>, b: unknown[]): string {
  const uids = [...new Set(c.or.flatMap((m) => m.values ?? []).map((v) => (v.startsWith('urn:oid:') ? v.slice(8) : v)))];
  if (!uids.length) return sql;
  const own = anyOf('s.study_instance_uid', uids, b);
  const other = c.codes.filter((x) => x !== 'study-instance-uid');
  if (!other.length) return `(${sql} AND ${own})`;
  const codeSql = anyOf('t.code', other, b);
  const ors = c.or.map((m) => `(${tokenMatchSql(m, 't', b)})`).join(' OR ');
  return `(${sql} AND (${own} OR ${tk.owner} IN (SELECT t.${tk.fk} FROM ${tk.table} t WHERE ${codeSql} AND (${ors}))))`;
}

type Cond<K extends SqlCond['k']> = Extract<SqlCond, { k: K }>;

function tokenSql(t: TableDef, c: Cond<'token'>, b: unknown[]): string {
  const tk = t.tokens!;
  const codeSql = anyOf('t.code', c.codes, b);
  const ors = c.or.map((m) => `(${tokenMatchSql(m, 't', b)})`).join(' OR ');
  // IN (subquery) lets the planner start from the token index (manifest_token_lookup).
  const sql = `${tk.owner} ${c.not ? 'NOT IN' : 'IN'} (SELECT t.${tk.fk} FROM ${tk.table} t WHERE ${codeSql} AND (${ors}))`;
  if (t !== TABLES.ImagingStudy || c.not) return sql;
  if (c.codes.includes('study-instance-uid')) return ownStudyOnly(sql, tk, c, b);
  return c.codes.length === 1 ? ownSeriesOnly(sql, c, b) : sql;
}

/**
 * Modality and Series Instance UID tokens are per manifest too: a row of a manifest referencing
 * several studies matches only when one of its own series has the value (its Image Library
 * modalities included, for the manifest's own study).
 */
function ownSeriesOnly(sql: string, c: Cond<'token'>, b: unknown[]): string {
  const values = [...new Set(c.or.flatMap((m) => m.values ?? []))];
  if (!values.length) return sql;
  if (c.codes[0] !== 'modality' && c.codes[0] !== 'series') return sql;
  b.push(values);
  if (c.codes[0] === 'modality') return `(${sql} AND s.modalities && ?::text[])`;
  return `(${sql} AND EXISTS (SELECT 1 FROM imaging_series so WHERE so.manifest_id = s.manifest_id AND so.study_instance_uid = s.study_instance_uid AND so.series_instance_uid = ANY(?::text[])))`;
}

/** FHIR string search: case-insensitive "starts with" on any word; :exact = whole value, case-sensitive. */
function stringSql(t: TableDef, c: Cond<'string'>, b: unknown[]): string {
  const cc = col(t, c.column);
  const ors = c.or.map((v) => {
    if (c.exact) {
      b.push(v);
      return `${cc} = lower(?)`;
    }
    const p = likeEscape(v.toLowerCase());
    b.push(`${p}%`, `% ${p}%`);
    return `(${cc} LIKE ? OR ${cc} LIKE ?)`;
  });
  return `(${ors.join(' OR ')})`;
}

function docrefIdentifierSql(t: TableDef, c: Cond<'docref-identifier'>, b: unknown[]): string {
  const parts: string[] = [];
  if (c.tokens.length) parts.push(tokenSql(t, { k: 'token', codes: ['identifier'], or: c.tokens, not: false }, b));
  if (c.uuids.length) parts.push(anyOf('d.entry_uuid', c.uuids, b)); // docref_entry_uuid
  const any = parts.length ? (parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`) : 'FALSE';
  return c.not ? `NOT COALESCE(${any}, FALSE)` : any;
}

/**
 * Terms 'given:<folded prefix>' / 'given=<exact>' (migration 0005); the query value is folded by
 * the same SQL function as the stored one. The cardinality predicate selects the partial GIN index
 * (docref_author_terms / submission_set_source_terms).
 */
function nameTermsSql(t: TableDef, c: Cond<'name-terms'>, b: unknown[]): string {
  const cc = col(t, c.column);
  const terms = c.or.map((v) => {
    b.push(v);
    return c.exact ? `'${c.part}=' || ?::text` : `'${c.part}:' || mado_fold(?::text)`;
  });
  return `(${cc} && ARRAY[${terms.join(', ')}] AND cardinality(${cc}) > 0)`;
}

function condSql(t: TableDef, c: SqlCond, b: unknown[]): string {
  switch (c.k) {
    case 'false':
      return 'FALSE';
    case 'token':
      return tokenSql(t, c, b);
    case 'token-missing': {
      const tk = t.tokens!;
      return `${c.missing ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${tk.table} t WHERE t.${tk.fk} = ${tk.owner} AND ${anyOf('t.code', c.codes, b)})`;
    }
    case 'column-in': {
      const cc = col(t, c.column);
      return c.not ? `(${cc} IS NULL OR NOT (${anyOf(cc, c.values, b)}))` : anyOf(cc, c.values, b);
    }
    case 'column-missing':
      return `${col(t, c.column)} IS ${c.missing ? '' : 'NOT '}NULL`;
    case 'date': {
      const cc = col(t, c.column);
      const expr = c.column === 'birthdate' ? `(${cc}::timestamp AT TIME ZONE 'UTC')` : cc;
      return `(${c.or.map((v) => dateSql(expr, v, b)).join(' OR ')})`;
    }
    case 'period':
      return `(${c.or.map((v) => periodSql(v, b)).join(' OR ')})`;
    case 'string':
      return stringSql(t, c, b);
    case 'docref-identifier':
      return docrefIdentifierSql(t, c, b);
    case 'name-terms':
      return nameTermsSql(t, c, b);
    case 'related-study': {
      // context.related names the manifest's studies by identifier: documents of every manifest
      // referencing the study of these ImagingStudy resources (only ImagingStudy ids that resolve:
      // current or entered-in-error manifests).
      // A manifest may reference several studies (one ImagingStudy each, migration 0011).
      b.push(c.ids);
      return `d.manifest_id IN (SELECT s2.manifest_id FROM imaging_study s2 WHERE s2.study_instance_uid IN (SELECT si.study_instance_uid FROM imaging_study si JOIN manifest mi ON mi.id = si.manifest_id WHERE si.resource_id = ANY(?::text[]) AND mi.status IN ('current', 'entered-in-error')))`;
    }
    case 'patient-identifier': {
      const ors = c.or.map((m) => `(${tokenMatchSql(m, 'pi', b)})`).join(' OR ');
      return `p.id ${c.not ? 'NOT IN' : 'IN'} (SELECT pi.patient_id FROM patient_identifier pi WHERE ${ors})`;
    }
    case 'by-docref-id': {
      // ImagingStudy ids share the hash of their manifest's docref ids (src/model/ids.ts).
      b.push(c.ids);
      return `m.id ${c.not ? 'NOT IN' : 'IN'} (SELECT dr.manifest_id FROM document_reference dr WHERE dr.id = ANY(?::text[]))`;
    }
    case 'endpoint':
      b.push(c.ids);
      return `m.id IN (SELECT me.manifest_id FROM manifest_endpoint me WHERE me.endpoint_id = ANY(?::text[]))`;
  }
}

function patientSql(t: TableDef, table: SearchTable, pf: PatientFilter, b: unknown[]): string | undefined {
  if (pf.all) return undefined;
  if (table === 'Endpoint') {
    // Endpoints are shared; a patient-limited caller sees those of manifests it may see.
    return `EXISTS (SELECT 1 FROM manifest_endpoint me JOIN manifest mm ON mm.id = me.manifest_id WHERE me.endpoint_id = e.id AND ${anyOf('mm.patient_id', pf.patientIds, b)})`;
  }
  return anyOf(t.patientCol!, pf.patientIds, b);
}

function whereSql(plan: Pick<SqlPlan, 'table' | 'conds'>, pf: PatientFilter, b: unknown[]): string {
  const t = TABLES[plan.table];
  const parts: string[] = [];
  if (t.base) parts.push(t.base);
  const p = patientSql(t, plan.table, pf, b);
  if (p) parts.push(p);
  // Granular scopes and confidentiality narrow manifests (DocumentReference, ImagingStudy).
  const r = t.manifestCol ? restrictionSql(pf.restrict, t.manifestCol, b) : undefined;
  if (r) parts.push(r);
  for (const c of plan.conds) parts.push(condSql(t, c, b));
  return parts.length ? parts.join('\n  AND ') : 'TRUE';
}

/**
 * Keyset condition "strictly after the cursor row" in the order (k1, …, kn, id): for keys
 * [k1, k2] that is k1 ≷ v1 OR (k1 = v1 AND (k2 ≷ v2 OR (k2 = v2 AND id > vid))). Sort
 * expressions are never NULL (sortExpr), so the order is total and pages never skip or repeat.
 */
function keysetSql(t: TableDef, sort: SortSpec, cursor: Cursor, b: unknown[]): string {
  const at = (i: number): string => {
    if (i === sort.length) {
      b.push(cursor.id);
      return `${t.idCol} > ?`;
    }
    const se = sortExpr(t, sort[i]!);
    b.push(cursor.v[i], cursor.v[i]);
    const cmp = `${se} ${sort[i]!.desc ? '<' : '>'} ?::timestamptz OR `;
    const rest = at(i + 1);
    return `${cmp}(${se} = ?::timestamptz AND ${i + 1 === sort.length ? rest : `(${rest})`})`;
  };
  // Bindings are pushed in text order: comparison, equality, then the inner levels.
  return at(0);
}

/** The page query: matches after the cursor, in sort order with the id tiebreak, limit + 1 rows. */
export function compileSearch(plan: SqlPlan, pf: PatientFilter): Compiled {
  const t = TABLES[plan.table];
  const b: unknown[] = [];
  const exprs = plan.sort.map((k) => sortExpr(t, k));
  let where = whereSql(plan, pf, b);
  if (plan.cursor) {
    // Keyset: strictly after the last row sent, so concurrent inserts never shift a page.
    if (plan.cursor.v.length !== plan.sort.length) throw new Error('search-sql: cursor does not match the sort');
    where += `\n  AND (${keysetSql(t, plan.sort, plan.cursor, b)})`;
  }
  b.push(plan.limit + 1);
  const order = plan.sort.map((k, i) => `${exprs[i]} ${k.desc ? 'DESC' : 'ASC'}`).join(', ');
  const sql = `SELECT ${t.select}, ARRAY[${exprs.map((e) => `(${e})::text`).join(', ')}] AS sort_key\nFROM ${t.from}\nWHERE ${where}\nORDER BY ${order}, ${t.idCol} ASC\nLIMIT ?`;
  return { sql, bindings: b };
}

export function compileCount(plan: Pick<SqlPlan, 'table' | 'conds'>, pf: PatientFilter): Compiled {
  const t = TABLES[plan.table];
  const b: unknown[] = [];
  const where = whereSql(plan, pf, b);
  return { sql: `SELECT count(*)::int AS n FROM ${t.from} WHERE ${where}`, bindings: b };
}

export type SearchRow = Record<string, unknown> & { id: string; sort_key: Array<string | null> };

export async function runSearch(db: Knex, plan: SqlPlan, pf: PatientFilter): Promise<{ rows: SearchRow[]; more: boolean }> {
  const q = compileSearch(plan, pf);
  const res = await rawPrepared(db, q.sql, q.bindings);
  const rows = res.rows as SearchRow[];
  const more = rows.length > plan.limit;
  return { rows: more ? rows.slice(0, plan.limit) : rows, more };
}

export async function countSearch(db: Knex, plan: Pick<SqlPlan, 'table' | 'conds'>, pf: PatientFilter): Promise<number> {
  const q = compileCount(plan, pf);
  const res = await rawPrepared(db, q.sql, q.bindings);
  return (res.rows[0] as { n: number }).n;
}

/** Planner estimate of the number of matches (`_total=estimate`): no scan of the matches. */
export async function estimateSearch(db: Knex, plan: Pick<SqlPlan, 'table' | 'conds'>, pf: PatientFilter): Promise<number> {
  const t = TABLES[plan.table];
  const b: unknown[] = [];
  const where = whereSql(plan, pf, b);
  const res = await db.raw(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${t.from} WHERE ${where}`, b as Knex.RawBinding[]);
  const plan0 = (res.rows[0] as { 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> })['QUERY PLAN'][0]!;
  return Math.round(plan0.Plan['Plan Rows']);
}

// ---- _include targets -------------------------------------------------------------------------

export async function patientsByIds(db: Knex, ids: string[], pf: PatientFilter): Promise<Array<{ id: string; resource: Record<string, unknown>; last_updated: Date }>> {
  if (!ids.length) return [];
  const b: unknown[] = [ids];
  let sql = 'SELECT id, resource, last_updated FROM patient WHERE id = ANY(?::text[])';
  if (!pf.all) {
    sql += ' AND id = ANY(?::text[])';
    b.push(pf.patientIds);
  }
  return (await db.raw(sql + ' ORDER BY id', b as Knex.RawBinding[])).rows;
}

export async function endpointsByManifests(db: Knex, manifestIds: string[]): Promise<Array<{ id: string; resource: Record<string, unknown>; last_updated: Date }>> {
  if (!manifestIds.length) return [];
  const sql = 'SELECT DISTINCT e.id, e.resource, e.last_updated FROM endpoint e JOIN manifest_endpoint me ON me.endpoint_id = e.id WHERE me.manifest_id = ANY(?::text[]) ORDER BY e.id';
  return (await db.raw(sql, [manifestIds])).rows;
}
