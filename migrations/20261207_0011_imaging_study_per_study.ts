/**
 * One imaging_study row per study a manifest references, not per manifest: the evidence of an
 * XDS-I.b KOS may span several studies (PS3.3 C.17.2.1, Hierarchical SOP Instance Reference macro),
 * and each is its own ImagingStudy (FHIR search and read) and QIDO-RS study.
 *
 * resource_id is the ImagingStudy id: study-<h> of the manifest for its own study (<h> shared with
 * manifest-<h>), study-<h>-<k> for another study, k = first 16 hex digits of SHA-256("study:" + UID)
 * (src/model/ids.ts imagingStudyId). Rows of the other studies of manifests stored before are
 * added from their imaging_series rows (study-level attributes of those studies are not in a KOS).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE imaging_study ADD COLUMN resource_id text;
    UPDATE imaging_study SET resource_id = 'study-' || CASE WHEN manifest_id LIKE 'manifest-%' THEN substr(manifest_id, length('manifest-') + 1) ELSE manifest_id END;
    ALTER TABLE imaging_study DROP CONSTRAINT imaging_study_pkey;
    ALTER TABLE imaging_study ADD PRIMARY KEY (manifest_id, study_instance_uid);
    INSERT INTO imaging_study (manifest_id, study_instance_uid, resource_id, patient_id, modalities, patient_name, patient_id_value, patient_id_issuer,
        patient_birth_date, patient_sex, number_of_series, number_of_instances, patient_id_issuer_local, timezone_offset)
      SELECT st.manifest_id, se.study_instance_uid,
        'study-' || substr(st.manifest_id, length('manifest-') + 1) || '-' || left(encode(sha256(convert_to('study:' || se.study_instance_uid, 'UTF8')), 'hex'), 16),
        st.patient_id, coalesce(array_agg(DISTINCT se.modality) FILTER (WHERE se.modality IS NOT NULL), '{}'), st.patient_name, st.patient_id_value, st.patient_id_issuer,
        st.patient_birth_date, st.patient_sex, count(*)::int, sum(se.number_of_instances)::int, st.patient_id_issuer_local, st.timezone_offset
      FROM imaging_series se JOIN imaging_study st ON st.manifest_id = se.manifest_id
      WHERE se.study_instance_uid <> st.study_instance_uid
        AND NOT EXISTS (SELECT 1 FROM imaging_study x WHERE x.manifest_id = se.manifest_id AND x.study_instance_uid = se.study_instance_uid)
      GROUP BY st.manifest_id, se.study_instance_uid, st.patient_id, st.patient_name, st.patient_id_value, st.patient_id_issuer,
        st.patient_birth_date, st.patient_sex, st.patient_id_issuer_local, st.timezone_offset;
    ALTER TABLE imaging_study ALTER COLUMN resource_id SET NOT NULL;
    CREATE UNIQUE INDEX imaging_study_resource_id ON imaging_study (resource_id);
    -- A row inserted without an id is the manifest's own study (writers before this migration).
    CREATE FUNCTION imaging_study_default_id() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.resource_id := coalesce(NEW.resource_id,
        'study-' || CASE WHEN NEW.manifest_id LIKE 'manifest-%' THEN substr(NEW.manifest_id, length('manifest-') + 1) ELSE NEW.manifest_id END);
      RETURN NEW;
    END $$;
    CREATE TRIGGER imaging_study_default_id BEFORE INSERT ON imaging_study FOR EACH ROW EXECUTE FUNCTION imaging_study_default_id();
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
