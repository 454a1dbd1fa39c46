/**
 * manifest.model: jsonb → json (ingest throughput, decisions.md D124).
 *
 * The model is written once per manifest version and read whole by the application (ImagingStudy
 * read/search, ITI-68 conversions, IOCM and status re-versioning); no SQL looks inside it. jsonb
 * parsed the ~40 KiB of a typical model into its binary form on every insert and printed it back
 * on every read; json only checks the syntax and keeps the text. Measured on the bench machine
 * (PostgreSQL backend CPU, typical 300-reference model): insert ~0.5 → ~0.25 ms, reading a row
 * ~0.16 → ~0.06 ms. STORAGE EXTERNAL as before (migration 0002): no pglz on the hot path.
 * The ALTER rewrites the table once (expect minutes per million manifests); values written as
 * jsonb by older code or scripts still insert (jsonb → json is an assignment cast).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE manifest ALTER COLUMN model TYPE json USING model::json;
    ALTER TABLE manifest ALTER COLUMN model SET STORAGE EXTERNAL;
  `);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
