/**
 * document_reference.body_text / resource_meta: the stored DocumentReference split the way the
 * ITI-67 JSON search sends it (src/store/search-sql.ts, fhir/format.ts sendJsonWithRaw): the
 * resource without resourceType and meta as JSON text, spliced into the Bundle unparsed, and its
 * meta (small jsonb; versionId/lastUpdated are merged in by the renderer).
 *
 * Why: computing `(resource - 'resourceType' - 'meta')::text` at read time rebuilt and printed the
 * jsonb of every matched docref on every search — ~1 ms of PostgreSQL CPU per 8-docref page, the
 * largest part of a patient search (bench/search.ts; a bare Node + pg server doing only the lookup:
 * p50 18 ms with the expression, 8 ms reading stored text). Writing it once per insert/update is
 * the cheaper side: docrefs are read far more often than written.
 *
 * STORED generated columns over `resource` (as migration 0005): every insert and update derives
 * them, so no write path changes and nothing can drift; the ALTER TABLE back-fills existing rows
 * (a table rewrite under ACCESS EXCLUSIVE: expect minutes per million docrefs). body_text is
 * typically 4–5 kB (pglz-compressed inline to ~1.8 kB).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE document_reference
      ADD COLUMN body_text text NOT NULL GENERATED ALWAYS AS (((resource - 'resourceType') - 'meta')::text) STORED,
      ADD COLUMN resource_meta jsonb GENERATED ALWAYS AS (resource->'meta') STORED;
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
