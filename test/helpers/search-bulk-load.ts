/**
 * Bulk loader for search benchmarks and plan tests: N synthetic manifests written straight into
 * the tables with generate_series (no per-row round trips), shaped like the ingest service's rows
 * (same token codes, see src/store/manifests.ts). Manifest i belongs to patient floor(i / perPatient)
 * with identifier urn:oid:1.2.3.4.5.6.7|BMRN<p>, study 2.25.<base+i>, one current manifest per study.
 * Ids: manifest-b<i>, kos-docref-b<i>, fhir-docref-b<i> (so ImagingStudy/study-b<i> resolves).
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';

export interface BenchTemplates {
  /** Manifest model JSON (UIDs are replaced per row) */
  model: unknown;
  kosDocRef: unknown;
  fhirDocRef: unknown;
  patient: unknown;
}

export const BENCH_ISSUER = 'urn:oid:1.2.3.4.5.6.7';
export const benchStudyUid = (i: number) => `2.25.9${String(i).padStart(9, '0')}`;
export const benchPatientValue = (p: number) => `BMRN${p}`;

/**
 * The template docref with this row's id and identifiers: masterIdentifier / identifier[0] =
 * urn:oid:<manifest SOP UID>, identifier[1] = a per-docref urn:uuid: (entryUUID), so the
 * generated identifier_terms column (migration 0005) is as selective as production data.
 */
const DOCREF_IDS = (f: 'kos' | 'fhir') => {
  const id = `'${f}-docref-b' || i`;
  const uid = `to_jsonb('urn:oid:2.25.8' || lpad(i::text, 9, '0'))`;
  return `jsonb_set(jsonb_set(jsonb_set(jsonb_set(:${f}::jsonb, '{id}', to_jsonb(${id})), '{masterIdentifier,value}', ${uid}), '{identifier,0,value}', ${uid}), '{identifier,1,value}', to_jsonb('urn:uuid:' || md5(${id})::uuid::text))`;
};

