/**
 * Manifest store: every write (manifest, document_reference, manifest_token, patient
 * (+identifier), imaging_study/series/instance, rejected_instance, submission_set(+token), endpoint,
 * manifest_endpoint). Reads for search/retrieve live elsewhere (search-sql.ts, imaging-index.ts).
 *
 * All functions take a transaction: the ingest service (src/ingest/service.ts) opens ONE
 * transaction per submission with runInTransaction(), takes the per-study advisory locks, and
 * either everything below is committed or nothing is.
 *
 * manifest_token rows written here (the search helper relies on EXACTLY these codes):
 *   code                system                                         value
 *   patient.identifier  issuer system (urn:oid:<UEID> when ISO, a URI    patient id value (primary + other ids)
 *                       issuer, else the issuer label) or ''
 *   identifier          urn:ietf:rfc:3986                              urn:oid:<manifest SOP Instance UID>
 *                       ''                                             <manifest SOP Instance UID> (bare)
 *   study-instance-uid  urn:dicom:uid                                  urn:oid:<study uid>   (manifest study + evidence studies)
 *                       ''                                             <study uid> (bare, decisions.md D14)
 *   accession-number    issuer system (as patient.identifier) or ''    accession (study + requested procedures)
 *   modality            http://dicom.nema.org/resources/ontology/DCM   CT, MR, … (study modalities + series modalities)
 *   anatomical-region   code system URI (SCT → http://snomed.info/sct)  code (study-level Target Region)
 *   bodysite            code system URI                                code (series-level body sites)
 *   event               union of the modality and anatomical-region rows (docref context.event, decisions.md D28)
 *   category / type / setting / facility   deployment defaults (config.documentDefaults) system|code
 *   series              ''                                             series instance UID (bare)
 *   endpoint            ''                                             endpoint id (WADO and viewer Endpoints)
 *   security-label      system|code of the securityLabel a Document Source submitted (ITI-65; docref_metadata)
 *   related             system|value of every context.related identifier a source submitted
 * When a source submitted category / type / setting / facility / event / identifier in its
 * DocumentReference (manifest.docref_metadata), those rows are its values instead of (event,
 * identifier: in addition to) the deployment defaults.
 * A code system we cannot translate to a URI keeps the DICOM scheme designator as system.
 *
 * submission_set_token rows: identifier (uniqueId / entryUUID / other identifiers, system|value, plus
 * the bare OID/UUID with system ''),
 * code (MHDlistTypes|submissionset), patient.identifier (as above), source-id (system|value and bare),
 * designation-type (system|code), status (''|current).
 */
import { hash } from 'node:crypto';
import type { Knex } from 'knex';
import { imagingStudyId, manifestResourceIds, patientId as patientIdOf } from '../model/ids.js';
import { otherEvidence, primaryEvidence, type Accession, type Code, type Issuer, type Manifest } from '../model/manifest.js';
import { modalityOfSopClasses } from '../dicom/sop-class-modality.js';
import { rawPrepared, type Db } from './db.js';

export type Tx = Knex.Transaction;
export type ManifestStatus = 'current' | 'superseded' | 'entered-in-error';
export type NativeFormat = 'kos' | 'fhir';

type Json = Record<string, any>;

/** What a Document Source's DocumentReference said (ITI-65), kept as JSON and handed back to the renderer. */
export type DocRefMetadata = object;

export interface Token {
  code: string;
  system: string;
  value: string;
}

/** One manifest version as its DocumentReferences show it. */
export interface DocRefVersion {
  status: ManifestStatus;
  nativeFormat: NativeFormat;
  date: Date;
  lastUpdated: Date;
  versionId: number;
  replacesSop?: string;
  metadata?: DocRefMetadata | null;
  /** false: the manifest has no KOS form (its KOS DocumentReference is withheld) */
  kosForm?: boolean;
}

/**
 * The FHIR side of a manifest, rendered by the caller (src/fhir/mapping/stored.ts storeRendering):
 * the store writes rows and never builds FHIR itself.
 */
export interface ManifestRendering {
  /** Both DocumentReferences, and the patient as the manifest states it (before a source's overlay) */
  docRefs(m: Manifest, v: DocRefVersion): { kos: Json; fhir: Json; derivedPatient?: Json };
  /** Endpoint resources, sorted by id (a fixed lock order across transactions) */
  endpoints(m: Manifest): Json[];
  /** manifest_token rows (codes documented above) */
  tokens(m: Manifest, endpointIds: string[], metadata?: DocRefMetadata | null): Token[];
  /** The patient table's resource */
  patientResource(src: Json, id: string): Json;
  patientIdentifiers(m: Manifest): Array<{ system: string; value: string }>;
  /** Identifier system of an issuer ('' when none) */
  issuerSystem(iss: Issuer | undefined): string;
  /** Study modalities as the DocumentReference shows them */
  studyModalities(m: Manifest): string[];
}

