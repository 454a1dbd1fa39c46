/**
 * All SQL behind DICOMweb: QIDO-RS (RAD-129) answered from the manifest index, and WADO-RS
 * (RAD-107) routing + authorisation. One rule everywhere (decisions.md D40):
 * an instance is visible when it is referenced by a manifest with status 'current' whose patient
 * the principal may see (PatientFilter applied inside the SQL, never as a post-filter), and it is
 * not in rejected_instance (IOCM). Series and studies are visible through their visible instances.
 */
import type { Knex } from 'knex';
import type { PatientFilter } from '../model/access.js';
import { restrictionSql } from './access-sql.js';
import { rawPrepared, type Db } from './db.js';
import { textArray } from './manifests.js';

export interface VisibleInstance {
  study: string;
  series: string;
  sop: string;
  sopClass: string;
  instanceNumber: number | null;
  frames: number | null;
  retrieveUrl: string | null;
  retrieveLocationUid: string | null;
  retrieveAeTitle: string | null;
  patientId: string | null;
}

/** A series row's instances (parallel arrays, migration 0006) as rows `ii`. */
const UNNEST_II = `unnest(se.sop_instance_uids, se.sop_class_uids, se.instance_numbers, se.frame_counts) as ii(sop_instance_uid, sop_class_uid, instance_number, number_of_frames)`;

/**
 * "This instance is not rejected" as a scalar probe of rejected_instance's primary key, not NOT
 * EXISTS: PostgreSQL plans NOT EXISTS as an anti-join whose row estimate collapses once
 * rejected_instance holds many rows, and then picks hashed anti-joins rebuilt per outer row or
 * nested loops over every instance (measured: one /series?limit=100 over 1,000 manifests ran > 75 s
 * once 114 instances were rejected; /instances?limit=100 over 300 manifests took 3.9 s with 20,000).
 */
const NOT_REJECTED = (sop: string) => `(select true from rejected_instance r where r.sop_instance_uid = ${sop}) is null`;

const VISIBLE = `
  from imaging_series se
  join manifest m on m.id = se.manifest_id and m.status = 'current'
  cross join lateral ${UNNEST_II}
  where ${NOT_REJECTED('ii.sop_instance_uid')}`;

function patientSql(f: PatientFilter, col = 'm.patient_id'): { sql: string; bindings: unknown[] } {
  const bindings: unknown[] = f.all ? [] : [f.patientIds];
  let sql = f.all ? '' : ` and ${col} = any(?::text[])`;
  // Granular scopes (ImagingStudy modality) and confidentiality labels narrow the manifests too.
  const r = restrictionSql(f.restrict, 'm.id', bindings);
  if (r) sql += ` and ${r}`;
  return { sql, bindings };
}

/**
 * Visible instances of a study, optionally narrowed to a series and an instance, with the
 * series' retrieve location (for routing). Ordered by series, instance number.
 */
export async function visibleInstances(db: Db, f: PatientFilter, study: string, series?: string, sop?: string): Promise<VisibleInstance[]> {
  const p = patientSql(f);
  const bindings: unknown[] = [study];
  let sql = `select se.study_instance_uid as study, se.series_instance_uid as series, ii.sop_instance_uid as sop, ii.sop_class_uid as "sopClass",
      ii.instance_number as "instanceNumber", ii.number_of_frames as frames, se.retrieve_url as "retrieveUrl",
      se.retrieve_location_uid as "retrieveLocationUid", se.retrieve_ae_title as "retrieveAeTitle", m.patient_id as "patientId"
    ${VISIBLE} and se.study_instance_uid = ?`;
  if (series !== undefined) {
    sql += ' and se.series_instance_uid = ?';
    bindings.push(series);
  }
  if (sop !== undefined) {
    sql += ' and ii.sop_instance_uid = ?';
    bindings.push(sop);
  }
  sql += p.sql + ' order by se.series_instance_uid, ii.instance_number nulls last, ii.sop_instance_uid';
  const r = await rawPrepared<VisibleInstance>(db, sql, [...bindings, ...p.bindings]);
  return r.rows;
}

// ---------------------------------------------------------------------------------------------
// QIDO-RS

export interface Range {
  from?: string;
  to?: string;
}

/** Matching keys, already validated by src/dicomweb/qido.ts. Patterns use DICOM * and ? wildcards. */
export interface QidoCriteria {
  studyUids?: string[];
  seriesUids?: string[];
  sopUids?: string[];
  sopClassUids?: string[];
  studyDate?: Range;
  studyTime?: Range;
  accessionNumber?: string;
  accessionIssuer?: string;
  modalitiesInStudy?: string[];
  modalities?: string[];
  patientId?: string;
  patientIdIssuer?: string;
  patientName?: string;
  patientBirthDate?: Range;
  patientSex?: string;
  studyDescription?: string;
  studyId?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  instanceNumber?: number;
}

