/**
 * Content creator: what the upstream showed of a study when the gateway built a manifest from it
 * (a hash of its study- and series-level QIDO-RS records and the build settings, see
 * src/publish/fingerprint.ts). A re-publish that finds the same fingerprint on the study's
 * current manifest answers "unchanged" without reading every instance's metadata again.
 * Keyed by the manifest: a superseded or deleted manifest's fingerprint no longer matters.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE publish_fingerprint (
      manifest_id text PRIMARY KEY REFERENCES manifest(id) ON DELETE CASCADE,
      upstream text NOT NULL,
      fingerprint text NOT NULL
    );
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
