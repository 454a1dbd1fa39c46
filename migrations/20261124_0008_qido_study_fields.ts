/**
 * QIDO-RS study attributes as imaging_study columns (DICOMweb, RAD-129).
 *
 * Why: five QIDO return/matching keys — IssuerOfPatientID and the accession's issuer (local
 * namespace), ReferringPhysicianName, StudyID and TimezoneOffsetFromUTC — were read with
 * `manifest.model #>> '{…}'`. The model is a ~40 KB jsonb per typical manifest (10 MB for 20,000
 * references) stored out of line, and each `#>>` de-TOASTs the whole value: 100 study rows cost
 * ~65 ms of PostgreSQL time for these five strings (500 typical manifests, measured), more for
 * large manifests. As columns they are read with the row.
 * Existing rows are back-filled from the model; the ingest writes them from now on.
 */
import type { Knex } from 'knex';

/** Copies the five values from each manifest's model (exported for the back-fill test). */
export const BACKFILL = `
    UPDATE imaging_study st
       SET patient_id_issuer_local = m.model #>> '{patient,id,issuer,localNamespace}',
           accession_issuer_local  = m.model #>> '{study,accession,issuer,localNamespace}',
           referring_physician     = m.model #>> '{study,referringPhysicianName,alphabetic}',
           study_id                = m.model #>> '{study,studyId}',
           timezone_offset         = m.model #>> '{document,timezoneOffset}'
      FROM manifest m
     WHERE m.id = st.manifest_id`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE imaging_study
      ADD COLUMN patient_id_issuer_local text,  -- (0010,0021) Issuer of Patient ID
      ADD COLUMN accession_issuer_local  text,  -- (0008,0051)>(0040,0031) Local Namespace Entity ID
      ADD COLUMN referring_physician     text,  -- (0008,0090) PN, alphabetic group
      ADD COLUMN study_id                text,  -- (0020,0010)
      ADD COLUMN timezone_offset         text;  -- (0008,0201) of the manifest

    ${BACKFILL};
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