export type QidoLevel = 'study' | 'series' | 'instance';

export interface QidoQuery {
  level: QidoLevel;
  criteria: QidoCriteria;
  limit: number;
  offset: number;
}

export interface StudyRow {
  study: string;
  studyDate: string | null;
  studyTime: string | null;
  description: string | null;
  accessionNumber: string | null;
  accessionIssuer: string | null;
  modalities: string[];
  patientName: string | null;
  patientIdValue: string | null;
  patientIdIssuer: string | null;
  patientBirthDate: string | null;
  patientSex: string | null;
  referringPhysician: string | null;
  studyId: string | null;
  timezoneOffset: string | null;
  nSeries: number;
  nInstances: number;
  patientId: string | null;
}

export interface SeriesRow extends StudyRow {
  series: string;
  modality: string | null;
  seriesNumber: number | null;
  seriesDescription: string | null;
  seriesDate: string | null;
  seriesTime: string | null;
  nSeriesInstances: number;
}

export interface InstanceRow extends SeriesRow {
  sop: string;
  sopClass: string;
  instanceNumber: number | null;
  frames: number | null;
}

/** DICOM wildcard (* ?) → SQL LIKE pattern, escaping LIKE's own metacharacters. */
export function likePattern(v: string): string {
  return v.replace(/[\\%_]/g, (c) => '\\' + c).replace(/\*/g, '%').replace(/\?/g, '_');
}

function hasWildcard(v: string): boolean {
  return /[*?]/.test(v);
}

function textMatch(q: Knex.QueryBuilder, col: string, v: string, caseInsensitive: boolean): void {
  if (hasWildcard(v)) q.whereRaw(`${col} ${caseInsensitive ? 'ilike' : 'like'} ? escape '\\'`, [likePattern(v)]);
  else if (caseInsensitive) q.whereRaw(`lower(${col}) = lower(?)`, [v]);
  else q.where(col, v);
}

function rangeMatch(q: Knex.QueryBuilder, col: string, r: Range): void {
  if (r.from !== undefined && r.to !== undefined && r.from === r.to) q.where(col, r.from);
  else {
    if (r.from !== undefined) q.where(col, '>=', r.from);
    if (r.to !== undefined) q.where(col, '<=', r.to);
  }
}

const STUDY_COLS = [
  'st.study_instance_uid as study',
  'st.study_date as studyDate',
  'st.study_time as studyTime',
  'st.description as description',
  'st.accession_number as accessionNumber',
  'st.modalities as modalities',
  'st.patient_name as patientName',
  'st.patient_id_value as patientIdValue',
  'st.patient_birth_date as patientBirthDate',
  'st.patient_sex as patientSex',
  'm.patient_id as patientId',
];

const STUDY_RAW_COLS = `st.patient_id_issuer_local as "patientIdIssuer",
  coalesce(st.accession_issuer_local, st.accession_issuer) as "accessionIssuer",
  st.referring_physician as "referringPhysician",
  st.study_id as "studyId",
  st.timezone_offset as "timezoneOffset"`;

/**
 * Visible (non-rejected) instance counts. A series row's instances are unique (the writer
 * de-duplicates), so visible = cardinality − rejected among them, the rejected ones counted with one
 * index scan per series (= ANY(array)) rather than an anti-join probe per instance. The counts are
 * scalar subqueries in the select list, which PostgreSQL evaluates after ORDER BY … LIMIT, i.e. for
 * the returned page only; whether a study or series has a visible instance at all (the filter, for
 * every candidate row) is an EXISTS that stops at the first one (figures: bench/results-qido.md).
 */
const VISIBLE_N = (s: string) => `(cardinality(${s}.sop_instance_uids) - (select count(*)::int from rejected_instance r where r.sop_instance_uid = any(${s}.sop_instance_uids)))`;
const STUDY_SERIES = 'from imaging_series cs where cs.manifest_id = st.manifest_id and cs.study_instance_uid = st.study_instance_uid';
/** Both study counts from one pass over the study's series ([instances, series]; split in studyCounts()). */
const STUDY_COUNTS = `(select array[coalesce(sum(v.n), 0), count(*) filter (where v.n > 0)]::int[]
    from (select ${VISIBLE_N('cs')} as n ${STUDY_SERIES}) v) as "studyCounts"`;
