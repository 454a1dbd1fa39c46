/**
 * QIDO-RS study order as an index: /studies pages are ordered by StudyDate, StudyTime (newest
 * first) and Study Instance UID (src/store/imaging-index.ts). With this index PostgreSQL reads the
 * candidate studies in page order and stops after the page, testing visibility (current manifest,
 * not every instance rejected) only for the rows it reads; without it every study was filtered
 * and sorted before the LIMIT — an unfiltered /studies?limit=100, a viewer's default study list,
 * grew linearly with the archive.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE INDEX imaging_study_qido_order ON imaging_study (study_date DESC NULLS LAST, study_time DESC NULLS LAST, study_instance_uid);
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