// ---------------------------------------------------------------------------------------------
// Transactions, retries and locks

/** PostgreSQL errors worth retrying the whole transaction for (no client should see them). */
const RETRYABLE = new Set(['40001', '40P01', '23505']);

export function isRetryable(err: unknown): boolean {
  return RETRYABLE.has((err as { code?: string })?.code ?? '');
}

/**
 * Run fn in one READ COMMITTED transaction; retry on serialization failure, deadlock and unique
 * violation (a concurrent duplicate: the retry sees the committed row and answers "duplicate").
 */
export async function runInTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      if (i >= attempts || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 20));
    }
  }
}

/**
 * Serialise writers per study: pg_advisory_xact_lock(hashtext(study uid)), released at commit.
 * Several studies are locked in a fixed (sorted key) order so two submissions cannot deadlock.
 */
export async function lockStudies(tx: Tx, studyUids: Iterable<string>): Promise<void> {
  const uids = [...new Set(studyUids)].sort();
  if (uids.length === 0) return;
  if (uids.length === 1) {
    await rawPrepared(tx, 'select pg_advisory_xact_lock(hashtext(?))', [uids[0]!]);
    return;
  }
  await rawPrepared(tx, 'select pg_advisory_xact_lock(k) from (select distinct hashtext(u) as k from unnest(?::text[]) u order by 1) s', [textArray(uids)]);
}

// ---------------------------------------------------------------------------------------------
// Array parameters (knex expands JS arrays in raw bindings, so arrays go as PostgreSQL literals)