const SERIES_COUNT = `${VISIBLE_N('se')} as "nSeriesInstances"`;
const STUDY_VISIBLE = `exists (select 1 from imaging_series cs cross join lateral unnest(cs.sop_instance_uids) u(sop)
  where cs.manifest_id = st.manifest_id and cs.study_instance_uid = st.study_instance_uid and ${NOT_REJECTED('u.sop')})`;
const SERIES_VISIBLE = `exists (select 1 from unnest(se.sop_instance_uids) u(sop) where ${NOT_REJECTED('u.sop')})`;

function applyStudyCriteria(q: Knex.QueryBuilder, c: QidoCriteria): void {
  if (c.studyUids) q.whereIn('st.study_instance_uid', c.studyUids);
  if (c.studyDate) rangeMatch(q, 'st.study_date', c.studyDate);
  if (c.studyTime) rangeMatch(q, 'st.study_time', c.studyTime);
  if (c.accessionNumber !== undefined) textMatch(q, 'st.accession_number', c.accessionNumber, false);
  if (c.accessionIssuer !== undefined) {
    q.whereRaw('(st.accession_issuer = ? or st.accession_issuer_local = ?)', [c.accessionIssuer, c.accessionIssuer]);
  }
  if (c.modalitiesInStudy) q.whereRaw('st.modalities && ?::text[]', [c.modalitiesInStudy]);
  if (c.patientId !== undefined) textMatch(q, 'st.patient_id_value', c.patientId, false);
  if (c.patientIdIssuer !== undefined) {
    q.whereRaw('(st.patient_id_issuer = ? or st.patient_id_issuer_local = ?)', [c.patientIdIssuer, c.patientIdIssuer]);
  }
  // PN matching is case-insensitive (PS3.4 C.2.2.2.4)
  if (c.patientName !== undefined) textMatch(q, 'st.patient_name', c.patientName, true);
  if (c.patientBirthDate) rangeMatch(q, 'st.patient_birth_date', c.patientBirthDate);
  if (c.patientSex !== undefined) q.where('st.patient_sex', c.patientSex);
  if (c.studyDescription !== undefined) textMatch(q, 'st.description', c.studyDescription, true);
  if (c.studyId !== undefined) q.where('st.study_id', c.studyId);
}

function applySeriesCriteria(q: Knex.QueryBuilder, c: QidoCriteria): void {
  if (c.seriesUids) q.whereIn('se.series_instance_uid', c.seriesUids);
  if (c.modalities) q.whereIn('se.modality', c.modalities);
  if (c.seriesDescription !== undefined) textMatch(q, 'se.description', c.seriesDescription, true);
  if (c.seriesNumber !== undefined) q.where('se.series_number', c.seriesNumber);
}

function applyPatient(q: Knex.QueryBuilder, f: PatientFilter): void {
  if (!f.all) q.whereRaw('m.patient_id = any(?::text[])', [f.patientIds]);
  const b: unknown[] = [];
  const r = restrictionSql(f.restrict, 'm.id', b);
  if (r) q.whereRaw(r, b as Knex.RawBinding[]);
}

/**
 * One page of QIDO-RS results (limit + 1 rows are read so the caller can tell truncation).
 * Stable order so offset paging never skips or repeats a row.
 */
/**
 * A series' study row, joined as a one-row lateral subquery rather than on (manifest_id,
 * study_instance_uid): the planner multiplies the two columns' selectivities as if independent and
 * then expects ~1/300 of the series to have a study, so it unnested every instance of every series
 * and sorted them all for one page (1.26 s for /instances?limit=100 over 1,000 manifests, bench:qido);
 * with one row per series it walks imaging_series in index order and stops at the page.
 */
const STUDY_OF_SERIES = `cross join lateral (select * from imaging_study st1
  where st1.manifest_id = se.manifest_id and st1.study_instance_uid = se.study_instance_uid limit 1) st`;
/** Study columns and counts plus the series columns, for series- and instance-level QIDO
 * (`se` must already be joined). */
function withSeriesColumns(db: Db, q: Knex.QueryBuilder): Knex.QueryBuilder {
  return q
    .joinRaw(STUDY_OF_SERIES)
    .select(...STUDY_COLS)
    .select(db.raw(STUDY_RAW_COLS))
    .select(db.raw(`${STUDY_COUNTS}, ${SERIES_COUNT}`))
    .select('se.series_instance_uid as series', 'se.modality as modality', 'se.series_number as seriesNumber', 'se.description as seriesDescription', 'se.series_date as seriesDate', 'se.series_time as seriesTime');
}

