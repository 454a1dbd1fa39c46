/**
 * Modality from the SOP Classes where the manifest's Image Library gives none (QIDO-RS, RAD-129).
 *
 * Why: a KOS without an Image Library left imaging_series.modality NULL and
 * imaging_study.modalities empty, so QIDO-RS answered ModalitiesInStudy (0008,0061) with no
 * value, which viewers that read the value list fail on. The IOD of a Storage SOP Class fixes
 * the modality for most classes (PS3.4 Table B.5-1, PS3.3 module Enumerated Values); the ingest
 * now derives it (src/dicom/sop-class-modality.ts), and this back-fills rows indexed before.
 * A series takes the modality of its first instance whose SOP Class implies one; a study adds the
 * modalities of its series that it does not list yet.
 */
import type { Knex } from 'knex';
import { sopClassModalityPairs } from '../src/dicom/sop-class-modality.js';

export const BACKFILL_SERIES = `
    UPDATE imaging_series se
       SET modality = (SELECT m.modality
                         FROM unnest(se.sop_class_uids) WITH ORDINALITY AS c(cls, ord)
                         JOIN unnest(?::text[], ?::text[]) AS m(cls, modality) ON m.cls = c.cls
                        ORDER BY c.ord LIMIT 1)
     WHERE se.modality IS NULL`;

export const BACKFILL_STUDY = `
    UPDATE imaging_study st
       SET modalities = st.modalities || ARRAY(SELECT x FROM unnest(sub.mods) AS x WHERE NOT x = ANY (st.modalities))
      FROM (SELECT manifest_id, study_instance_uid, array_agg(DISTINCT modality ORDER BY modality) AS mods
              FROM imaging_series WHERE modality IS NOT NULL
             GROUP BY manifest_id, study_instance_uid) sub
     WHERE sub.manifest_id = st.manifest_id AND sub.study_instance_uid = st.study_instance_uid
       AND NOT sub.mods <@ st.modalities`;

export async function up(knex: Knex): Promise<void> {
  const pairs = sopClassModalityPairs();
  await knex.raw(BACKFILL_SERIES, [pairs.map((p) => p[0]), pairs.map((p) => p[1])]);
  await knex.raw(BACKFILL_STUDY);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