/** One quoted array element; most values (UIDs, codes) need no escaping, so that is tested first. */
function quoteElem(v: string): string {
  return '"' + (v.includes('"') || v.includes('\\') ? v.replace(/[\\"]/g, '\\$&') : v) + '"';
}

export function textArray(values: ReadonlyArray<string | null | undefined>): string {
  let s = '{';
  for (let i = 0; i < values.length; i++) {
    if (i) s += ',';
    const v = values[i];
    s += v === null || v === undefined ? 'NULL' : quoteElem(v);
  }
  return s + '}';
}

export function intArray(values: ReadonlyArray<number | null | undefined>): string {
  let s = '{';
  for (let i = 0; i < values.length; i++) {
    if (i) s += ',';
    const v = values[i];
    s += v === null || v === undefined || !Number.isSafeInteger(v) || Math.abs(v) > 2147483647 ? 'NULL' : String(v);
  }
  return s + '}';
}

// ---------------------------------------------------------------------------------------------
// Identity

export function sha256Hex(b: Uint8Array): string {
  return hash('sha256', b);
}

/** manifest.id: deterministic from the SOP Instance UID (same hash as the ids in model/ids.ts). */
export function manifestIdFor(sopInstanceUid: string): string {
  return `manifest-${manifestResourceIds(sopInstanceUid).binary.slice('kos-'.length)}`;
}

// ---------------------------------------------------------------------------------------------
// Reads the ingest service needs inside its transaction

export interface ManifestRow {
  id: string;
  sop_instance_uid: string;
  native_format: NativeFormat;
  sha256: string;
  status: ManifestStatus;
  study_instance_uid: string;
  patient_id: string | null;
  reference_count: number;
  version_id: number;
  replaces: string | null;
  submission_set_id: string | null;
  created_at: Date;
  last_updated: Date;
}

const ROW_COLS = 'id, sop_instance_uid, native_format, sha256, status, study_instance_uid, patient_id, reference_count, version_id, replaces, submission_set_id, created_at, last_updated';

export async function findManifestBySop(tx: Tx | Db, sopInstanceUid: string): Promise<ManifestRow | undefined> {
  const r = await tx.raw(`select ${ROW_COLS} from manifest where sop_instance_uid = ?`, [sopInstanceUid]);
  return r.rows[0];
}

export async function findManifestById(tx: Tx | Db, id: string, forUpdate = false): Promise<ManifestRow | undefined> {
  const r = await tx.raw(`select ${ROW_COLS} from manifest where id = ?${forUpdate ? ' for update' : ''}`, [id]);
  return r.rows[0];
}

/** Both idempotency lookups in one round trip: the row with this SOP Instance UID and the study's current row. */
export async function findSopAndCurrent(tx: Tx, sopInstanceUid: string, studyUid: string): Promise<{ existing?: ManifestRow; current?: ManifestRow }> {
  const r = await tx.raw(`select ${ROW_COLS} from manifest where sop_instance_uid = ? or (study_instance_uid = ? and status = 'current')`, [sopInstanceUid, studyUid]);
  const rows = r.rows as ManifestRow[];
  return { existing: rows.find((x) => x.sop_instance_uid === sopInstanceUid), current: rows.find((x) => x.study_instance_uid === studyUid && x.status === 'current') };
}

/** findSopAndCurrent for a group of submissions: the rows with these SOP Instance UIDs and these studies' current rows. */
export async function findSopsAndCurrent(tx: Tx, sopInstanceUids: string[], studyUids: string[]): Promise<ManifestRow[]> {
  const r = await rawPrepared<ManifestRow>(tx, `select ${ROW_COLS} from manifest where sop_instance_uid = any(?::text[]) or (study_instance_uid = any(?::text[]) and status = 'current')`, [
    textArray([...new Set(sopInstanceUids)]),
    textArray([...new Set(studyUids)]),
  ]);
  return r.rows;
}

export async function findCurrentForStudy(tx: Tx, studyUid: string): Promise<ManifestRow | undefined> {
  const r = await tx.raw(`select ${ROW_COLS} from manifest where study_instance_uid = ? and status = 'current'`, [studyUid]);
  return r.rows[0];
}

/** The manifest behind a DocumentReference id (either of its two docrefs). */
export async function findManifestByDocRef(tx: Tx | Db, docRefId: string): Promise<{ manifest: ManifestRow; format: NativeFormat } | undefined> {
  const r = await tx.raw(`select d.format as docref_format, ${ROW_COLS.split(', ').map((c) => 'm.' + c).join(', ')} from document_reference d join manifest m on m.id = d.manifest_id where d.id = ?`, [docRefId]);
  const row = r.rows[0];
  if (!row) return undefined;
  const { docref_format, ...manifest } = row;
  return { manifest, format: docref_format };
}

export async function loadModel(tx: Tx | Db, manifestId: string): Promise<Manifest> {
  const r = await tx.raw('select model from manifest where id = ?', [manifestId]);
  return r.rows[0].model as Manifest;
}

export async function loadContent(tx: Tx | Db, manifestId: string): Promise<Buffer | undefined> {
  const r = await tx.raw('select content from manifest where id = ?', [manifestId]);
  return r.rows[0]?.content;
}

export async function loadDocRefMetadata(tx: Tx | Db, manifestId: string): Promise<DocRefMetadata | null> {
  const r = await tx.raw('select docref_metadata from manifest where id = ?', [manifestId]);
  return r.rows[0]?.docref_metadata ?? null;
}

export async function loadDocRef(tx: Tx | Db, id: string): Promise<Record<string, unknown> | undefined> {
  const r = await tx.raw('select resource from document_reference where id = ?', [id]);
  return r.rows[0]?.resource;
}

/**
 * Current manifests referencing any of these instances. An instance belongs to one series
 * (PS3.3 C.7.3), so the lookup goes through imaging_series by Series Instance UID and then tests
 * the series' instance array.
 */
export async function currentManifestsReferencing(tx: Tx, refs: Array<{ series: string; sop: string }>): Promise<ManifestRow[]> {
  if (!refs.length) return [];
  const r = await tx.raw(
    `select ${ROW_COLS} from manifest where status = 'current' and id in
       (select manifest_id from imaging_series where series_instance_uid = any(?::text[]) and sop_instance_uids && ?::text[]) order by id`,
    [textArray([...new Set(refs.map((x) => x.series))]), textArray(refs.map((x) => x.sop))],
  );
  return r.rows;
}

// ---------------------------------------------------------------------------------------------
// Writes

export interface NewManifest {
  model: Manifest;
  nativeFormat: NativeFormat;
  content: Uint8Array;
  contentType: string;
  sha256: string;
  replaces?: string;
  submissionSetId?: string;
  /** What the Document Source's DocumentReference said (ITI-65), overlaid on both docrefs */
  metadata?: DocRefMetadata;
  /** false: no KOS can be written for this FHIR-native manifest (its KOS docref is withheld) */
  kosForm?: boolean;
}

export interface StoredManifest {
  id: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  patientId: string;
  kosDocRefId: string;
  fhirDocRefId: string;
  binaryId: string;
  bundleId: string;
  referenceCount: number;
  versionId: number;
}

/** A FHIR date/dateTime as a timestamptz parameter (null when unparseable). */
function ts(v: unknown): string | null {
  if (typeof v !== 'string' || !v) return null;
  const s = /^\d{4}$/.test(v) ? `${v}-01-01` : /^\d{4}-\d{2}$/.test(v) ? `${v}-01` : v;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function pnString(pn: { alphabetic?: string; ideographic?: string; phonetic?: string } | undefined): string | null {
  if (!pn) return null;
  const s = [pn.alphabetic ?? '', pn.ideographic ?? '', pn.phonetic ?? ''].join('=').replace(/=+$/, '');
  return s || null;
}

function lower(s: string | undefined): string | null {
  return s ? s.toLowerCase() : null;
}

/** One SQL fragment with its bindings; fragments are joined into one data-modifying CTE statement. */
interface Part {
  sql: string;
  bindings: unknown[];
}

function patientParts(m: Manifest, id: string, derived: Json, r: ManifestRendering): Part[] {
  const res = r.patientResource(derived, id);
  // Every PN component group is searchable (Patient?name=, family=, given=); ideographic and phonetic
  // names are also written without a space, so family + given joined is a word too.
  const n = m.patient.name;
  const groups = [n?.alphabetic, n?.ideographic, n?.phonetic].filter((g): g is string => !!g).map((g) => g.split('^'));
  const family = groups.map((g) => g[0]?.trim()).filter(Boolean).join(' ');
  const given = groups.map((g) => g[1]?.trim()).filter(Boolean).join(' ');
  const joined = groups.slice(1).map((g) => `${g[0] ?? ''}${g[1] ?? ''}`.replace(/\s+/g, ''));
  const nameText = [...groups.map((g) => g.join(' ')), ...joined].join(' ').replace(/\s+/g, ' ').trim();
  const bd = typeof res.birthDate === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(res.birthDate) ? res.birthDate : null;
  const out: Part[] = [
    {
      // Update only when something changed, so concurrent manifests of one patient do not churn the row.
      sql: `insert into patient (id, resource, family, given, name_text, birth_date, gender) values (?, ?::jsonb, ?, ?, ?, ?::date, ?)
        on conflict (id) do update set resource = excluded.resource, family = excluded.family, given = excluded.given,
          name_text = excluded.name_text, birth_date = excluded.birth_date, gender = excluded.gender, last_updated = now()
        where patient.resource is distinct from excluded.resource`,
      bindings: [id, JSON.stringify(res), lower(family), lower(given), lower(nameText), bd, res.gender ?? null],
    },
  ];
  const ids = r.patientIdentifiers(m);
  if (ids.length) {
    out.push({
      sql: `insert into patient_identifier (patient_id, system, value) select ?, s, v from unnest(?::text[], ?::text[]) as t(s, v) on conflict do nothing`,
      bindings: [id, textArray(ids.map((p) => p.system)), textArray(ids.map((p) => p.value))],
    });
  }
  return out;
}

function endpointParts(eps: Json[], manifestId: string): Part[] {
  if (!eps.length) return [];
  const ids = eps.map((e) => e.id as string);
  const loc = (e: Json) => (e.extension as Json[] | undefined)?.find((x) => /RetrieveLocationUID/i.test(x.url))?.valueString ?? null;
  return [
    {
      sql: `insert into endpoint (id, resource, address, retrieve_location_uid, connection_type)
        select * from unnest(?::text[], ?::jsonb[], ?::text[], ?::text[], ?::text[]) on conflict (id) do nothing`,
      bindings: [textArray(ids), textArray(eps.map((e) => JSON.stringify(e))), textArray(eps.map((e) => (e._address ? null : e.address) ?? null)), textArray(eps.map(loc)), textArray(eps.map((e) => e.connectionType?.code ?? 'unknown'))],
    },
    { sql: `insert into manifest_endpoint (manifest_id, endpoint_id) select ?, e from unnest(?::text[]) e`, bindings: [manifestId, textArray(ids)] },
  ];
}

/** A series' Modality: the Image Library's, else the one its instances' SOP Classes imply (PS3.3 IODs). */
export function seriesModality(s: Manifest['evidence'][number]['series'][number]): string | undefined {
  return s.modality ?? modalityOfSopClasses(s.instances.map((i) => i.sopClassUid));
}

/**
 * Modalities in Study (0008,0061) of one study for the QIDO-RS index: `listed` (the Image Library's,
 * as the DocumentReference shows them), plus the modality of each of the study's series, from the
 * Image Library or implied by its SOP Classes. Empty only when none is knowable: QIDO-RS then omits
 * the attribute.
 */
export function indexedModalities(m: Manifest, study: string | undefined, listed: string[] = []): string[] {
  const out = [...listed];
  for (const e of m.evidence) {
    if (e.studyInstanceUid !== study) continue;
    for (const s of e.series) {
      const mod = seriesModality(s);
      if (mod && !out.includes(mod)) out.push(mod);
    }
  }
  return out;
}

/** imaging_study columns, in the order imagingStudyPart binds them. */
const STUDY_COLUMNS = `manifest_id, study_instance_uid, resource_id, patient_id, study_date, study_time, started, description, accession_number, accession_issuer, modalities,
  patient_name, patient_id_value, patient_id_issuer, patient_birth_date, patient_sex, number_of_series, number_of_instances,
  patient_id_issuer_local, accession_issuer_local, referring_physician, study_id, timezone_offset`;
const STUDY_VALUES = '(?, ?, ?, ?, ?, ?, ?::timestamptz, ?, ?, ?, ?::text[], ?, ?, ?, ?, ?, ?::int, ?::int, ?, ?, ?, ?, ?)';

interface StudyRowInput {
  id: string;
  pid: string;
  started: string | null;
  acc: Accession | undefined;
  /** study of each distinct series row, and its instance count */
  seriesStudy: string[];
  seriesCount: number[];
}

/**
 * imaging_study rows: the manifest's own study with the General Study attributes, then one row per
 * other study its evidence references (migration 0011), with that study's series, requests and
 * the patient (a KOS has no study-level attributes for the other studies).
 */
function imagingStudyPart(m: Manifest, rd: ManifestRendering, r: StudyRowInput): Part {
  const st = m.study, sop = m.document.sopInstanceUid;
  const p = m.patient, pidPrimary = p.id ?? p.otherIds[0];
  const patientCols = [pnString(p.name), pidPrimary?.value ?? null, pidPrimary ? rd.issuerSystem(pidPrimary.issuer) || null : null, p.birthDate ?? null, p.sex ?? null];
  const counts = (uid: string | undefined) => {
    let series = 0, instances = 0;
    r.seriesStudy.forEach((s, i) => { if (s === uid) { series++; instances += r.seriesCount[i]!; } });
    return [series, instances];
  };
  const [nSeries, nInst] = counts(primaryEvidence(m)?.studyInstanceUid);
  const bindings: unknown[] = [r.id, st.studyInstanceUid, imagingStudyId(sop, st.studyInstanceUid, true), r.pid, st.date ?? null, st.time ?? null, r.started, st.description ?? null,
    r.acc?.value ?? null, r.acc ? rd.issuerSystem(r.acc.issuer) || null : null, textArray(indexedModalities(m, primaryEvidence(m)?.studyInstanceUid ?? st.studyInstanceUid, rd.studyModalities(m))), ...patientCols,
    Math.max(st.numberOfSeries ?? 0, nSeries!), nInst, p.id?.issuer?.localNamespace ?? null, st.accession?.issuer?.localNamespace ?? null,
    st.referringPhysicianName?.alphabetic ?? null, st.studyId ?? null, m.document.timezoneOffset ?? null];
  const own = primaryEvidence(m)?.studyInstanceUid;
  const others = [...new Set(otherEvidence(m).map((e) => e.studyInstanceUid))].filter((u) => u && u !== own && u !== st.studyInstanceUid);
  for (const uid of others) {
    const acc = st.requests.find((q) => q.studyInstanceUid === uid && q.accession?.value)?.accession;
    const mods = indexedModalities(m, uid);
    const [ns, ni] = counts(uid);
    bindings.push(r.id, uid, imagingStudyId(sop, uid, false), r.pid, null, null, null, null, acc?.value ?? null, acc ? rd.issuerSystem(acc.issuer) || null : null,
      textArray(mods), ...patientCols, ns, ni, p.id?.issuer?.localNamespace ?? null, acc?.issuer?.localNamespace ?? null, null, null, m.document.timezoneOffset ?? null);
  }
  const values = [STUDY_VALUES, ...others.map(() => STUDY_VALUES)].join(', ');
  return { sql: `insert into imaging_study (${STUDY_COLUMNS}) values ${values}`, bindings };
}

/**
 * The imaging_series rows of a manifest as parallel arrays, and its instances flattened series by
 * series (manifest order within a series) with each series row's first and last position, so the
 * SQL cuts each row's instance arrays out by slicing. De-duplicated: a KOS may list one SOP twice;
 * the index holds it once.
 */
function seriesRows(m: Manifest) {
  const seriesSeen = new Map<string, number>();
  const se = { study: [] as string[], uid: [] as string[], modality: [] as (string | null)[], num: [] as (number | null)[], desc: [] as (string | null)[], date: [] as (string | null)[], time: [] as (string | null)[], body: [] as (string | null)[], url: [] as (string | null)[], loc: [] as (string | null)[], ae: [] as (string | null)[], count: [] as number[], lo: [] as number[], hi: [] as number[] };
  const per: Array<{ sop: string[]; cls: string[]; num: (number | null)[]; frames: (number | null)[] }> = [];
  const sopSeen = new Set<string>();
  for (const e of m.evidence) for (const s of e.series) {
    let si = seriesSeen.get(s.uid);
    if (si === undefined) {
      si = se.uid.length;
      seriesSeen.set(s.uid, si);
      se.study.push(e.studyInstanceUid); se.uid.push(s.uid); se.modality.push(seriesModality(s) ?? null); se.num.push(s.number ?? null);
      se.desc.push(s.description ?? null); se.date.push(s.date ?? null); se.time.push(s.time ?? null); se.body.push(s.bodySite?.value ?? null);
      se.url.push(s.retrieveUrl ?? null); se.loc.push(s.retrieveLocationUid ?? null); se.ae.push(s.retrieveAeTitle ?? null);
      se.count.push(0);
      per.push({ sop: [], cls: [], num: [], frames: [] });
    }
    const row = per[si]!;
    for (const i of s.instances) {
      if (sopSeen.has(i.sopInstanceUid)) continue;
      sopSeen.add(i.sopInstanceUid);
      se.count[si]!++;
      row.sop.push(i.sopInstanceUid); row.cls.push(i.sopClassUid); row.num.push(i.number ?? null); row.frames.push(i.numberOfFrames ?? null);
    }
  }
  // Declared counts win when larger (the manifest may reference a subset of the series).
  for (const e of m.evidence) for (const s of e.series) {
    const si = seriesSeen.get(s.uid)!;
    if (s.numberOfInstances !== undefined && s.numberOfInstances > se.count[si]!) se.count[si] = s.numberOfInstances;
  }
  const inst = { sop: per.flatMap((r) => r.sop), cls: per.flatMap((r) => r.cls), num: per.flatMap((r) => r.num), frames: per.flatMap((r) => r.frames) };
  let at = 0;
  for (const r of per) {
    se.lo.push(at + 1);
    at += r.sop.length;
    se.hi.push(at);
  }
  return { se, inst };
}

/**
 * Insert one manifest version with everything derived from it, as ONE statement (data-modifying
 * CTEs: one round trip; foreign keys are checked at the end of the statement). The caller holds the
 * study lock, has checked idempotency and has already superseded the previous current manifest.
 */
export async function insertManifest(tx: Tx, n: NewManifest, r: ManifestRendering, replacesSop?: string): Promise<StoredManifest> {
  const m = n.model;
  const sop = m.document.sopInstanceUid;
  const ids = manifestResourceIds(sop);
  const id = manifestIdFor(sop);
  const pid = patientIdOf(m.patient);
  const now = new Date();
  if (n.replaces && replacesSop === undefined) replacesSop = (await findManifestById(tx, n.replaces))?.sop_instance_uid;
  const docs = r.docRefs(m, { status: 'current', nativeFormat: n.nativeFormat, date: now, lastUpdated: now, versionId: 1, replacesSop, metadata: n.metadata, kosForm: n.kosForm });

  const { se, inst } = seriesRows(m);
  const referenceCount = inst.sop.length;
  const eps = r.endpoints(m);
  const tokens = r.tokens(m, eps.map((e) => e.id as string), n.metadata);
  const st = m.study;
  const acc = st.accession ?? st.requests.find((r) => r.accession?.value)?.accession;
  const pidPrimary = m.patient.id ?? m.patient.otherIds[0];
  const started = ts((docs.kos.context as Json | undefined)?.period?.start);

  const parts: Part[] = [
    ...patientParts(m, pid, docs.derivedPatient ?? {}, r),
    {
      sql: `insert into manifest (id, sop_instance_uid, native_format, content, content_type, sha256, size, status, study_instance_uid, patient_id, model, reference_count, version_id, submission_set_id, replaces, created_at, last_updated, docref_metadata, kos_form)
        values (?, ?, ?, ?, ?, ?, ?, 'current', ?, ?, ?::json, ?, 1, ?, ?, ?::timestamptz, ?::timestamptz, ?::jsonb, ?)`,
      bindings: [id, sop, n.nativeFormat, Buffer.from(n.content.buffer, n.content.byteOffset, n.content.byteLength), n.contentType, n.sha256, n.content.byteLength, st.studyInstanceUid, pid, JSON.stringify(m), referenceCount, n.submissionSetId ?? null, n.replaces ?? null, now, now, n.metadata ? JSON.stringify(n.metadata) : null, n.kosForm !== false],
    },
    docRefPart(id, pid, 'current', docs, now, now, n.kosForm !== false),
    ...endpointParts(eps, id),
    {
      sql: `insert into manifest_token (manifest_id, code, system, value) select ?, c, s, v from unnest(?::text[], ?::text[], ?::text[]) as t(c, s, v)`,
      bindings: [id, textArray(tokens.map((t) => t.code)), textArray(tokens.map((t) => t.system)), textArray(tokens.map((t) => t.value))],
    },
    imagingStudyPart(m, r, { id, pid, started, acc, seriesStudy: se.study, seriesCount: se.count }),
  ];
  if (se.uid.length) {
    // One row per series with its instances as parallel arrays (migration 0006): the instances
    // arrive flat, series after series, and each row slices out its own range [lo:hi] (an empty
    // range gives '{}'). Slicing instead of grouping: no sort or aggregate per manifest.
    parts.push({
      sql: `insert into imaging_series (manifest_id, study_instance_uid, series_instance_uid, modality, series_number, description, series_date, series_time, body_site_code, retrieve_url, retrieve_location_uid, retrieve_ae_title, number_of_instances,
          sop_instance_uids, sop_class_uids, instance_numbers, frame_counts)
        select ?, s.study, s.uid, s.modality, s.num, s.descr, s.sdate, s.stime, s.body, s.url, s.loc, s.ae, s.cnt,
          a.sops[s.lo:s.hi], a.classes[s.lo:s.hi], a.nums[s.lo:s.hi], a.frames[s.lo:s.hi]
        from unnest(?::text[], ?::text[], ?::text[], ?::int[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::int[], ?::int[])
            as s(study, uid, modality, num, descr, sdate, stime, body, url, loc, ae, cnt, lo, hi),
          (select ?::text[] as sops, ?::text[] as classes, ?::int[] as nums, ?::int[] as frames) a`,
      bindings: [id, textArray(se.study), textArray(se.uid), textArray(se.modality), intArray(se.num), textArray(se.desc), textArray(se.date), textArray(se.time), textArray(se.body), textArray(se.url), textArray(se.loc), textArray(se.ae), intArray(se.count), intArray(se.lo), intArray(se.hi),
        textArray(inst.sop), textArray(inst.cls), intArray(inst.num), intArray(inst.frames)],
    });
  }
  const sql = 'with ' + parts.map((p, i) => `w${i} as (${p.sql})`).join(',\n') + '\nselect 1';
  // Prepared: the statement has a handful of shapes, and parsing/planning it cost ~1.5 ms of
  // PostgreSQL CPU per manifest (of ~9 ms) when sent unnamed.
  await rawPrepared(tx, sql, parts.flatMap((p) => p.bindings));
  return { id, sopInstanceUid: sop, studyInstanceUid: st.studyInstanceUid, patientId: pid, kosDocRefId: ids.kosDocRef, fhirDocRefId: ids.fhirDocRef, binaryId: ids.binary, bundleId: ids.bundle, referenceCount, versionId: 1 };
}

function docRefPart(manifestId: string, pid: string, status: ManifestStatus, docs: { kos: Json; fhir: Json }, date: Date, lastUpdated: Date, kosForm: boolean): Part {
  const rows = (['kos', 'fhir'] as const).map((f) => {
    const r = docs[f];
    return [r.id, manifestId, f, status, pid, JSON.stringify(r), date, ts(r.content?.[0]?.attachment?.creation), ts(r.context?.period?.start), ts(r.context?.period?.end), lastUpdated, f === 'kos' && !kosForm];
  });
  const v = '(?, ?, ?, ?, ?, ?::jsonb, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?)';
  return {
    sql: `insert into document_reference (id, manifest_id, format, status, patient_id, resource, date, creation, period_start, period_end, last_updated, withheld) values ${v}, ${v}`,
    bindings: rows.flat(),
  };
}

/**
 * Change a manifest's status (superseded / entered-in-error): bump version_id, re-render both
 * docrefs (status, meta.versionId, meta.lastUpdated). Rows are kept, never deleted.
 */
export async function setManifestStatus(tx: Tx, manifestId: string, status: ManifestStatus, render: ManifestRendering): Promise<ManifestRow> {
  const r = await tx.raw(
    `update manifest m set status = ?, version_id = version_id + 1, last_updated = clock_timestamp() where id = ?
     returning ${ROW_COLS.split(', ').map((c) => 'm.' + c).join(', ')}, m.model, m.docref_metadata, m.kos_form,
       (select d.date from document_reference d where d.manifest_id = m.id and d.format = 'kos') as docref_date,
       (select o.sop_instance_uid from manifest o where o.id = m.replaces) as replaces_sop`,
    [status, manifestId],
  );
  const row = r.rows[0] as ManifestRow & { model: Manifest; docref_metadata: DocRefMetadata | null; kos_form: boolean; docref_date: Date | null; replaces_sop: string | null };
  if (!row) throw new Error('manifest vanished');
  const docs = render.docRefs(row.model, { status, nativeFormat: row.native_format, date: row.docref_date ?? row.created_at, lastUpdated: row.last_updated, versionId: row.version_id, replacesSop: row.replaces_sop ?? undefined, metadata: row.docref_metadata, kosForm: row.kos_form });
  await tx.raw(
    `update document_reference d set status = ?, resource = v.r::jsonb, last_updated = ? from (values ('kos', ?), ('fhir', ?)) as v(f, r) where d.manifest_id = ? and d.format = v.f`,
    [status, row.last_updated, JSON.stringify(docs.kos), JSON.stringify(docs.fhir), manifestId],
  );
  const { model: _m, docref_metadata: _md, kos_form: _k, docref_date: _d, replaces_sop: _r, ...rest } = row;
  return rest;
}

export interface Rejection {
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
}

/** Record IOCM rejections (idempotent: the first note that rejected an instance is kept). */
export async function recordRejections(tx: Tx, rows: Rejection[], rejectedBy: string, reason: Code | undefined): Promise<number> {
  if (!rows.length) return 0;
  const r = await tx.raw(
    `insert into rejected_instance (sop_instance_uid, study_instance_uid, series_instance_uid, rejected_by, reason)
     select s, st, se, ?, ?::jsonb from unnest(?::text[], ?::text[], ?::text[]) as t(s, st, se) on conflict (sop_instance_uid) do nothing`,
    [rejectedBy, reason ? JSON.stringify(reason) : null, textArray(rows.map((x) => x.sopInstanceUid)), textArray(rows.map((x) => x.studyInstanceUid)), textArray(rows.map((x) => x.seriesInstanceUid))],
  );
  return r.rowCount ?? 0;
}

/** Which of these instances are rejected already. */
export async function rejectedAmong(tx: Tx, sopInstanceUids: string[]): Promise<Set<string>> {
  if (!sopInstanceUids.length) return new Set();
  const r = await tx.raw('select sop_instance_uid from rejected_instance where sop_instance_uid = any(?::text[])', [textArray(sopInstanceUids)]);
  return new Set(r.rows.map((x: { sop_instance_uid: string }) => x.sop_instance_uid));
}

export interface SubmissionSetInput {
  id: string;
  resource: Json;
  status: string;
  patientId?: string;
  date?: string;
  tokens: Token[];
}

/** Store an MHD SubmissionSet List; a re-submitted one (same id) is left as it was. Returns false when it existed. */
export async function insertSubmissionSet(tx: Tx, s: SubmissionSetInput): Promise<boolean> {
  const r = await tx.raw(
    `insert into submission_set (id, resource, status, patient_id, date) values (?, ?::jsonb, ?, ?, ?) on conflict (id) do nothing`,
    [s.id, JSON.stringify(s.resource), s.status, s.patientId ?? null, ts(s.date)],
  );
  if (!r.rowCount) return false;
  if (s.tokens.length) {
    await tx.raw(
      `insert into submission_set_token (submission_set_id, code, system, value) select ?, c, sy, v from unnest(?::text[], ?::text[], ?::text[]) as t(c, sy, v)`,
      [s.id, textArray(s.tokens.map((t) => t.code)), textArray(s.tokens.map((t) => t.system)), textArray(s.tokens.map((t) => t.value))],
    );
  }
  return true;
}

export async function setSubmissionSetOf(tx: Tx, manifestIds: string[], submissionSetId: string): Promise<void> {
  if (!manifestIds.length) return;
  await tx.raw('update manifest set submission_set_id = ? where id = any(?::text[]) and submission_set_id is null', [submissionSetId, textArray(manifestIds)]);
}

/** Consistency check used by tests and the crash-recovery test: manifests whose derived rows are incomplete. */
export async function incompleteManifests(db: Db): Promise<string[]> {
  const r = await db.raw(`
    select m.id from manifest m
    where (select count(*) from document_reference d where d.manifest_id = m.id) <> 2
       or (select count(*) from imaging_instance i where i.manifest_id = m.id) <> m.reference_count
       or not exists (select 1 from imaging_study s where s.manifest_id = m.id)
       or not exists (select 1 from manifest_token t where t.manifest_id = m.id and t.code = 'identifier')`);
  return r.rows.map((x: { id: string }) => x.id);
}
