/**
 * Audit write-path storage. Every request writes one AuditEvent, so its insert cost is
 * paid on every search, read and retrieve.
 *
 * - audit_event.resource STORAGE EXTERNAL: a typical event (~2.5 KiB of jsonb) crosses the TOAST
 *   threshold and pglz compressed it on every insert. Measured on the 2-core bench machine
 *   (batches of 12 events, CPU of the backends from /proc): PostgreSQL CPU ~230 µs per event with pglz vs ~150 µs
 *   without. Cost: roughly 2× disk for that column. (lz4 would be the better middle ground but the
 *   embedded PostgreSQL build has no lz4 support — same finding as 0002.)
 * Only affects rows written afterwards.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE audit_event ALTER COLUMN resource SET STORAGE EXTERNAL;`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