/** entryUUID of bulk-loaded docref `id` (md5 shaped as a UUID; ingest uses a UUID v5 of the id). */
export function benchEntryUuid(id: string): string {
  const h = createHash('md5').update(id).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Load manifests [from, to) in one statement batch. */
export async function bulkLoadManifests(db: Knex, from: number, to: number, perPatient: number, t: BenchTemplates): Promise<void> {
  const b = { from, to: to - 1, pp: perPatient, model: JSON.stringify(t.model), kos: JSON.stringify(t.kosDocRef), fhir: JSON.stringify(t.fhirDocRef), patient: JSON.stringify(t.patient), iss: BENCH_ISSUER };
  await db.transaction(async (tx) => {
    // Rows are consistent by construction: skip the per-row foreign-key checks and triggers
    // (session_replication_role, superuser; imaging_study.resource_id is set below as its
    // trigger would). Patients first all the same (FK from manifest.patient_id).
    await tx.raw('SET LOCAL session_replication_role = replica');
    await tx.raw(
      `INSERT INTO patient (id, resource, family, given, name_text, birth_date, gender)
       SELECT 'patient-b' || p, jsonb_set(:patient::jsonb, '{id}', to_jsonb('patient-b' || p)), 'bench', 'p' || p, 'bench p' || p, date '1970-01-01' + (p % 20000), 'other'
       FROM generate_series(:from::int / :pp::int, :to::int / :pp::int) p
       ON CONFLICT (id) DO NOTHING`,
      b,
    );
    await tx.raw(
      `INSERT INTO patient_identifier (patient_id, system, value)
       SELECT 'patient-b' || p, :iss, 'BMRN' || p FROM generate_series(:from::int / :pp::int, :to::int / :pp::int) p
       ON CONFLICT DO NOTHING`,
      b,
    );
    await tx.raw(
      `INSERT INTO manifest (id, sop_instance_uid, native_format, content, content_type, sha256, size, status, study_instance_uid, patient_id, model, reference_count, created_at, last_updated)
       SELECT 'manifest-b' || i, '2.25.8' || lpad(i::text, 9, '0'), 'kos', '\\x00'::bytea, 'application/dicom', md5(i::text), 1, 'current',
              '2.25.9' || lpad(i::text, 9, '0'), 'patient-b' || (i / :pp::int),
              jsonb_set(jsonb_set(jsonb_set(:model::jsonb, '{document,sopInstanceUid}', to_jsonb('2.25.8' || lpad(i::text, 9, '0'))),
                '{study,studyInstanceUid}', to_jsonb('2.25.9' || lpad(i::text, 9, '0'))), '{evidence,0,studyInstanceUid}', to_jsonb('2.25.9' || lpad(i::text, 9, '0'))),
              4, now() - make_interval(secs => i), now() - make_interval(secs => i)
       FROM generate_series(:from::int, :to::int) i`,
      b,
    );
    for (const f of ['kos', 'fhir'] as const) {
      await tx.raw(
        `INSERT INTO document_reference (id, manifest_id, format, status, patient_id, resource, date, creation, period_start, last_updated)
         SELECT '${f}-docref-b' || i, 'manifest-b' || i, '${f}', 'current', 'patient-b' || (i / :pp::int),
                ${DOCREF_IDS(f)},
                now() - make_interval(secs => i), timestamptz '2020-01-01' + make_interval(hours => i), timestamptz '2020-01-01' + make_interval(hours => i), now() - make_interval(secs => i)
         FROM generate_series(:from::int, :to::int) i`,
        b,
      );
    }
    await tx.raw(
      `INSERT INTO manifest_token (manifest_id, code, system, value)
       SELECT 'manifest-b' || i, x.code, x.system, x.value
       FROM generate_series(:from::int, :to::int) i,
       LATERAL (VALUES
         ('patient.identifier', :iss, 'BMRN' || (i / :pp::int)),
         ('identifier', 'urn:ietf:rfc:3986', 'urn:oid:2.25.8' || lpad(i::text, 9, '0')),
         ('identifier', '', '2.25.8' || lpad(i::text, 9, '0')),
         ('study-instance-uid', 'urn:dicom:uid', 'urn:oid:2.25.9' || lpad(i::text, 9, '0')),
         ('study-instance-uid', '', '2.25.9' || lpad(i::text, 9, '0')),
         ('accession-number', '', 'BACC' || i),
         ('modality', 'http://dicom.nema.org/resources/ontology/DCM', (ARRAY['CT','MR','US','CR','DX'])[1 + i % 5]),
         ('event', 'http://dicom.nema.org/resources/ontology/DCM', (ARRAY['CT','MR','US','CR','DX'])[1 + i % 5]),
         ('anatomical-region', 'http://snomed.info/sct', '69536005'),
         ('category', 'http://loinc.org', '18748-4'),
         ('type', 'http://loinc.org', '18748-4'),
         ('setting', 'http://snomed.info/sct', '394914008'),
         ('facility', 'http://snomed.info/sct', '79491001'),
         ('series', '', '2.25.7' || lpad(i::text, 9, '0'))
       ) AS x(code, system, value)`,
      b,
    );
    await tx.raw(
      `INSERT INTO imaging_study (manifest_id, resource_id, study_instance_uid, patient_id, study_date, started, modalities, number_of_series, number_of_instances)
       SELECT 'manifest-b' || i, 'study-b' || i, '2.25.9' || lpad(i::text, 9, '0'), 'patient-b' || (i / :pp::int), '20200101', timestamptz '2020-01-01' + make_interval(hours => i),
              ARRAY[(ARRAY['CT','MR','US','CR','DX'])[1 + i % 5]], 1, 4
       FROM generate_series(:from::int, :to::int) i`,
      b,
    );
  });
}

/**
 * Load manifests [from, to) in batches of `batch`, `parallel` transactions at a time (each batch
 * is independent; a patient on a batch boundary is inserted once, ON CONFLICT DO NOTHING).
 */
export async function bulkLoadParallel(db: Knex, from: number, to: number, perPatient: number, t: BenchTemplates, o: { batch: number; parallel: number; progress?: (done: number) => void }): Promise<void> {
  let next = from;
  let done = from;
  const worker = async () => {
    while (next < to) {
      const a = next;
      const b = Math.min(to, a + o.batch);
      next = b;
      await bulkLoadManifests(db, a, b, perPatient, t);
      done += b - a;
      o.progress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.parallel) }, worker));
}

export async function analyzeSearchTables(db: Knex): Promise<void> {
  for (const t of ['patient', 'patient_identifier', 'manifest', 'document_reference', 'manifest_token', 'imaging_study']) await db.raw(`ANALYZE ${t}`);
}

export async function countManifests(db: Knex): Promise<number> {
  return (await db.raw('SELECT count(*)::int AS n FROM manifest')).rows[0].n;
}

const BULK_TABLES = ['patient', 'patient_identifier', 'manifest', 'document_reference', 'manifest_token', 'imaging_study'];

/**
 * Run a bulk load with the secondary indexes of the search tables dropped and rebuilt afterwards
 * (building an index once is much faster than maintaining it row by row). Benchmarks only.
 */
export async function withIndexesRebuilt(db: Knex, fn: () => Promise<void>): Promise<void> {
  const r = await db.raw(
    `SELECT i.indexname, i.indexdef FROM pg_indexes i
     WHERE i.schemaname = 'public' AND i.tablename = ANY(?::text[])
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`,
    [BULK_TABLES],
  );
  const defs = r.rows as Array<{ indexname: string; indexdef: string }>;
  for (const d of defs) await db.raw(`DROP INDEX IF EXISTS "${d.indexname}"`);
  try {
    await fn();
  } finally {
    await db.raw('SET maintenance_work_mem = \'512MB\'');
    for (const d of defs) await db.raw(d.indexdef);
  }
}