export async function searchIndex(db: Db, f: PatientFilter, query: QidoQuery): Promise<Array<StudyRow | SeriesRow | InstanceRow>> {
  const { level, criteria: c } = query;
  const q = db.queryBuilder();
  if (level === 'study') {
    q.from('imaging_study as st')
      .join('manifest as m', function () {
        this.on('m.id', '=', 'st.manifest_id').andOnVal('m.status', '=', 'current');
      })
      .select(...STUDY_COLS)
      .select(db.raw(STUDY_RAW_COLS))
      .select(db.raw(STUDY_COUNTS))
      .whereRaw(STUDY_VISIBLE);
    applyStudyCriteria(q, c);
    // series/instance keys at study level: the study must contain a matching visible series/instance
    if (c.seriesUids || c.modalities || c.sopUids || c.sopClassUids) {
      q.whereExists(function () {
        this.select(db.raw('1'))
          .from('imaging_series as se')
          .joinRaw(`cross join lateral ${UNNEST_II}`)
          .whereRaw('se.manifest_id = st.manifest_id and se.study_instance_uid = st.study_instance_uid')
          .whereRaw(NOT_REJECTED('ii.sop_instance_uid'));
        applySeriesCriteria(this, c);
        if (c.sopUids) this.whereIn('ii.sop_instance_uid', c.sopUids).whereRaw('se.sop_instance_uids && ?::text[]', [textArray(c.sopUids)]);
        if (c.sopClassUids) this.whereIn('ii.sop_class_uid', c.sopClassUids);
      });
    }
    q.orderByRaw('st.study_date desc nulls last, st.study_time desc nulls last, st.study_instance_uid');
  } else if (level === 'series') {
    q.from('imaging_series as se')
      .join('manifest as m', function () {
        this.on('m.id', '=', 'se.manifest_id').andOnVal('m.status', '=', 'current');
      });
    withSeriesColumns(db, q).whereRaw(SERIES_VISIBLE);
    applyStudyCriteria(q, c);
    applySeriesCriteria(q, c);
    if (c.sopUids || c.sopClassUids) {
      q.whereExists(function () {
        this.select(db.raw('1')).from(db.raw('unnest(se.sop_instance_uids, se.sop_class_uids) as ii(sop_instance_uid, sop_class_uid)'));
        if (c.sopUids) this.whereIn('ii.sop_instance_uid', c.sopUids);
        if (c.sopClassUids) this.whereIn('ii.sop_class_uid', c.sopClassUids);
        this.whereRaw(NOT_REJECTED('ii.sop_instance_uid'));
      });
    }
    q.orderByRaw('se.study_instance_uid, se.series_number nulls last, se.series_instance_uid');
  } else {
    q.from('imaging_series as se')
      .join('manifest as m', function () {
        this.on('m.id', '=', 'se.manifest_id').andOnVal('m.status', '=', 'current');
      })
      .joinRaw(`cross join lateral ${UNNEST_II}`);
    withSeriesColumns(db, q)
      .select('ii.sop_instance_uid as sop', 'ii.sop_class_uid as sopClass', 'ii.instance_number as instanceNumber', 'ii.number_of_frames as frames')
      .whereRaw(NOT_REJECTED('ii.sop_instance_uid'));
    applyStudyCriteria(q, c);
    applySeriesCriteria(q, c);
    if (c.sopUids) {
      q.whereIn('ii.sop_instance_uid', c.sopUids);
      q.whereRaw('se.sop_instance_uids && ?::text[]', [textArray(c.sopUids)]); // skips series without a match before unnesting
    }
    if (c.sopClassUids) q.whereIn('ii.sop_class_uid', c.sopClassUids);
    if (c.instanceNumber !== undefined) q.where('ii.instance_number', c.instanceNumber);
    q.orderByRaw('se.study_instance_uid, se.series_instance_uid, ii.instance_number nulls last, ii.sop_instance_uid');
  }
  applyPatient(q, f);
  q.limit(query.limit + 1).offset(query.offset);
  return ((await q) as Array<StudyRow & { studyCounts?: number[] }>).map(studyCounts) as Array<StudyRow | SeriesRow | InstanceRow>;
}

function studyCounts<R extends StudyRow & { studyCounts?: number[] }>(r: R): StudyRow {
  const { studyCounts: c, ...rest } = r;
  return { ...rest, nInstances: c?.[0] ?? 0, nSeries: c?.[1] ?? 0 };
}
