/**
 * Instance references move from one row per instance (imaging_instance) into arrays on their
 * series row (imaging_series) (ingest throughput).
 *
 * Why: a typical manifest references 300 instances and a large one 20,000. One row per instance
 * with three b-tree indexes on 64-character UIDs cost ~8 of the ~15 ms of PostgreSQL CPU per
 * typical manifest and ~0.5 s for a 20,000-reference KOS (measured with bench/ingest.ts and an
 * in-process variant without the instance rows). Every reader reaches instances through their
 * series anyway: WADO-RS URLs carry study + series (PS3.18 10.4.1), QIDO instance queries are
 * scoped by study/series or served per series, IOCM rejection notes list study + series per
 * instance. So the series row (already indexed by (study, series) and series) carries
 * parallel arrays of SOP Instance UID, SOP Class UID, Instance Number and Number of Frames.
 *
 * - imaging_instance becomes a VIEW (unnest of the arrays) with the old columns, so read queries
 *   keep their shape; quals on manifest/study/series push down into the imaging_series scan.
 * - No index on the SOP Instance UIDs themselves: a GIN index on the arrays measured ~1 ms of the
 *   remaining ~9 ms PostgreSQL CPU per typical manifest and ~35 KB per manifest on disk, for
 *   lookups that always come with a series (WADO-RS, IOCM) or a study (QIDO) in practice. A QIDO
 *   query by SOPInstanceUID alone still works, by scanning the series rows of current manifests.
 * - The arrays are stored uncompressed (STORAGE EXTERNAL): pglz on ~6.5 KB of UIDs per typical
 *   series cost more CPU at insert than it saved (same trade-off as 0002).
 * Existing rows are back-filled, then the table is dropped. Uniqueness of an instance within a
 * manifest (the old primary key) is kept by the writer, which de-duplicates before inserting.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE imaging_series
      ADD COLUMN sop_instance_uids text[] NOT NULL DEFAULT '{}',
      ADD COLUMN sop_class_uids    text[] NOT NULL DEFAULT '{}',
      ADD COLUMN instance_numbers  int[]  NOT NULL DEFAULT '{}',
      ADD COLUMN frame_counts      int[]  NOT NULL DEFAULT '{}';
    ALTER TABLE imaging_series ALTER COLUMN sop_instance_uids SET STORAGE EXTERNAL;
    ALTER TABLE imaging_series ALTER COLUMN sop_class_uids SET STORAGE EXTERNAL;

    UPDATE imaging_series se
       SET sop_instance_uids = a.sops, sop_class_uids = a.classes, instance_numbers = a.numbers, frame_counts = a.frames
      FROM (SELECT manifest_id, series_instance_uid,
                   array_agg(sop_instance_uid ORDER BY instance_number NULLS LAST, sop_instance_uid) AS sops,
                   array_agg(sop_class_uid    ORDER BY instance_number NULLS LAST, sop_instance_uid) AS classes,
                   array_agg(instance_number  ORDER BY instance_number NULLS LAST, sop_instance_uid) AS numbers,
                   array_agg(number_of_frames ORDER BY instance_number NULLS LAST, sop_instance_uid) AS frames
              FROM imaging_instance GROUP BY manifest_id, series_instance_uid) a
     WHERE se.manifest_id = a.manifest_id AND se.series_instance_uid = a.series_instance_uid;

    DROP TABLE imaging_instance;

    CREATE VIEW imaging_instance AS
      SELECT se.manifest_id, se.study_instance_uid, se.series_instance_uid,
             u.sop_instance_uid, u.sop_class_uid, u.instance_number, u.number_of_frames
        FROM imaging_series se
        CROSS JOIN LATERAL unnest(se.sop_instance_uids, se.sop_class_uids, se.instance_numbers, se.frame_counts)
             AS u(sop_instance_uid, sop_class_uid, instance_number, number_of_frames);
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
