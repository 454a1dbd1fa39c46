/**
 * Ingest write-path storage settings. No new columns or indexes are needed: every lookup
 * of the ingest service is served by 0001 (manifest.sop_instance_uid UNIQUE, the partial unique
 * index manifest_one_current_per_study, document_reference PK, imaging_instance_sop).
 *
 * - manifest.content STORAGE EXTERNAL: KOS bytes are stored out of line without pglz compression.
 *   Measured on the 2-core bench machine: inserting a typical 160 KiB KOS took ~10–14 ms with pglz
 *   vs ~5 ms without, on the hot ingest path; ITI-68 returns the bytes verbatim, so reads skip the
 *   decompression too. Cost: ~2–3× more disk for KOS content (UIDs compress well).
 * - manifest.model STORAGE EXTERNAL: same trade-off for the parsed model (jsonb, ~40 KiB per
 *   typical manifest): ~5.4 ms → ~2.7 ms per insert. (lz4 would be the better middle ground but the
 *   embedded PostgreSQL build has no lz4 support.)
 * Only affects rows written afterwards; existing rows are untouched.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE manifest ALTER COLUMN content SET STORAGE EXTERNAL;
    ALTER TABLE manifest ALTER COLUMN model SET STORAGE EXTERNAL;
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
